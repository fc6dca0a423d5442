"""The report's own arithmetic: closed-form optimum, parabolas, specialization, published matching."""

import numpy as np
import pytest
import scipy.optimize

from mmscale import contract
from mmscale.errors import UserError
from mmscale.report import experts, law, published
from mmscale.report.context import budgets

FIT = {"E": 1.9, "A": 400.0, "B": 2000.0, "alpha": 0.34, "beta": 0.37}


@pytest.mark.parametrize("c", [1e18, 1e21, 5.76e23])
def test_closed_form_optimum_minimises_the_law_at_fixed_compute(c):
  n, d = law.optimum(FIT, c)
  assert 6 * n * d == pytest.approx(c, rel=1e-9)
  res = scipy.optimize.minimize_scalar(lambda ln: law.loss(FIT, np.exp(ln), c / (6 * np.exp(ln))),
                                       bounds=(5, 40), method="bounded", options={"xatol": 1e-10})
  assert np.log(n) == pytest.approx(res.x, abs=1e-4)


def test_bootstrap_samples_as_columns_give_rows():
  fit = {"bootstrap": {"samples": {k: [FIT[k]] * 6 for k in law.PARAMS}}}
  rows = law.bootstrap_samples(fit)
  assert len(rows) == 6 and rows[0] == FIT


def test_parabola_in_ln_n_has_its_minimum_at_the_vertex():
  n0 = 3e7
  p = [0.2, -0.4 * np.log(n0), 0.2 * np.log(n0) ** 2 + 3.0]  # 0.2 (ln N - ln n0)^2 + 3
  grid = np.geomspace(1e6, 1e9, 7)
  assert np.allclose(law.parabola_curve(p, grid), 0.2 * np.log(grid / n0) ** 2 + 3.0)
  assert law.parabola_curve(p, np.array([n0]))[0] == pytest.approx(3.0)


def test_specialization_is_the_records_score_per_layer():
  names = ["text", "image", "audio"]
  even = np.ones((2, 8, 3))  # Every expert sees text and image in equal parts.
  assert np.allclose(experts.specialization(even, names), 0.0)
  apart = np.zeros((1, 8, 3))
  apart[0, :4, 0] = 100  # Experts 0-3 see only text, 4-7 only image.
  apart[0, 4:, 1] = 50
  assert np.allclose(experts.specialization(apart, names), 1.0)
  counts = np.array([[[10, 0, 0], [5, 5, 0], [0, 0, 3], [3, 1, 0]]], float)
  assert experts.specialization(counts, names)[0] == contract.specialization_score(counts[0])
  assert np.isnan(experts.specialization(counts[:, :, :1], ["text"])).all()
  assert np.allclose(experts.shares(np.arange(24.0).reshape(2, 4, 3)).sum(1), 1.0)


def test_malformed_routing_is_a_user_error():
  with pytest.raises(UserError, match="routing has 3 modality columns"):
    experts.counts_of({"counts": np.ones((2, 4, 3)).tolist(), "modalities": ["text", "image"]})


def test_published_rows_match_the_study():
  def names(values):
    return {r["name"].split(" (")[0] for r in published.matching(values)}

  assert "Late fusion, AVG" in names({"fusion": "late"})
  assert "Early fusion, AVG" in names({})  # a plain study is the dense early-fusion case
  assert "Sparse early fusion, 8 experts top-1, AVG" in names({"ffn": "moe"})
  assert "Mixture 45-45-10" in names({"mixture": "45_45_10"})
  assert "Early fusion, AVG" not in names({"ffn": "moe"})


def test_budgets_group_computes_within_five_percent():
  pts = {"params": np.array([1e6, 2e6, 4e6, 1e6]), "tokens": np.array([1e9, 0.51e9, 0.25e9, 3e9])}
  b = budgets(pts)
  assert b[0] == b[1] == b[2] and b[3] != b[0]

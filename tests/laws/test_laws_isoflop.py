"""Approach 2 against Porian et al. (2024)'s published exponents; Approach 1 and the frontier."""

import numpy as np
import pytest

from laws_testdata import DATA, TRUE, synthetic
from mmscale.errors import UserError
from mmscale.laws import approach1, approach2, derived, frontier
from mmscale.laws import table as tbl

CONFIG = ("source_file", "dataset", "hparams", "warmup", "decay", "param_count", "loss_split")


def test_porian_approach2_every_configuration():
  points = tbl.read_table(DATA / "porian2024_isoflop_points.csv")
  points["params"] = points["n_params"]
  pub = tbl.read_table(DATA / "porian2024_published_fits.csv")
  assert tbl.n_rows(pub) == 15
  errors = []
  for i in range(tbl.n_rows(pub)):
    mask = np.all([points[c] == pub[c][i] for c in CONFIG], axis=0)
    res = approach2(tbl.subset(points, mask), budget_column="flops_budget")
    errors.append(res["a"] - pub["a_weighted"][i])
    assert res["b"] == pytest.approx(1 - res["a"], abs=1e-9)  # D = C / 6N
  assert np.max(np.abs(errors)) < 0.03, np.round(errors, 3)


def _isoflop_table(law=TRUE, budgets=(1e17, 1e18, 1e19, 1e20), n_sizes=9):
  rows = {"params": [], "tokens": [], "loss": [], "flops": []}
  for c in budgets:
    n_star = derived.n_opt(law, c)
    for n in n_star * np.geomspace(1 / 8, 8, n_sizes):
      d = c / (6 * n)
      rows["params"].append(n)
      rows["tokens"].append(d)
      rows["flops"].append(c)
      rows["loss"].append(law["E"] + law["A"] / n ** law["alpha"] + law["B"] / d ** law["beta"])
  return {k: np.array(v) for k, v in rows.items()}


def test_approach2_recovers_closed_form_exponent():
  t = _isoflop_table()
  res = approach2(t)
  assert len(res["budgets"]) == 4
  assert res["a"] == pytest.approx(derived.closed_form(TRUE)["a"], abs=0.01)
  np.testing.assert_allclose(res["n_opt"], derived.n_opt(TRUE, np.array(res["budgets"])), rtol=0.05)


def test_approach2_needs_bracketed_budgets():
  t = _isoflop_table(budgets=(1e18,))
  with pytest.raises(UserError, match="at least 2 budgets"):
    approach2(t)


def test_approach1_envelope_of_training_curves():
  # Curves: each size trained to many token counts; the envelope's N_opt follows N ∝ C^a.
  rows = {"run_id": [], "params": [], "tokens": [], "loss": []}
  for k, n in enumerate(np.geomspace(1e7, 1e10, 25)):
    for d in np.geomspace(1e8, 1e12, 60):
      rows["run_id"].append(f"r{k}")
      rows["params"].append(n)
      rows["tokens"].append(d)
      rows["loss"].append(TRUE["E"] + TRUE["A"] / n ** TRUE["alpha"] + TRUE["B"] / d ** TRUE["beta"])
  t = {k: np.array(v) for k, v in rows.items()}
  res = approach1(t)
  # Constant-LR curves reach a given C earlier than a compute-optimal run, so Approach 1 is close to,
  # not equal to, the closed form; the exponent still lands near a = beta/(alpha+beta).
  assert res["a"] == pytest.approx(derived.closed_form(TRUE)["a"], abs=0.05)
  assert res["r2"] > 0.95


def test_frontier_power_law_from_convex_hull():
  rng = np.random.default_rng(0)
  C = np.geomspace(1e17, 1e21, 12)
  best = 50.0 * C ** -0.05
  rows = {"params": [], "tokens": [], "loss": [], "flops": []}
  for c, l in zip(C, best):
    for extra in [0.0, *rng.uniform(0.01, 0.5, 4)]:  # one point on the frontier, the rest above it
      rows["params"].append(1e8)
      rows["tokens"].append(c / 6e8)
      rows["flops"].append(c)
      rows["loss"].append(l + extra)
  t = {k: np.array(v) for k, v in rows.items()}
  res = frontier(t)
  assert res["c"] == pytest.approx(-0.05, abs=1e-6)
  assert res["r2"] == pytest.approx(1.0, abs=1e-9)
  assert len(res["points"]) == 12


def test_frontier_on_epoch_data_is_decreasing():
  t = tbl.read_table(DATA / "epoch_chinchilla_svg_extracted_data.csv")
  t = {"params": t["Model Size"], "tokens": t["Training FLOP"] / (6 * t["Model Size"]), "loss": t["loss"],
       "flops": t["Training FLOP"]}
  res = frontier(t)
  assert -0.2 < res["c"] < 0
  losses = [p[1] for p in res["points"]]
  assert losses == sorted(losses, reverse=True)


def test_synthetic_points_fixture_shape():
  N, D, L = synthetic()
  assert N.shape == D.shape == L.shape == (30,)

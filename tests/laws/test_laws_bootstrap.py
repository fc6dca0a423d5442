"""Bootstrap intervals on synthetic data drawn from known laws; held-out evaluation."""

import numpy as np
import pytest

from laws_testdata import TRUE, synthetic
from mmscale.errors import UserError
from mmscale.laws import bootstrap, chinchilla, evaluate

# A coarser start grid keeps the many refits of these tests fast; the full grid is tested elsewhere.
SMALL_GRID = chinchilla.hoffmann_grid()[::30]
LAWS = [TRUE, {"E": 2.2, "A": 900.0, "B": 600.0, "alpha": 0.42, "beta": 0.30},
        {"E": 1.5, "A": 150.0, "B": 5000.0, "alpha": 0.28, "beta": 0.45}]


def test_seeded_and_reports_every_quantity():
  N, D, L = synthetic(seed=1)
  a = bootstrap.bootstrap(N, D, L, 6, seed=3, starts=SMALL_GRID)
  b = bootstrap.bootstrap(N, D, L, 6, seed=3, starts=SMALL_GRID)
  assert a["samples"] == b["samples"]
  assert a["n"] == 6
  for q in ("E", "A", "B", "alpha", "beta", "a", "b", "G", "d"):
    lo, hi = a["ci95"][q]
    assert lo <= hi and a["se"][q] >= 0


@pytest.mark.parametrize("law", LAWS)
def test_synthetic_laws_recovered_within_intervals(law):
  N, D, L = synthetic(law=law, sigma=0.004, seed=7)
  res = bootstrap.bootstrap(N, D, L, 40, seed=0, starts=SMALL_GRID)
  for q in ("alpha", "beta", "E"):
    lo, hi = res["ci95"][q]
    assert lo <= law[q] <= hi, (q, law[q], lo, hi)


def _coverage(n_draws, n_boot):
  hits = []
  for seed in range(n_draws):
    N, D, L = synthetic(sigma=0.01, seed=100 + seed)
    ci = bootstrap.bootstrap(N, D, L, n_boot, seed=seed, starts=SMALL_GRID)["ci95"]
    hits += [ci[q][0] <= TRUE[q] <= ci[q][1] for q in ("alpha", "beta")]
  return np.mean(hits)


def test_interval_coverage_small():
  # 95 % intervals over 6 draws x 2 exponents: coverage far below nominal would show as < 0.75.
  assert _coverage(6, 25) >= 0.75


@pytest.mark.slow
def test_interval_coverage_nominal():
  cov = _coverage(30, 60)
  assert 0.85 <= cov <= 1.0, cov


def test_heldout_on_exact_law_is_perfect():
  N, D, L = synthetic(sigma=0.0)
  res = evaluate.heldout(N, D, L, "largest")
  assert res["n_test"] == 5 and res["n_train"] == 25
  assert res["mae_pct"] < 1e-3 and res["r2"] > 0.9999


def test_heldout_metrics_and_split_errors():
  m = evaluate.metrics([1.0, 2.0, 3.0], [1.0, 2.0, 4.0])
  assert m["mse"] == pytest.approx(1 / 3)
  assert m["mae_pct"] == pytest.approx(100 / 12)
  assert m["r2"] == pytest.approx(1 - 1 / (14 / 3))
  N = np.array([1.0, 2.0, 3.0, 4.0])
  assert evaluate.split_sizes(N, "0.5").tolist() == [False, False, True, True]
  assert evaluate.split_sizes(N, "2.5").tolist() == [False, False, True, True]
  with pytest.raises(UserError, match="both sides"):
    evaluate.split_sizes(N, "10")
  with pytest.raises(UserError, match="expected"):
    evaluate.split_sizes(N, "big")

"""plan-next: on a known law, the planned runs shrink the interval of a faster than the next grid row."""

import json

import numpy as np
import pytest

from laws_testdata import TRUE
from mmscale.errors import UserError
from mmscale.laws import bootstrap, chinchilla, derived, plan
from mmscale.laws import plan_cli

SMALL = chinchilla.hoffmann_grid()[::15]  # a coarser start grid keeps the many refits fast
RATIOS = np.geomspace(1 / 8, 8, 5)  # IsoFLOP grid: 5 sizes around each budget's optimum


def _cells(budgets):
  return [(float(n), c) for c in budgets for n in derived.n_opt(TRUE, c) * RATIOS]


def _runs(cells, seed, sigma=0.01):
  rng = np.random.default_rng(seed)
  N = np.array([n for n, _ in cells])
  C = np.array([c for _, c in cells])
  D = C / (6 * N)
  L = (TRUE["E"] + TRUE["A"] / N ** TRUE["alpha"] + TRUE["B"] / D ** TRUE["beta"]) * np.exp(
      sigma * rng.standard_normal(N.size))
  return N, D, L, C


@pytest.fixture(scope="module")
def study():
  """3 budgets of the grid run; the next grid row would be budget 1e20 at its 5 sizes."""
  N, D, L, C = _runs(_cells([1e17, 1e18, 1e19]), seed=0)
  fit = chinchilla.fit(N, D, L)
  boot = bootstrap.bootstrap(N, D, L, 40, seed=0, starts=SMALL)
  theta = plan.theta_of(fit)
  return {"N": N, "D": D, "L": L, "C": C, "theta": theta, "S": plan.prior_cov(boot, L.min()),
          "s2": plan.noise_var(theta, N, D, L), "row": _cells([1e20])}


def _plan(s, target="a"):
  row_flops = sum(c for _, c in s["row"])
  cells = plan.candidates(s["N"], s["C"], budgets=[1e20])
  return plan.rank(s["theta"], s["S"], s["s2"], cells, plan.target(target), top=50, flops=row_flops)


def test_jacobian_matches_finite_differences():
  theta = plan.theta_of(TRUE)
  N, D = np.array([1e8, 3e9]), np.array([2e9, 1e11])

  def logl(th):
    return np.logaddexp(np.logaddexp(th[0] - th[3] * np.log(N), th[1] - th[4] * np.log(D)), th[2])

  J = plan.jacobian(theta, N, D)
  for k in range(5):
    e = np.zeros(5)
    e[k] = 1e-6
    np.testing.assert_allclose(J[:, k], (logl(theta + e) - logl(theta - e)) / 2e-6, rtol=1e-6)


def test_greedy_update_is_the_posterior_covariance(study):
  s = study
  res = plan.rank(s["theta"], s["S"], s["s2"], s["row"], plan.target("a"), top=5)
  # Adding all 5 row cells one by one equals the information form (S^-1 + J'J / s2)^-1.
  J = plan.jacobian(s["theta"], *(np.array(v) for v in zip(*[(n, c / (6 * n)) for n, c in s["row"]])))
  post = np.linalg.inv(np.linalg.inv(s["S"]) + J.T @ J / s["s2"])
  g = plan.gradient(plan.target("a"), s["theta"])
  assert res["after"] == pytest.approx(plan.half_width(post, g), rel=1e-6)
  assert res["before"] == pytest.approx(plan.half_width(s["S"], g))


def test_plan_beats_the_next_grid_row_in_expectation(study):
  s = study
  res = _plan(s)
  row = plan.rank(s["theta"], s["S"], s["s2"], s["row"], plan.target("a"), top=5)
  assert res["flops"] <= row["flops"] * (1 + 1e-12)  # never more compute than the row
  assert res["after"] < 0.75 * row["after"]
  done = {(round(np.log(n), 6), round(np.log(c), 3)) for n, c in zip(s["N"], s["C"])}
  assert not any((round(np.log(p["params"]), 6), round(np.log(p["budget"]), 3)) in done for p in res["picked"])


@pytest.mark.slow
def test_following_the_plan_shrinks_the_bootstrap_interval_faster(study):
  """Real refits: the planned cells (at most the row's FLOPs) vs the next grid row, 3 noise draws each."""
  s = study
  picked = [(p["params"], p["budget"]) for p in _plan(s)["picked"]]
  width = {"plan": [], "row": []}
  for seed in (1, 2, 3):
    for name, cells in (("plan", picked), ("row", s["row"])):
      n, d, l, _ = _runs(cells, seed)
      ci = bootstrap.bootstrap(np.r_[s["N"], n], np.r_[s["D"], d], np.r_[s["L"], l], 40, seed=0,
                               starts=SMALL)["ci95"]["a"]
      width[name].append(ci[1] - ci[0])
  assert np.mean(width["plan"]) < 0.8 * np.mean(width["row"]), width


def test_cli_prints_the_plan_and_checks_its_inputs(study, tmp_path, capsys):
  s = study
  p = tmp_path / "runs.csv"
  p.write_text("params,tokens,loss,flops\n" + "".join(f"{a!r},{b!r},{c!r},{d!r}\n" for a, b, c, d in zip(
      s["N"].tolist(), s["D"].tolist(), s["L"].tolist(), s["C"].tolist())))
  fit = dict(plan.law_of(s["theta"]), law="chinchilla")
  f = tmp_path / "fit.json"
  f.write_text(json.dumps(fit))
  with pytest.raises(UserError, match=r"^plan-next needs a fit with bootstrap samples"):
    plan_cli.main(["plan-next", f"--fit={f}", f"--records={p}"])
  fit["bootstrap"] = bootstrap.bootstrap(s["N"], s["D"], s["L"], 12, seed=0, starts=SMALL)
  f.write_text(json.dumps(fit))
  assert plan_cli.main(["plan-next", f"--fit={f}", f"--records={p}", "--top=3", "--budgets=1e20"]) == 0
  out = capsys.readouterr().out
  assert out.startswith("plan-next: 95% interval of a (N_opt ∝ C^a): ±")
  assert "after 3 runs" in out and '"budgets": (' in out
  with pytest.raises(UserError, match=r"^--target='loss@-1': expected 'a' or 'loss@C'"):
    plan_cli.main(["plan-next", f"--fit={f}", f"--records={p}", "--target=loss@-1"])
  with pytest.raises(UserError, match=r"^--sizes=big: expected positive numbers"):
    plan_cli.main(["plan-next", f"--fit={f}", f"--records={p}", "--sizes=big"])

"""Fit options: tied exponents (alpha = beta) and held-out evaluation by budget as well as by size."""

import numpy as np
import pytest

from laws_testdata import DATA, TRUE
from mmscale.errors import UserError
from mmscale.laws import chinchilla, derived, evaluate
from mmscale.laws import table as tbl

PUBLISHED_OBJECTIVE = 0.0010182740  # Besiroglu et al. (2024), untied, Epoch's 240 points


def test_tied_fit_on_epoch(epoch240):
  f = chinchilla.fit(*epoch240, tied=True)
  assert f["tied"] and f["alpha"] == f["beta"]
  # One parameter fewer than the published untied optimum: never below it, and close to it since the
  # published exponents are themselves nearly equal (0.3473, 0.3672).
  assert PUBLISHED_OBJECTIVE <= f["objective"] <= PUBLISHED_OBJECTIVE * 1.01
  assert 0.3473 <= f["alpha"] <= 0.3672
  assert derived.closed_form(f)["a"] == pytest.approx(0.5)  # a = beta / (alpha + beta)
  assert f["grad_norm"] < 1e-6 and f["n_starts"] == 900  # the Hoffmann grid's alpha = beta rows


def test_tied_recovers_a_tied_law():
  law = dict(TRUE, beta=TRUE["alpha"])
  N, D = (a.ravel() for a in np.meshgrid(np.geomspace(1e7, 3e9, 6), np.geomspace(2, 200, 5)))
  D = D * N
  f = chinchilla.fit(N, D, law["E"] + law["A"] / N ** law["alpha"] + law["B"] / D ** law["beta"], tied=True)
  for k in ("E", "alpha", "beta"):
    assert f[k] == pytest.approx(law[k], rel=1e-4)


def _isoflop(budgets=(1e17, 1e18, 1e19, 1e20, 1e21)):
  N, D, C = [], [], []
  for c in budgets:
    n = derived.n_opt(TRUE, c) * np.geomspace(1 / 8, 8, 7)
    N += n.tolist()
    D += (c / (6 * n)).tolist()
    C += [c] * n.size
  N, D, C = map(np.array, (N, D, C))
  return N, D, TRUE["E"] + TRUE["A"] / N ** TRUE["alpha"] + TRUE["B"] / D ** TRUE["beta"], C


def test_heldout_by_largest_budget():
  N, D, L, C = _isoflop()
  mask = evaluate.split(N, C, "largest_budget")
  assert mask.sum() == 7 and np.all(C[mask] == 1e21)
  res = evaluate.heldout(N, D, L, "largest_budget", C=C)
  # The exact law extrapolates exactly, and R2 is defined (7 held-out points, not 1).
  assert res["n_test"] == 7 and res["r2"] > 0.9999 and res["mae_pct"] < 1e-3
  assert res["how"] == "largest_budget" and res["fit_problems"] == []


def test_heldout_spellings():
  N, D, L, C = _isoflop()
  assert np.array_equal(evaluate.split(N, C, "budget:0.4"), C >= 1e20)
  assert np.array_equal(evaluate.split(N, C, "budget:5e19"), C >= 1e20)
  sizes = np.unique(N)
  assert np.array_equal(evaluate.split(N, C, "size:0.5"), evaluate.split(N, C, "0.5"))
  assert np.array_equal(evaluate.split(N, C, "largest"), N == sizes[-1])
  with pytest.raises(UserError, match=r"--heldout='depth:2': expected 'largest' \(size\), 'largest_budget'"):
    evaluate.split(N, C, "depth:2")
  with pytest.raises(UserError, match="must leave budgets on both sides"):
    evaluate.split(N, C, "budget:1e30")


def test_heldout_by_budget_on_porian_points():
  """Porian et al.'s tuned RefinedWeb grid: each budget holds many sizes, so R2 over the largest is defined."""
  p = tbl.read_table(DATA / "porian2024_isoflop_points.csv")
  m = (p["dataset"] == "rw") & (p["hparams"] == "tuned") & (p["warmup"] == "short") & (p["param_count"] == "standard")
  N, D, L, C = p["n_params"][m], p["tokens"][m], p["loss"][m], p["flops_budget"][m]
  mask = evaluate.split(N, C, "largest_budget")
  assert mask.sum() == np.sum(C == C.max()) > 1
  assert evaluate.split(N, C, "largest").sum() == np.sum(N == N.max())


def test_cli_flags(tmp_path, capsys):
  import json
  from mmscale.laws import cli
  N, D, L, C = _isoflop()
  p = tmp_path / "iso.csv"
  p.write_text("params,tokens,loss,flops\n" + "".join(f"{a!r},{b!r},{c!r},{d!r}\n" for a, b, c, d in
                                                      zip(N.tolist(), D.tolist(), L.tolist(), C.tolist())))
  out = tmp_path / "fit.json"
  assert cli.main(["fit", f"--records={p}", "--tied", "--isoflop_window=5", "--heldout=largest_budget",
                   f"--json={out}"]) == 0
  res = json.loads(out.read_text())
  assert res["tied"] and res["isoflop"]["window"] == 5 and res["heldout"]["n_test"] == 7
  assert "approach 2 (5 budgets, 5 sizes around each minimum, D_opt from runs' tokens)" in capsys.readouterr().out
  with pytest.raises(UserError, match=r"^--isoflop_window=2: must be >= 3"):
    cli.main(["fit", f"--records={p}", "--isoflop_window=2"])
  with pytest.raises(UserError, match="apply to --law=chinchilla"):
    cli.main(["fit", f"--records={p}", "--tied", "--law=sparsity"])

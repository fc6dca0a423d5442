"""The report's law panels flag a fit that failed its diagnostics, with the reason and the fix."""

import numpy as np
from etils import epath

from laws_testdata import TRUE, synthetic
from mmscale.laws import diagnostics
from mmscale.report import coefficients, law, optimal
from mmscale.report.context import Context, Study


def _study(fit_values):
  N, D, L = synthetic(sigma=0.0)
  points = {"params": N, "tokens": D, "loss": L}
  fit = dict(fit_values, n_points=N.size)
  fit["diagnostics"] = diagnostics.check_fit(fit, N, D, L)
  return Study(label="moe", rows=points, points=points, fit=fit)


def test_broken_law_is_flagged_in_table_and_figures(tmp_path):
  bad = _study(dict(TRUE, E=2.2e-308, alpha=3.1))
  good = _study(TRUE)
  ctx = Context(out_dir=epath.Path(tmp_path), table=bad.points, points=bad.points, studies=[bad, good],
                convention="C = 6ND", metric_label="loss")
  html = coefficients.draw(ctx)[0].html
  assert html.count("UNRELIABLE FIT: moe") == 1  # the good study has no box
  assert "irreducible_loss</b>: E = 2.2e-308" in html and "Fix: E fell to ~0" in html
  assert "UNRELIABLE: irreducible_loss, exponents" in html and "all checks passed" in html
  section = optimal.draw(ctx)[0]
  assert "UNRELIABLE FIT: moe" in section.html
  assert law.unreliable_title(bad) == "moe\nUNRELIABLE FIT (irreducible_loss, exponents)"
  assert law.unreliable_title(good) == "moe"
  assert not np.isnan(law.allocation(good.fit)[0])


def test_degenerate_bootstrap_replicates_do_not_break_the_bands():
  """report --bootstrap died on a replicate with beta < 0 ((negative) ** (1/s) is complex)."""
  good = [dict(TRUE, alpha=TRUE["alpha"] + 0.01 * k) for k in range(6)]
  samples = {k: [s[k] for s in good] + [v] for k, v in (("E", 1.8), ("A", 400.0), ("B", 2000.0),
                                                       ("alpha", 0.3), ("beta", -0.2))}
  fit = dict(TRUE, bootstrap={"samples": samples})
  assert len(law.bootstrap_samples(fit)) == 6
  (nlo, nhi), _, how = optimal.band(fit, np.geomspace(1e18, 1e22, 5))
  assert np.all(np.isfinite(nlo)) and np.all(nlo <= nhi) and how.startswith("bootstrap 95 % band (6 fits)")
  assert all(np.isnan(law.allocation(dict(TRUE, beta=-0.2))))

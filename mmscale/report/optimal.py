"""N_opt and D_opt against compute: IsoFLOP minima (points), the parametric law's closed form
(line) and its bootstrap band (pointwise 2.5-97.5 % over resamples)."""

import numpy as np

from mmscale.report import law, style
from mmscale.report import table as tbl
from mmscale.report.context import budgets
from mmscale.report.isoflop import has_minima, isoflop_of


def d_at(points, budgets_of_points, budget, n_opt):
  """Tokens at the IsoFLOP minimum: log D interpolated in log N among that budget's runs."""
  m = np.abs(np.log(budgets_of_points / budget)) < 0.05
  n, d = points["params"][m], points["tokens"][m]
  order = np.argsort(n)
  return float(np.exp(np.interp(np.log(n_opt), np.log(n[order]), np.log(d[order]))))


def band(fit, grid):
  """(lo, hi) bands for N_opt and D_opt, and how they were made; None if no bootstrap."""
  samples = law.bootstrap_samples(fit)
  if len(samples) >= 5:
    ns, ds = zip(*(law.optimum_from_coefficients(s, grid) for s in samples))
    ns, ds = np.array(ns), np.array(ds)
    return (np.percentile(ns, [2.5, 97.5], 0), np.percentile(ds, [2.5, 97.5], 0),
            f"bootstrap 95 % band ({len(samples)} fits)")
  ci_a, ci_b, ci_g = law.ci95(fit, "a"), law.ci95(fit, "b"), law.ci95(fit, "G")
  if ci_a and ci_b and ci_g:
    # Only marginal intervals kept: envelope over their corners (wider than the joint band).
    x = grid / 6.0
    ns = np.array([g * x ** a for a in ci_a for g in ci_g])
    ds = np.array([x ** b / g for b in ci_b for g in ci_g])
    return ((ns.min(0), ns.max(0)), (ds.min(0), ds.max(0)),
            "95 % band from marginal CIs of a, b, G (wide)")
  return None


def draw(ctx):
  studies = [s for s in ctx.studies if law.has_law(s.fit) or has_minima(isoflop_of(s))]
  if not studies:
    raise style.CannotDraw("no parametric fit and no IsoFLOP minima")
  fig, axes = style.subplots(2 * len(studies), ncols=2)
  notes = []
  for k, study in enumerate(studies):
    ax_n, ax_d = axes[2 * k], axes[2 * k + 1]
    c = tbl.flops(study.points)
    grid = np.geomspace(c.min() / 3, c.max() * 10, 100)
    iso = isoflop_of(study) or {}
    if has_minima(iso):
      cb, nb = np.asarray(iso["budgets"], float), np.asarray(iso["n_opt"], float)
      ok = np.isfinite(nb)
      cb, nb = cb[ok], nb[ok]
      b_pts = budgets(study.points)
      db = np.array([d_at(study.points, b_pts, b, n) for b, n in zip(cb, nb)])
      ax_n.plot(cb, nb, "o", color="k", ms=5, label="IsoFLOP minima")
      ax_d.plot(cb, db, "o", color="k", ms=5, label="IsoFLOP minima")
      if len(cb) >= 2:
        for ax, y in ((ax_n, nb), (ax_d, db)):
          slope, icpt = np.polyfit(np.log(cb), np.log(y), 1)
          ax.plot(grid, np.exp(icpt) * grid ** slope, ":", color="k", lw=1,
                  label=f"fit to minima, ∝ C^{slope:.3f}")
    if law.has_law(study.fit):
      a, b, _ = law.allocation(study.fit)
      n_opt, d_opt = law.optimum(study.fit, grid)
      ax_n.plot(grid, n_opt, "-", color="tab:blue", label=f"closed form N_opt ∝ C^{a:.3f}")
      ax_d.plot(grid, d_opt, "-", color="tab:green", label=f"closed form D_opt ∝ C^{b:.3f}")
      bands = band(study.fit, grid)
      if bands is None:
        notes.append(f"{study.label}: the fit has no bootstrap, so no band (fit with --bootstrap=N)")
      else:
        (nlo, nhi), (dlo, dhi), how = bands
        ax_n.fill_between(grid, nlo, nhi, color="tab:blue", alpha=0.2, label=how)
        ax_d.fill_between(grid, dlo, dhi, color="tab:green", alpha=0.2, label=how)
    else:
      notes.append(f"{study.label}: no parametric fit, IsoFLOP minima only")
    for ax, ylabel in ((ax_n, "compute-optimal N_opt (parameters)"),
                       (ax_d, "compute-optimal D_opt (tokens)")):
      ax.set_xscale("log")
      ax.set_yscale("log")
      ax.set_xlabel(style.FLOPS_LABEL)
      ax.set_ylabel(ylabel)
      law.set_title(ax, study)
      ax.legend(loc="upper left")
  style.stamp(fig, ctx.convention + "   closed form assumes C = 6ND")
  return [style.Section(
      "optimal", "Compute-optimal N and D",
      "Where each budget's loss is lowest. Points: IsoFLOP parabola minima; lines: the closed-form "
      "optimum of the parametric law (Hoffmann et al. eq. 4) with its bootstrap band.",
      images=[style.save(fig, ctx.out_dir, "optimal")], notes=notes, html=law.warning_html(studies))]

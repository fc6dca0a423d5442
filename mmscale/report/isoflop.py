"""IsoFLOP curves (Hoffmann et al. 2022, Approach 2): loss against N per compute budget, with the
fitted parabola in log N and its minimum N_opt(C)."""

import numpy as np

from mmscale.errors import UserError
from mmscale.report import laws_api, style
from mmscale.report.context import budgets, fmt_sci, match_budget
from mmscale.report.law import parabola_curve


def isoflop_of(study) -> dict | None:
  """The study's approach-2 result: from its fit, else computed with the fitter's library (once)."""
  iso = (study.fit or {}).get("isoflop")
  if iso:
    return iso
  if study.isoflop is None:
    approach2 = laws_api.get("approach2")
    if approach2 is None:
      return None
    try:
      study.isoflop = approach2(study.points)
    except UserError as e:  # Too few runs per budget: the figure says so.
      study.isoflop = {"error": str(e)}
  return study.isoflop


def has_minima(iso) -> bool:
  return bool(iso) and np.isfinite(np.asarray(iso.get("n_opt") or [], float)).any()


def draw(ctx):
  usable = [s for s in ctx.studies
            if max(np.unique(budgets(s.points), return_counts=True)[1], default=0) >= 3]
  if not usable:
    raise style.CannotDraw("no compute budget has 3 or more runs (IsoFLOP needs a grid of sizes "
                           "per budget)")
  fig, axes = style.subplots(len(usable))
  notes = []
  for ax, study in zip(axes, usable):
    iso = isoflop_of(study) or {}
    if "error" in iso:
      notes.append(f"{study.label}: no parabolas ({iso['error']})")
    fitted_b = iso.get("budgets") or []
    n_opt = iso.get("n_opt") or []
    parabolas = iso.get("parabolas") or []
    b_all = budgets(study.points)
    ub = sorted(set(b_all))
    colors = style.budget_colors(len(ub))
    drawn = 0
    for color, b in zip(colors, ub):
      m = b_all == b
      n, loss = study.points["params"][m], study.points["loss"][m]
      order = np.argsort(n)
      ax.plot(n[order], loss[order], "o", color=color, ms=4, label=f"C={fmt_sci(b)}")
      i = match_budget(b, fitted_b)
      if i is None:
        continue
      p = parabolas[i] if i < len(parabolas) else None
      grid = np.geomspace(n.min() / 1.5, n.max() * 1.5, 100)
      curve = None if p is None else parabola_curve(p, grid)
      if curve is not None:
        ax.plot(grid, curve, "-", color=color, lw=1.2, alpha=0.8)
        drawn += 1
      if i < len(n_opt) and np.isfinite(n_opt[i]):
        at_min = None if p is None else parabola_curve(p, np.array([n_opt[i]]))
        lmin = float(np.min(loss)) if at_min is None else float(at_min[0])
        ax.plot([n_opt[i]], [lmin], "*", color=color, ms=11, mec="k", mew=0.6, zorder=5)
    ax.set_xscale("log")
    ax.set_xlabel(style.PARAMS_LABEL)
    ax.set_ylabel(ctx.metric_label)
    exp = iso.get("a")
    ax.set_title(f"{study.label}" + (f"  (N_opt ∝ C^{exp:.3f})" if isinstance(exp, float) else ""))
    ax.legend(loc="upper right", ncol=1 if len(ub) < 7 else 2)
    for c in ((study.fit or {}).get("diagnostics") or {}).get("checks", []):
      if c["name"] in ("bracketed", "parabola") and c.get("level") != "ok":
        notes.append(f"{study.label}: {'UNRELIABLE' if c['level'] == 'fail' else 'warning'}: {c['detail']}. "
                     f"Fix: {c['fix']}")
    if not drawn and "error" not in iso:
      notes.append(f"{study.label}: the fit has no IsoFLOP parabolas; points only")
  style.stamp(fig, ctx.convention + "   ★ = parabola minimum N_opt(C)")
  return [style.Section(
      "isoflop", "IsoFLOP curves",
      "Loss against model size at fixed compute; lines are parabolas in log N fitted per budget, "
      "stars their minima (Approach 2).",
      images=[style.save(fig, ctx.out_dir, "isoflop")], notes=notes)]

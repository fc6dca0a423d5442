"""Loss against compute with the fitted frontier L = k C^c (log-log), and the parametric law's
compute-optimal loss L(N_opt(C), D_opt(C)) beside it."""

import numpy as np

from mmscale.errors import UserError
from mmscale.report import law, laws_api, style
from mmscale.report import table as tbl


def frontier_of(points, fit) -> dict | None:
  """The fit's frontier, else the fitter's frontier() on these points; None if neither works."""
  fr = (fit or {}).get("frontier")
  if fr and "c" in fr:
    return fr
  frontier = laws_api.get("frontier")
  if frontier is None:
    return None
  try:
    return frontier(points)
  except UserError:  # Too few points for a frontier: drawn without it.
    return None


def spans_compute(points) -> bool:
  """At least two distinct compute values: a loss-against-compute axis needs a range."""
  return tbl.n_rows(points) >= 2 and np.unique(np.round(np.log10(tbl.flops(points)), 3)).size >= 2


def frontier_curve(fr, c):
  """L = k C^c; log_k is the natural log of k (the fitter's convention), log10_k also accepted."""
  if "log10_k" in fr:
    return 10 ** fr["log10_k"] * c ** fr["c"]
  return np.exp(fr["log_k"]) * c ** fr["c"]


def plot_loss_vs_compute(ax, points, fit, color=None, label="", size_colors=True):
  c = tbl.flops(points)
  colors = style.size_colors(points["params"]) if size_colors else [color] * len(c)
  ax.scatter(c, points["loss"], c=colors, s=14, edgecolors="none", alpha=0.85,
             label=(label + " runs") if label else None)
  grid = np.geomspace(c.min() / 1.3, c.max() * 1.3, 100)
  fr = frontier_of(points, fit)
  if fr is not None:
    ax.plot(grid, frontier_curve(fr, grid), "-", color=color or "k", lw=1.5,
            label=f"{label} frontier L ∝ C^{fr['c']:.4f}".strip())
  return fr, grid


def draw(ctx):
  studies = [s for s in ctx.studies if spans_compute(s.points)]
  if not studies:
    raise style.CannotDraw("no study has finished runs at 2 or more compute values")
  fig, axes = style.subplots(len(studies))
  notes = []
  for ax, study in zip(axes, studies):
    fr, grid = plot_loss_vs_compute(ax, study.points, study.fit)
    if fr is None:
      notes.append(f"{study.label}: no frontier fit (laws library unavailable or too few points)")
    if law.has_law(study.fit):
      n, d = law.optimum(study.fit, grid)
      ax.plot(grid, law.loss(study.fit, n, d), "--", color="tab:red", lw=1.2,
              label="parametric law at N_opt, D_opt")
    ax.set_xscale("log")
    style.log_loss_axis(ax)
    ax.set_xlabel(style.FLOPS_LABEL)
    ax.set_ylabel(ctx.metric_label)
    ax.set_title(study.label)
    ax.legend(loc="upper right")
  style.stamp(fig, ctx.convention + "   colour = N (light small, dark large)")
  return [style.Section(
      "frontier", "Loss against compute",
      "Final loss of every run; the solid line is the power-law frontier L ∝ C^c fitted to the "
      "best run per budget, the dashed line the parametric law at its compute-optimal allocation.",
      images=[style.save(fig, ctx.out_dir, "frontier")], notes=notes)]

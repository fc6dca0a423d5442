"""Architecture and mixture comparisons on shared axes: for each study axis (fusion early/late,
ffn dense/moe, data mixture, ...) the frontier of every value, and its IsoFLOP minima N_opt(C)."""

import numpy as np

from mmscale.report import style
from mmscale.report import table as tbl
from mmscale.report.context import Study
from mmscale.report.frontier import plot_loss_vs_compute, spans_compute
from mmscale.report.isoflop import isoflop_of


def _fit_for(ctx, column, value):
  """The fit of the study whose rows all have column == value (if exactly one does)."""
  fits = [s.fit for s in ctx.studies
          if column in s.points and set(s.points[column].astype(str)) == {value}]
  return fits[0] if len(fits) == 1 else None


def draw(ctx):
  if not ctx.comparison_columns:
    raise style.CannotDraw("no study axis with 2 or more values (columns such as fusion, ffn, "
                           "mixture)")
  points = ctx.points
  sections = []
  for column in ctx.comparison_columns:
    values = sorted(set(points[column].astype(str)) - {"", "nan", "None"})
    groups, notes, exps = [], [], []
    for value in values:
      pts = tbl.take(points, points[column].astype(str) == value)
      if not spans_compute(pts):
        notes.append(f"{column}={value}: runs at fewer than 2 compute values")
        continue
      fit = _fit_for(ctx, column, value)
      iso = isoflop_of(Study(value, pts, pts, fit)) or {}
      groups.append((value, pts, fit, iso))
    if not groups:
      notes.append(f"{column}: no value has 2 or more runs; nothing to compare")
      sections.append(style.Section(f"compare_{column}", f"Comparison by {column}", notes=notes))
      continue
    have_opt = any(np.isfinite(np.asarray(g[3].get("n_opt") or [], float)).any() for g in groups)
    fig, axes = style.subplots(2 if have_opt else 1, width=4.8, height=3.8)
    ax_l = axes[0]
    for color, (value, pts, fit, iso) in zip(style.group_colors(len(groups)), groups):
      fr, _ = plot_loss_vs_compute(ax_l, pts, fit, color=color, label=value, size_colors=False)
      if fr is not None:
        exps.append(f"{value}: c = {fr['c']:.4f}")
      cb = np.asarray(iso.get("budgets") or [], float)
      nb = np.asarray(iso.get("n_opt") or [], float)
      ok = np.isfinite(nb)
      if have_opt and ok.any():
        a = iso.get("a")
        axes[1].plot(cb[ok], nb[ok], "o-", color=color,
                     label=value + (f" (N_opt ∝ C^{a:.3f})" if isinstance(a, float) else ""))
      elif have_opt:
        notes.append(f"{column}={value}: no IsoFLOP minima (needs 3+ sizes per budget)")
    ax_l.set(xscale="log", xlabel=style.FLOPS_LABEL, ylabel=ctx.metric_label,
             title=f"{column}: loss against compute")
    style.log_loss_axis(ax_l)
    ax_l.legend(loc="upper right")
    if have_opt:
      axes[1].set(xscale="log", yscale="log", xlabel=style.FLOPS_LABEL,
                  ylabel="IsoFLOP-optimal N_opt (parameters)", title=f"{column}: N_opt(C)")
      axes[1].legend(loc="upper left")
    else:
      notes.append(f"{column}: no IsoFLOP minima for any value; N_opt(C) panel not drawn")
    style.stamp(fig, ctx.convention)
    stem = f"compare_{''.join(ch if ch.isalnum() else '_' for ch in column)}"
    sections.append(style.Section(
        stem, f"Comparison by {column}",
        f"Runs grouped by {column} ({', '.join(values)}) on shared axes. " + "; ".join(exps),
        images=[style.save(fig, ctx.out_dir, stem)], notes=notes))
  return sections

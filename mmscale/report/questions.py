"""The demo's questions drawn (mmscale/report/headline.py answers them in numbers): per-modality
IsoFLOP valleys of one architecture, and the dense/MoE and early/late frontiers side by side.

Needs a study with an `arch` axis naming early_dense / early_moe / late_dense runs (experiments/demo.py).
"""

import numpy as np

from mmscale.report import headline as hl
from mmscale.report import style

PAIRS = (("early_dense", "early_moe"), ("early_dense", "late_dense"))


def _runs(ctx):
  runs = hl.final_runs(ctx.table)
  if not runs:
    raise style.CannotDraw("no finished run")
  return runs


def _valleys(ctx, runs, arch="early_dense"):
  mine = [r for r in runs if r["arch"] == arch]
  mods = [m for m in hl.MODALITIES if sum(f"loss_{m}" in r for r in mine) >= 3]
  if len(mods) < 2:
    raise style.CannotDraw(f"{arch}: text and image losses are needed (train with model.image_loss on)")
  budgets = sorted({r["budget"] for r in mine})
  fig, axes = style.subplots(len(mods))
  for ax, m in zip(axes, mods):
    for b, color in zip(budgets, style.budget_colors(len(budgets))):
      pts = sorted((r["params"], r[f"loss_{m}"]) for r in mine if r["budget"] == b and f"loss_{m}" in r)
      n, y = np.array(pts).T
      ax.plot(n, y, "o", color=color, label=f"C={b:.2g}")
      if n.size >= 3:
        c2, c1, c0 = np.polyfit(np.log(n), y, 2)
        x = np.linspace(np.log(n.min()), np.log(n.max()), 50)
        ax.plot(np.exp(x), np.polyval((c2, c1, c0), x), "-", color=color, lw=1)
        if c2 > 0:
          v = -c1 / (2 * c2)
          ax.plot(np.exp(v), np.polyval((c2, c1, c0), v), "*", color=color, ms=11, mec="k")
    ax.set(xscale="log", xlabel=style.PARAMS_LABEL, ylabel=f"{m} loss (nats per target)",
           title=f"{arch}: IsoFLOP valleys of the {m} loss")
    ax.legend(fontsize=7)
  style.stamp(fig, ctx.convention + "   star = parabola vertex (N_opt of that modality)")
  return style.save(fig, ctx.out_dir, "questions_valleys")


def _frontiers(ctx, runs):
  fig, axes = style.subplots(len(PAIRS))
  drawn = 0
  for ax, pair in zip(axes, PAIRS):
    for arch, color in zip(pair, style.group_colors(2)):
      mine = [r for r in runs if r["arch"] == arch and "loss_text" in r]
      if not mine:
        continue
      drawn += 1
      ax.plot([r["flops"] for r in mine], [r["loss_text"] for r in mine], "o", color=color, alpha=0.3)
      best = [min((r for r in mine if r["budget"] == b), key=lambda r: r["loss_text"])
              for b in sorted({r["budget"] for r in mine})]
      ax.plot([r["flops"] for r in best], [r["loss_text"] for r in best], "-o", color=color, label=arch)
    style.log_loss_axis(ax)
    ax.set(xscale="log", xlabel=style.FLOPS_LABEL, ylabel="text loss (nats per token)",
           title=f"{pair[1]} against {pair[0]}")
    if ax.get_legend_handles_labels()[0]:
      ax.legend(fontsize=8)
  if not drawn:
    raise style.CannotDraw("no early_dense / early_moe / late_dense runs with a text loss")
  style.stamp(fig, ctx.convention + "   line = lowest loss per budget (the frontier); dots = every run")
  return style.save(fig, ctx.out_dir, "questions_frontiers")


def draw(ctx):
  if "arch" not in ctx.table:  # Another study's table: these panels are not part of its report.
    return []
  runs = _runs(ctx)
  images, notes = [], []
  for name, fn in (("valleys", lambda: _valleys(ctx, runs)), ("frontiers", lambda: _frontiers(ctx, runs))):
    try:
      images.append(fn())
    except style.CannotDraw as e:
      notes.append(f"{name}: {e}")
  if not images:
    raise style.CannotDraw("; ".join(notes))
  return [style.Section(
      "questions", "The demo's questions",
      "Per-modality IsoFLOP valleys (Tong et al. 2026: the image valley's minimum moves to larger N "
      "more slowly when vision is more data-hungry) and the dense/MoE and early/late frontiers "
      "(Shukor et al. 2025) side by side; the headline gives each effect with its 95 % interval.",
      images=images, notes=notes)]

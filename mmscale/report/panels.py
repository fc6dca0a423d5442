"""Per-source panels (image-caption / interleaved / text validation sets) and per-modality panels
(text / image / audio targets, in nats and in bits per raw byte), loss against compute."""

import numpy as np

from mmscale.report import style
from mmscale.report import table as tbl
from mmscale.report.frontier import plot_loss_vs_compute, spans_compute


def _finalise(ax, title, ylabel):
  style.log_loss_axis(ax)
  ax.set(xscale="log", xlabel=style.FLOPS_LABEL, ylabel=ylabel, title=title)
  ax.legend(loc="upper right")


def draw_sources(ctx):
  final = tbl.take(ctx.table, tbl.final_mask(ctx.table))
  if not spans_compute(final):
    raise style.CannotDraw("all finished runs are at one compute value")
  names = tbl.sources(final)
  if len(names) < 2:
    have = f"only source {names[0]!r}" if names else "no source column"
    raise style.CannotDraw(f"{have} in the table (per-source panels need 2 or more sources)")
  fig, axes = style.subplots(len(names))
  notes = []
  for ax, name in zip(axes, names):
    pts = tbl.take(final, final["source"].astype(str) == name)
    fr, _ = plot_loss_vs_compute(ax, pts, None)
    if fr is None:
      notes.append(f"{name}: no frontier (too few points or no laws library)")
    _finalise(ax, f"source: {name}", ctx.metric_label)
  fig.suptitle("per validation source (all runs)")
  style.stamp(fig, ctx.convention + "   colour = N")
  return [style.Section(
      "sources", "Per validation source",
      "Final loss on each validation source against compute, with a frontier per source.",
      images=[style.save(fig, ctx.out_dir, "sources")], notes=notes)]


def _modality_columns(final):
  """(column, modality, unit) present with finite values: nats per target, then bits per byte."""
  out = []
  for prefix, unit in (("loss", "nats per target"), ("bpb", "bits per raw byte")):
    for m in tbl.MODALITIES:
      col = prefix if m == "text" and prefix in final else f"{prefix}_{m}"
      if col in final and final[col].dtype.kind == "f" and np.isfinite(final[col]).sum() >= 2:
        out.append((col, m, unit))
  return out


def draw_modalities(ctx):
  final = tbl.final_points(ctx.table, "mean")
  if not spans_compute(final):
    raise style.CannotDraw("all finished runs are at one compute value")
  cols = _modality_columns(final)
  modalities = {m for _, m, _ in cols}
  if len(modalities) < 2:
    raise style.CannotDraw("losses of only one modality in the table (needs loss_image / "
                           "loss_audio or bpb_* columns)")
  fig, axes = style.subplots(len(cols), ncols=len(modalities))  # one row per unit
  for ax, (col, m, unit) in zip(axes, cols):
    ok = np.isfinite(final[col])
    pts = {**tbl.take(final, ok), "loss": final[col][ok]}
    plot_loss_vs_compute(ax, pts, None)
    _finalise(ax, f"{m} targets ({col})", f"{m} loss ({unit})")
  style.stamp(fig, ctx.convention + "   mean over validation sources; colour = N")
  return [style.Section(
      "modalities", "Per modality",
      "Loss on text, image and audio targets against compute. Bits per raw byte make modalities "
      "comparable across tokenisers.",
      images=[style.save(fig, ctx.out_dir, "modalities")])]

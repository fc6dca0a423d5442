"""MoE expert specialization from routing counts [layer, expert, modality] (the table's routing).

The heatmaps show, per layer, how each modality's tokens spread over the experts. The score per
layer is the records' own (mmscale.contract.specialization_score, Shukor et al. 2025 §4.4): the mean
over experts of 1 - H(p), p an expert's share of text and image tokens; 0 when every expert sees
both in equal parts, 1 when each expert sees one modality only.
"""

import numpy as np

from mmscale import contract
from mmscale.errors import UserError
from mmscale.report import style

_SHOW = contract.MODALITIES


def counts_of(routing) -> tuple:
  """(counts [L, E, M] float, modality names) from a routing field; UserError if malformed."""
  counts = np.asarray(routing.get("counts"), dtype=float)
  if counts.ndim == 2:  # one MoE layer
    counts = counts[None]
  if counts.ndim != 3:
    raise UserError(f"routing counts must be [layers, experts, modalities], got shape {counts.shape}")
  names = list(routing.get("modalities") or [f"m{i}" for i in range(counts.shape[2])])
  if len(names) != counts.shape[2]:
    raise UserError(f"routing has {counts.shape[2]} modality columns but names {names}")
  return counts, names


def shares(counts) -> np.ndarray:
  """[L, E, M]: share of modality m's tokens in layer l routed to expert e (sums to 1 over e)."""
  tot = counts.sum(1, keepdims=True)
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.where(tot > 0, counts / tot, np.nan)


def specialization(counts, names) -> np.ndarray:
  """[L] score per layer, the formula of the records (contract.specialization_score) over the
  text and image columns (nan where the layer saw neither)."""
  columns = [names.index(m) for m in ("text", "image") if m in names]
  if len(columns) < 2:
    return np.full(counts.shape[0], np.nan)
  return np.array([contract.specialization_score(c, columns) for c in counts])


def draw(ctx):
  runs = {}
  for run_id, routing in sorted(ctx.routing.items()):
    counts, names = counts_of(routing)
    if counts.shape[1] >= 2 and counts.sum() > 0:
      runs[run_id] = (counts, names)
  if not runs:
    raise style.CannotDraw("no MoE runs with routing counts (the table's routing column, written "
                           "by mmscale collect)")
  params = {}
  if "run_id" in ctx.points:
    params = dict(zip(ctx.points["run_id"].astype(str), ctx.points["params"]))
  # The heatmap shows the largest MoE run; the score panel shows every run.
  big = max(runs, key=lambda r: (params.get(r, 0), r))
  counts, names = runs[big]
  show = [i for i, m in enumerate(names) if m in _SHOW and counts[:, :, i].sum() > 0]
  # Non-text modalities also get the mix inside each expert: which experts are "image experts".
  mixes = [i for i in show if names[i] != "text"]
  n_panels = len(show) + len(mixes) + 1
  fig, axes = style.subplots(n_panels, width=3.9, height=3.4, ncols=min(n_panels, 4))
  sh = shares(counts)
  with np.errstate(invalid="ignore", divide="ignore"):
    mix = counts / counts.sum(2, keepdims=True)
  panels = [(sh[:, :, i], f"share of {names[i]} tokens per expert",
             f"share of the layer's {names[i]} tokens", "magma", None) for i in show]
  panels += [(mix[:, :, i], f"{names[i]} share of each expert's tokens",
              f"{names[i]} fraction of the expert's load", "coolwarm", 1.0) for i in mixes]
  for ax, (data, title, label, cmap, vmax) in zip(axes, panels):
    im = ax.imshow(data, aspect="auto", cmap=cmap, vmin=0,
                   vmax=vmax or max(np.nanmax(data), 1e-9), origin="lower")
    ax.set(xlabel="expert", ylabel="MoE layer", title=title)
    ax.set_xticks(range(counts.shape[1]))
    ax.set_yticks(range(counts.shape[0]))
    ax.grid(False)
    fig.colorbar(im, ax=ax, label=label)
  ax = axes[-1]
  ax.set_xticks(range(counts.shape[0]))
  # Colour by size when every routed run has a finished point (else matplotlib's cycle).
  colors = style.size_colors([params[r] for r in runs]) if all(r in params for r in runs) else None
  for k, (run_id, (c, run_names)) in enumerate(runs.items()):
    score = specialization(c, run_names)
    ax.plot(np.arange(len(score)), score, "o-", ms=3, color=colors[k] if colors else None,
            label=run_id if len(runs) <= 8 else None)
  ax.axhline(0, color="0.5", lw=0.6)
  ax.set(xlabel="MoE layer", ylabel="specialization: mean over experts of 1 − H(p)",
         title="specialization per layer", ylim=(-0.02, 1.02))
  if len(runs) <= 8:
    ax.legend(loc="upper left", fontsize=6)
  style.stamp(fig, f"heatmaps: run {big} ({counts.shape[1]} experts, {counts.shape[0]} MoE layers); "
              "p = an expert's text/image share; colour = N")
  return [style.Section(
      "experts", "MoE expert specialization",
      "Where each modality's tokens go: per MoE layer, the share of text and image tokens routed "
      "to each expert, and the specialization score per layer for every MoE run.",
      images=[style.save(fig, ctx.out_dir, "experts")])]

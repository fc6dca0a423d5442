"""The parametric law L(N, D) as contours over (N, D) with the runs on top, and predicted against
observed loss with held-out runs marked."""

import matplotlib.colors
import numpy as np

from mmscale.contract import LAW_FORMULA
from mmscale.report import law, style
from mmscale.report import table as tbl


def draw_contours(ctx):
  studies = [s for s in ctx.studies if law.has_law(s.fit)]
  if not studies:
    raise style.CannotDraw("no parametric fit (E, A, B, alpha, beta)")
  fig, axes = style.subplots(len(studies), width=4.6, height=3.8)
  for ax, study in zip(axes, studies):
    p = study.points
    n_lo, n_hi = p["params"].min() / 3, p["params"].max() * 3
    d_lo, d_hi = p["tokens"].min() / 3, p["tokens"].max() * 3
    nn, dd = np.meshgrid(np.geomspace(n_lo, n_hi, 120), np.geomspace(d_lo, d_hi, 120))
    ll = law.loss(study.fit, nn, dd)
    # Levels span the runs' losses (plus a margin), not the far corner where the law blows up.
    top = p["loss"].max() + 0.3 * np.ptp(p["loss"])
    levels = np.linspace(min(ll.min(), p["loss"].min()), top, 14)
    norm = matplotlib.colors.Normalize(levels[0], levels[-1])
    cs = ax.contourf(nn, dd, ll, levels=levels, cmap="viridis", norm=norm, extend="max")
    ax.contour(nn, dd, ll, levels=levels, colors="w", linewidths=0.3, alpha=0.5)
    ax.scatter(p["params"], p["tokens"], c=p["loss"], cmap="viridis", norm=norm, s=22,
               edgecolors="k", linewidths=0.6, zorder=4, label="runs (fill = observed loss)")
    # Iso-compute lines C = 6ND through the budgets of the runs, and the law's optimal path.
    n_line = np.geomspace(n_lo, n_hi, 50)
    for c in np.unique(np.round(np.log10(tbl.flops(p)), 1)):
      ax.plot(n_line, 10 ** c / (6 * n_line), ":", color="w", lw=0.8)
    c_path = np.geomspace(6 * n_lo * d_lo, 6 * n_hi * d_hi, 100)
    n_opt, d_opt = law.optimum(study.fit, c_path)
    ax.plot(n_opt, d_opt, "-", color="tab:red", lw=1.5, label="compute-optimal path")
    ax.set(xscale="log", yscale="log", xlim=(n_lo, n_hi), ylim=(d_lo, d_hi),
           xlabel=style.PARAMS_LABEL, ylabel=style.TOKENS_LABEL)
    law.set_title(ax, study)
    ax.legend(loc="upper right")
    fig.colorbar(cs, ax=ax, label=ctx.metric_label)
  style.stamp(fig, ctx.convention + "   dotted white: C = 6ND iso-compute lines")
  return [style.Section(
      "contours", "Parametric fit over (N, D)",
      f"Contours of {LAW_FORMULA}; circles are the runs filled with their observed "
      "loss on the same colour scale, so a misfit shows as a circle that stands out.",
      images=[style.save(fig, ctx.out_dir, "contours")], html=law.warning_html(studies))]


def heldout_split(study):
  """(law used to predict, held-out mask, how). With a held-out evaluation in the fit, its law was
  fitted on N <= max_train_params only, so the larger runs are true extrapolations."""
  held = (study.fit or {}).get("heldout") or {}
  p = study.points
  if law.has_law(held.get("fit")) and held.get("axis") == "budget" and "max_train_budget" in held:
    mask = tbl.flops(p) > held["max_train_budget"]
    return held["fit"], mask, f"law fitted on budgets C ≤ {held['max_train_budget']:.3g}"
  if law.has_law(held.get("fit")) and "max_train_params" in held:
    mask = p["params"] > held["max_train_params"]
    return held["fit"], mask, f"law fitted on N ≤ {held['max_train_params']:.3g}"
  return study.fit, tbl.bool_column(p, "heldout"), "law fitted on all runs"


def draw_predicted(ctx):
  studies = [s for s in ctx.studies if law.has_law(s.fit)]
  if not studies:
    raise style.CannotDraw("no parametric fit to predict with")
  fig, axes = style.subplots(1, width=4.8, height=4.4)
  ax = axes[0]
  notes, lo, hi = [], np.inf, -np.inf
  for color, study in zip(style.group_colors(len(studies)), studies):
    p = study.points
    fit, held, how = heldout_split(study)
    pred = law.loss(fit, p["params"], p["tokens"])
    obs = p["loss"]
    name = study.label if len(studies) > 1 else "runs"
    ax.scatter(pred[~held], obs[~held], s=16, color=color, alpha=0.8, label=f"{name} (in fit)")
    if held.any():
      ax.scatter(pred[held], obs[held], s=60, marker="X", color=color, edgecolors="k",
                 linewidths=0.7, label=f"{name} (held out)")
      err = np.abs(pred[held] - obs[held]) / obs[held]
      notes.append(f"{study.label}: {how}; held-out MAE {100 * err.mean():.2f} % over "
                   f"{held.sum()} runs")
    else:
      notes.append(f"{study.label}: no run held out of the fit (--heldout=largest checks "
                   "extrapolation to the largest size)")
    err = np.abs(pred[~held] - obs[~held]) / obs[~held]
    if err.size:
      notes.append(f"{study.label}: in-fit mean relative error {100 * err.mean():.2f} % "
                   f"over {err.size} runs")
    lo, hi = min(lo, pred.min(), obs.min()), max(hi, pred.max(), obs.max())
  pad = 0.03 * (hi - lo)
  ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k-", lw=0.8, label="y = x")
  ax.set(xlabel=f"predicted {ctx.metric_label}", ylabel=f"observed {ctx.metric_label}",
         xlim=(lo - pad, hi + pad), ylim=(lo - pad, hi + pad), title="predicted vs observed")
  ax.set_aspect("equal")
  ax.legend(loc="upper left")
  style.stamp(fig, ctx.convention)
  return [style.Section(
      "predicted", "Predicted against observed",
      "Each run's final loss against the parametric law's prediction; crosses are runs held out of "
      "the fit (extrapolation to larger models; fit with --heldout=largest to make some).",
      images=[style.save(fig, ctx.out_dir, "predicted")], notes=notes, html=law.warning_html(studies))]

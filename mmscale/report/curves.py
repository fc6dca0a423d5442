"""Training curves: validation loss against tokens seen for every run, coloured by model size."""

import matplotlib.cm
import matplotlib.colors
import numpy as np

from mmscale.report import style
from mmscale.report import table as tbl


def draw(ctx):
  t = ctx.table
  if "step" not in t:
    raise style.CannotDraw("the table has no step column (one eval per run): no curves")
  names = tbl.sources(t) or [None]
  runs = sorted(set(t["run_id"].astype(str)))
  lo, hi = np.nanmin(t["params"]), np.nanmax(t["params"])
  norm = matplotlib.colors.LogNorm(lo, hi if hi > lo else lo * 1.01)
  cmap = matplotlib.colormaps["viridis_r"]
  fig, axes = style.subplots(len(names))
  multi_point = 0
  for ax, name in zip(axes, names):
    rows = t if name is None else tbl.take(t, t["source"].astype(str) == name)
    rid = rows["run_id"].astype(str)
    for run in runs:
      m = rid == run
      if not m.any():
        continue
      order = np.argsort(rows["step"][m])
      x, y = rows["tokens"][m][order], rows["loss"][m][order]
      multi_point += len(x) > 1
      ax.plot(x, y, "-", color=cmap(norm(rows["params"][m][0])), lw=1, alpha=0.85)
    style.log_loss_axis(ax)
    ax.set(xscale="log", xlabel="tokens seen (D)", ylabel=ctx.metric_label,
           title=f"source: {name}" if name else "validation loss")
    fig.colorbar(matplotlib.cm.ScalarMappable(norm, cmap), ax=ax, label=style.PARAMS_LABEL)
  if not multi_point:
    style.plt.close(fig)
    raise style.CannotDraw("every run has a single eval point: no curves to draw")
  style.stamp(fig, ctx.convention + f"   {len(runs)} runs")
  return [style.Section(
      "curves", "Training curves",
      "Validation loss of every run during training; darker lines are larger models.",
      images=[style.save(fig, ctx.out_dir, "curves")])]

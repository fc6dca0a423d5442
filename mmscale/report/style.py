"""Shared figure plumbing: the Agg backend, one save for PNG + SVG, colours by model size.

Every figure family module returns Section objects; a family that has nothing to draw raises
CannotDraw with a one-line reason, which the page prints in place of an empty panel.
"""

import dataclasses
import io
import textwrap

import matplotlib

matplotlib.use("Agg")  # Headless: reports are drawn on clusters and in CI without a display.
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402

plt.rcParams.update({
    "figure.dpi": 110, "savefig.dpi": 110, "font.size": 9, "axes.titlesize": 10,
    "axes.grid": True, "grid.alpha": 0.3, "legend.fontsize": 7, "legend.framealpha": 0.8,
    "svg.fonttype": "none",  # Text stays text in the SVG (searchable, small).
})

FLOPS_LABEL = "training compute C (FLOPs)"
PARAMS_LABEL = "parameters N"
TOKENS_LABEL = "training tokens D"


class CannotDraw(Exception):
  """A figure family that has no data to draw (e.g. no MoE runs); the message is the reason."""


@dataclasses.dataclass
class Section:
  key: str
  title: str
  caption: str = ""
  images: list = dataclasses.field(default_factory=list)  # file stems, PNG + SVG beside each
  notes: list = dataclasses.field(default_factory=list)  # lines shown under the figure
  html: str = ""  # extra trusted HTML (the coefficient table)


def save(fig, out_dir, stem: str) -> str:
  """Writes <stem>.png and <stem>.svg into out_dir, closes the figure, returns the stem.

  Constrained layout already fits everything inside the figure, so no bbox_inches="tight"
  (which draws each figure twice more)."""
  for ax in fig.axes:
    _tidy_log_axes(ax)
  for fmt in ("png", "svg"):
    buf = io.BytesIO()  # Through bytes: out_dir may be an epath on a bucket (gs://).
    fig.savefig(buf, format=fmt)
    (out_dir / f"{stem}.{fmt}").write_bytes(buf.getvalue())
  plt.close(fig)
  return stem


def subplots(n: int, width: float = 4.2, height: float = 3.4, ncols: int | None = None):
  """A row (or grid) of n panels; returns (fig, flat list of axes)."""
  ncols = min(n, ncols or 3)
  nrows = -(-n // ncols)
  fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False,
                           layout="constrained")
  axes = list(axes.ravel())
  for ax in axes[n:]:
    ax.set_visible(False)
  return fig, axes[:n]


def size_colors(values):
  """Maps model sizes (parameter counts) to colours on a log scale: small = light, big = dark."""
  values = np.asarray(values, dtype=float)
  cmap = plt.get_cmap("viridis_r")
  lo, hi = np.log(np.nanmin(values)), np.log(np.nanmax(values))
  span = hi - lo if hi > lo else 1.0
  return [cmap(0.1 + 0.85 * (np.log(v) - lo) / span) for v in values]


def budget_colors(n: int):
  cmap = plt.get_cmap("plasma")
  return [cmap(0.05 + 0.8 * i / max(n - 1, 1)) for i in range(n)]


def group_colors(n: int):
  return [plt.get_cmap("tab10")(i % 10) for i in range(n)]


def stamp(fig, convention: str) -> None:
  """Marks the FLOPs / parameter-count convention on every figure, bottom left."""
  # Wrapped to the figure's width (about 15 characters per inch at 7 pt), in a strip at the
  # bottom that the layout keeps free.
  lines = textwrap.wrap(convention, width=max(40, int(fig.get_figwidth() * 15)))
  band = (0.06 + 0.12 * len(lines)) / fig.get_figheight()
  fig.get_layout_engine().set(rect=(0, band, 1, 1 - band))
  fig.text(0.005, 0.04 / fig.get_figheight(), "\n".join(lines), fontsize=7, color="0.35",
           ha="left", va="bottom")


def log_loss_axis(ax) -> None:
  """Log y axis for losses (power laws), labelled 3.5 rather than 3.5×10^0."""
  ax.set_yscale("log")
  fmt = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:.3g}")
  ax.yaxis.set_major_formatter(fmt)
  lo, hi = ax.get_ylim()
  if hi / lo < 10:  # Within a decade a log axis has one or two labels: place round values instead.
    ticks = matplotlib.ticker.MaxNLocator(6).tick_values(lo, hi)
    ax.yaxis.set_major_locator(matplotlib.ticker.FixedLocator(ticks[(ticks >= lo) & (ticks <= hi)]))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def _short(v, _=None) -> str:
  """2e5 rather than 2×10^5 or 200000 (tick labels in tight spaces)."""
  if v <= 0:
    return ""
  if 1e-3 <= abs(v) < 1e4:
    return f"{v:.3g}"
  m, e = f"{v:.0e}".split("e")
  return f"{m}e{int(e)}"


def _tidy_log_axes(ax) -> None:
  """Log axes spanning little more than a decade get ticks at 1-2-5 with short labels, instead
  of matplotlib's minor-tick labels that run into each other."""
  for axis, lim in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
    if axis.get_scale() != "log" or isinstance(axis.get_major_locator(),
                                               matplotlib.ticker.FixedLocator):
      continue
    lo, hi = sorted(lim)
    if lo > 0 and hi / lo < 30:
      axis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
      axis.set_major_formatter(matplotlib.ticker.FuncFormatter(_short))
      axis.set_minor_formatter(matplotlib.ticker.NullFormatter())

"""What every figure family receives: the table, its studies (one per model family), their fits."""

import dataclasses

import numpy as np

from mmscale.report import table as tbl


@dataclasses.dataclass
class Study:
  """One model family / mixture: a subset of runs with its own fit (or the whole table)."""
  label: str
  rows: dict  # every eval row of these runs (training curves)
  points: dict  # final points, one per run (fits)
  fit: dict | None = None
  isoflop: dict | None = None  # approach-2 result, computed once (isoflop.isoflop_of)


@dataclasses.dataclass
class Context:
  out_dir: object  # epath.Path
  table: dict  # full records table
  points: dict  # final points of every run (metric chosen), the union of the studies' points
  studies: list
  convention: str
  metric_label: str  # y-axis label of the loss, with its unit
  routing: dict = dataclasses.field(default_factory=dict)  # run_id -> {"counts", "modalities"}
  comparison_columns: list = dataclasses.field(default_factory=list)
  progress: object = print


def budgets(points) -> np.ndarray:
  """IsoFLOP budget of each point: the `budget` tag, else the geometric mean of its compute group
  (computes within 5 % of the group's smallest, as the fitter's approach2 groups them)."""
  if "budget" in points:
    col = points["budget"]
    try:
      values = col.astype(float)
      if np.isfinite(values).all():
        return values
    except ValueError:
      pass
  c = tbl.flops(points)
  out = np.empty_like(c)
  order = np.argsort(c)
  start = 0
  for k in range(1, len(c) + 1):
    if k == len(c) or c[order[k]] > c[order[start]] * 1.05:
      group = order[start:k]
      out[group] = np.exp(np.mean(np.log(c[group])))
      start = k
  return out


def match_budget(budget, fitted_budgets, rtol=0.05):
  """Index of the fitted budget equal to `budget` within rtol, or None."""
  fitted = np.asarray(fitted_budgets, float)
  if fitted.size == 0:
    return None
  i = int(np.argmin(np.abs(np.log(fitted / budget))))
  return i if abs(fitted[i] / budget - 1) < rtol else None


def fmt_sci(x) -> str:
  """1.2e18 -> '1.2e18' (short labels for budgets)."""
  if x is None or not np.isfinite(x):
    return "nan"
  m, e = f"{x:.2g}".split("e") if "e" in f"{x:.2g}" else (f"{x:.2g}", None)
  return f"{m}e{int(e)}" if e is not None else m

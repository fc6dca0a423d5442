"""Approaches 1 and 2 of Hoffmann et al. (2022) and the compute frontier L ∝ C^c.

Approach 1: the lower envelope of all training curves in (FLOPs, loss); the model on the envelope at
each FLOP value is N_opt(C). Approach 2: per IsoFLOP budget, a parabola of loss against log N; its
vertex is N_opt(C). Both then fit N_opt ∝ C^a and D_opt = C / (6 N_opt) ∝ C^b.
"""

import numpy as np

from mmscale.errors import UserError
from mmscale.laws import derived
from mmscale.laws import table as tbl


def budget_ids(C, rel_tol=0.05):
  """Groups FLOP values that agree within rel_tol (IsoFLOP grids are not hit exactly) -> int ids."""
  order = np.argsort(C)
  ids = np.empty(C.size, int)
  current, anchor = 0, C[order[0]]
  for i in order:
    if C[i] > anchor * (1 + rel_tol):
      current, anchor = current + 1, C[i]
    ids[i] = current
  return ids


def approach2(table, budget_column=None, window=5) -> dict:
  """Per-budget parabola of loss vs log N -> {"budgets","n_opt","d_opt","parabolas","a","b",...}.

  Budgets come from `budget_column` (e.g. the sweep's `budget` tag) when given or present as "budget",
  else from the FLOPs (or 6ND) grouped within 5 %. The parabola is fitted to the `window` sizes around
  the lowest loss (None: all sizes): far from the optimum loss vs log N is not quadratic, and on Porian et
  al.'s grids (sizes up to 100x off the optimum) a global parabola moves a by up to 0.4. A budget whose
  lowest loss is at the smallest or largest size has no bracketed optimum and is skipped, as they do.
  """
  tbl.require(table, ("params", "loss"), "approach 2")
  N, L = table["params"], table["loss"]
  col = budget_column or ("budget" if "budget" in table and table["budget"].dtype.kind == "f" else None)
  if col is not None:
    if col not in table:
      raise UserError(f"approach 2: budget column {col!r} is not in the table")
    C = table[col]
    ids = np.unique(C, return_inverse=True)[1]
  else:
    tbl.require(table, ("tokens",), "approach 2")
    C = tbl.compute(table)
    ids = budget_ids(C)
  budgets, n_opt, parabolas, skipped = [], [], [], []
  for k in np.unique(ids):
    m = ids == k
    c = float(np.exp(np.mean(np.log(C[m]))))
    x, y = _best_per_size(np.log(N[m]), L[m])
    if x.size < 3:
      skipped.append({"budget": c, "reason": f"{x.size} model sizes (< 3)"})
      continue
    i = int(np.argmin(y))
    if i in (0, x.size - 1):
      skipped.append({"budget": c, "reason": "lowest loss at the edge of the sizes tried"})
      continue
    if window is not None:
      lo = min(max(0, i - window // 2), max(0, x.size - window))
      x, y = x[lo:lo + window], y[lo:lo + window]
    p2, p1, p0 = np.polyfit(x, y, 2)
    if p2 <= 0:
      skipped.append({"budget": c, "reason": "parabola opens downwards (no minimum)"})
      continue
    budgets.append(c)
    n_opt.append(float(np.exp(-p1 / (2 * p2))))
    parabolas.append([float(p2), float(p1), float(p0)])
  if len(budgets) < 2:
    raise UserError(f"approach 2 needs at least 2 budgets with a bracketed optimum; got {len(budgets)}"
                    + (f" (skipped: {skipped[0]['reason']})" if skipped else ""))
  budgets, n_opt = np.array(budgets), np.array(n_opt)
  d_opt = budgets / (6.0 * n_opt)
  fn, fd = derived.power_law(budgets, n_opt), derived.power_law(budgets, d_opt)
  return {"budgets": budgets.tolist(), "n_opt": n_opt.tolist(), "d_opt": d_opt.tolist(),
          "parabolas": parabolas, "a": fn["exponent"], "log_k": fn["log_coef"], "r2": fn["r2"],
          "b": fd["exponent"], "skipped": skipped}


def _best_per_size(x, y):
  """Sorted by size, keeping the lowest loss where a size repeats (e.g. several learning rates)."""
  o = np.lexsort((y, x))
  x, y = x[o], y[o]
  first = np.r_[True, np.diff(x) > 0]
  return x[first], y[first]


def approach1(table, curve_column=None, n_grid=40) -> dict:
  """Lower envelope of training curves (one per run) -> N_opt(C) and its power law.

  Needs several eval points per run: rows are grouped by `curve_column` (default run_id, else params).
  """
  tbl.require(table, ("params", "tokens", "loss"), "approach 1")
  col = curve_column or ("run_id" if "run_id" in table else "params")
  C, L, N = tbl.compute(table), table["loss"], table["params"]
  curves = []
  for key in np.unique(table[col]):
    m = table[col] == key
    if m.sum() < 2:
      continue
    o = np.argsort(C[m])
    curves.append((np.log(C[m][o]), L[m][o], float(np.median(N[m]))))
  if len(curves) < 2:
    raise UserError("approach 1 needs training curves (2+ eval points per run) for at least 2 runs")
  lo = min(c[0][0] for c in curves)
  hi = max(c[0][-1] for c in curves)
  grid = np.linspace(lo, hi, n_grid)
  best_l = np.full(n_grid, np.inf)
  best_n = np.full(n_grid, np.nan)
  for lc, l, n in curves:
    inside = (grid >= lc[0]) & (grid <= lc[-1])
    li = np.interp(grid[inside], lc, l)
    better = li < best_l[inside]
    idx = np.flatnonzero(inside)[better]
    best_l[idx], best_n[idx] = li[better], n
  ok = np.isfinite(best_l)
  Cg, Ng = np.exp(grid[ok]), best_n[ok]
  if np.unique(Ng).size < 2:
    raise UserError("approach 1: one model is on the whole envelope; the runs do not span enough compute")
  fn = derived.power_law(Cg, Ng)
  fd = derived.power_law(Cg, Cg / (6 * Ng))
  return {"flops": Cg.tolist(), "n_opt": Ng.tolist(), "loss": best_l[ok].tolist(),
          "a": fn["exponent"], "b": fd["exponent"], "r2": fn["r2"]}


def frontier(table) -> dict:
  """L ∝ C^c fitted on the lower convex hull of (log C, log L): the best loss reachable per FLOP."""
  tbl.require(table, ("params", "tokens", "loss"), "frontier")
  lc, ll = np.log(tbl.compute(table)), np.log(table["loss"])
  pts = np.unique(np.stack([lc, ll], 1), axis=0)
  if np.unique(pts[:, 0]).size < 2:
    raise UserError("frontier needs points at 2 or more compute values")
  hull = _lower_hull(pts)
  if hull.shape[0] < 2:
    raise UserError("frontier: the lower convex hull has fewer than 2 points")
  f = derived.power_law(np.exp(hull[:, 0]), np.exp(hull[:, 1]))
  return {"c": f["exponent"], "log_k": f["log_coef"], "r2": f["r2"],
          "points": [[float(np.exp(x)), float(np.exp(y))] for x, y in hull]}


def _lower_hull(pts):
  """Lower convex hull (Andrew's monotone chain), left to right, collinear points kept, up to the lowest
  loss (beyond it the frontier no longer falls). pts are unique [x, y] rows."""
  pts = pts[np.lexsort((pts[:, 1], pts[:, 0]))]
  pts = pts[np.r_[True, np.diff(pts[:, 0]) > 0]]  # lowest loss per compute value
  hull = []
  for p in pts:
    while len(hull) >= 2:
      (x1, y1), (x2, y2) = hull[-2], hull[-1]
      cross = (x2 - x1) * (p[1] - y1) - (y2 - y1) * (p[0] - x1)
      if cross < -1e-12 * max(1.0, abs(x2 - x1) * abs(p[1] - y1)):
        hull.pop()  # hull[-1] lies above the segment hull[-2] -> p
      else:
        break
    hull.append(p)
  v = np.array(hull)
  return v[: int(np.argmin(v[:, 1])) + 1]

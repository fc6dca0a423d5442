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
  """Groups FLOP values that agree within rel_tol (IsoFLOP grids are not hit exactly) -> int ids.

  A group starts at its smallest value and takes everything up to (1 + rel_tol) times it; the loop is
  over groups (searchsorted), not rows, so a million-row table costs milliseconds.
  """
  order = np.argsort(C, kind="stable")
  sc = C[order]
  ids_sorted = np.empty(C.size, int)
  start, current = 0, 0
  while start < sc.size:
    end = int(np.searchsorted(sc, sc[start] * (1 + rel_tol), side="right"))
    ids_sorted[start:end] = current
    start, current = end, current + 1
  ids = np.empty(C.size, int)
  ids[order] = ids_sorted
  return ids


def approach2(table, budget_column=None, window=None) -> dict:
  """Per-budget parabola of loss vs log N -> {"budgets","n_opt","d_opt","parabolas","a","b",...}.

  Budgets come from `budget_column` (e.g. the sweep's `budget` tag) when given or present as "budget",
  else from the FLOPs (or 6ND) grouped within 5 %. The parabola is fitted to all sizes of a budget by
  default (Hoffmann et al.'s Approach 2); `window=k` fits only the k sizes around the lowest loss, which
  is what reproduces Porian et al.'s grids (sizes up to 100x off the optimum, where loss vs log N is no
  longer quadratic). A budget whose lowest loss is at its smallest or largest size has no bracketed
  optimum and is skipped (as they do); the skip names the edge so the diagnostics can say what to add.
  D_opt is read off the runs' own tokens (log D interpolated linearly in log N at N_opt), not
  budget/(6 N_opt): the budget label and 6ND drift apart when FLOPs are counted another way.
  """
  if window is not None and (not isinstance(window, (int, np.integer)) or window < 3):
    raise UserError(f"--isoflop_window={window!r}: must be an integer >= 3 (sizes around the minimum), "
                    "or unset for all sizes")
  rows = budget_vertices(table, budget_column, window)
  ok = [r for r in rows if "n_opt" in r]
  skipped = [r for r in rows if "n_opt" not in r]
  if len(ok) < 2:
    raise UserError(f"approach 2 needs at least 2 budgets with a bracketed optimum; got {len(ok)}"
                    + (f" (skipped: {skipped[0]['reason']})" if skipped else ""))
  budgets = np.array([r["budget"] for r in ok])
  n_opt, d_opt = np.array([r["n_opt"] for r in ok]), np.array([r["d_opt"] for r in ok])
  fn, fd = derived.power_law(budgets, n_opt), derived.power_law(budgets, d_opt)
  return {"budgets": budgets.tolist(), "n_opt": n_opt.tolist(), "d_opt": d_opt.tolist(),
          "parabolas": [r["parabola"] for r in ok], "a": fn["exponent"], "log_k": fn["log_coef"],
          "r2": fn["r2"], "b": fd["exponent"], "window": window,
          "d_opt_from": ok[0]["d_opt_from"], "skipped": skipped}


def budget_vertices(table, budget_column=None, window=None) -> list[dict]:
  """One dict per budget: {"budget", "n_opt", "d_opt", "parabola"} or {"budget", "reason"[, "edge", "size"]}."""
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
  has_tokens = "tokens" in table and table["tokens"].dtype.kind == "f" and np.all(table["tokens"] > 0)
  out = []
  order = np.argsort(ids, kind="stable")
  for m in np.split(order, np.flatnonzero(np.diff(ids[order])) + 1):  # row indices of each budget
    c = float(np.exp(np.mean(np.log(C[m]))))
    lD = np.log(table["tokens"][m]) if has_tokens else np.log(c / (6.0 * N[m]))
    x, y, xd = _best_per_size(np.log(N[m]), L[m], lD)
    if x.size < 3:
      out.append({"budget": c, "reason": f"{x.size} model sizes (< 3)"})
      continue
    i = int(np.argmin(y))
    if i in (0, x.size - 1):
      edge = "smallest" if i == 0 else "largest"
      out.append({"budget": c, "reason": f"lowest loss at the {edge} size tried", "edge": edge,
                  "size": float(np.exp(x[i]))})
      continue
    near = (x[i - 1], x[i + 1])  # the sizes beside the lowest loss: a quadratic's vertex should be between
    if window is not None:
      lo = min(max(0, i - window // 2), max(0, x.size - window))
      x, y, xd = x[lo:lo + window], y[lo:lo + window], xd[lo:lo + window]
    p2, p1, p0 = np.polyfit(x, y, 2)
    if p2 <= 0:
      out.append({"budget": c, "reason": "parabola opens downwards (no minimum)"})
      continue
    ln_opt = -p1 / (2 * p2)
    k_d, c_d = np.polyfit(x, xd, 1)  # along one budget, log D is (near) linear in log N
    out.append({"budget": c, "n_opt": float(np.exp(ln_opt)), "d_opt": float(np.exp(k_d * ln_opt + c_d)),
                "parabola": [float(p2), float(p1), float(p0)], "skewed": bool(not near[0] <= ln_opt <= near[1]),
                "d_opt_from": "runs' tokens" if has_tokens else "budget / (6 N)"})
  return out


def _best_per_size(x, y, z):
  """Sorted by size, keeping the lowest loss (and its z) where a size repeats (e.g. several learning rates)."""
  o = np.lexsort((y, x))
  x, y, z = x[o], y[o], z[o]
  first = np.r_[True, np.diff(x) > 0]
  return x[first], y[first], z[first]


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
  # The hull falls up to the lowest loss, so each of its points is at or below every point to its left:
  # only running minima can be on it (this keeps a million-row table's hull loop short).
  pts = pts[: int(np.argmin(pts[:, 1])) + 1]
  pts = pts[pts[:, 1] <= np.minimum.accumulate(pts[:, 1])]
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

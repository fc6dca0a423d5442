"""Held-out evaluation: fit on the smaller models (or budgets), predict the larger ones."""

import numpy as np

from mmscale.errors import UserError
from mmscale.laws import chinchilla
from mmscale.laws import diagnostics


def metrics(pred, obs) -> dict:
  pred, obs = np.asarray(pred, np.float64), np.asarray(obs, np.float64)
  resid = obs - pred
  ss = np.sum((obs - obs.mean()) ** 2)
  return {"mse": float(np.mean(resid**2)), "r2": float(1 - resid @ resid / ss) if ss > 0 else float("nan"),
          "mae_pct": float(np.mean(np.abs(resid) / obs) * 100)}


HOW = "'largest' (size), 'largest_budget', or size:X / budget:X with X a fraction in (0, 1) or a threshold"


def split(N, C, heldout):
  """Mask of held-out rows by model size (N) or by compute budget (C).

  'largest' holds out the largest size, 'largest_budget' the largest budget; 'size:X' / 'budget:X' hold out
  the top fraction X in (0, 1) of the distinct values, or every value above a threshold X. A bare X means
  size:X (the older spelling). Budgets are the compute values grouped within 5 % (isoflop.budget_ids).
  """
  how = "largest" if heldout in (None, "") else str(heldout)
  axis, _, arg = how.rpartition(":") if ":" in how else ("size", "", how)
  if how == "largest_budget":
    axis, arg = "budget", "largest"
  if axis not in ("size", "budget"):
    raise UserError(f"--heldout={heldout!r}: expected {HOW}")
  if axis == "budget":
    if C is None:
      raise UserError(f"--heldout={heldout!r}: holding out by budget needs compute (flops or tokens) per row")
    from mmscale.laws import isoflop
    ids = isoflop.budget_ids(np.asarray(C, np.float64))
    # Each row's budget as the geometric mean of its group, so thresholds compare with what is printed.
    v = np.exp(np.bincount(ids, np.log(C)) / np.bincount(ids))[ids]
  else:
    v = np.asarray(N, np.float64)
  return _split(v, arg, heldout, "budgets" if axis == "budget" else "model sizes")


def _split(v, arg, heldout, what):
  values = np.unique(v)
  if values.size < 2:
    raise UserError(f"--heldout={heldout}: held-out evaluation needs at least 2 {what}; the table has {values.size}")
  if arg == "largest":
    thr = values[-2]
  else:
    try:
      x = float(arg)
    except ValueError:
      raise UserError(f"--heldout={heldout!r}: expected {HOW}") from None
    if 0 < x < 1:
      keep = max(1, int(np.floor(values.size * (1 - x))))
      thr = values[keep - 1]
    else:
      thr = x
  mask = v > thr
  if not mask.any() or mask.all():
    raise UserError(f"--heldout={heldout}: must leave {what} on both sides ({values[0]:.3g}..{values[-1]:.3g})")
  return mask


def split_sizes(N, heldout):
  """Mask of held-out rows by model size (kept for callers that split only by size)."""
  return split(N, None, heldout)


def heldout(N, D, L, how="largest", C=None, **fit_kw) -> dict:
  """Fits Approach 3 on the rows kept in and reports errors on the held-out rows (by size or budget)."""
  N, D, L = (np.asarray(v, np.float64) for v in (N, D, L))
  C = 6.0 * N * D if C is None else np.asarray(C, np.float64)
  test = split(N, C, how)
  fit = chinchilla.fit(N[~test], D[~test], L[~test], **fit_kw)
  pred = chinchilla.predict(fit, N[test], D[test])
  out = metrics(pred, L[test])
  out.update({"how": str(how or "largest"), "n_train": int((~test).sum()), "n_test": int(test.sum()),
              "axis": "budget" if "budget" in str(how) else "size",
              # Budgets are grouped in sorted order, so every held-out row has more compute than this.
              "max_train_budget": float(C[~test].max()),
              "max_train_params": float(N[~test].max()), "fit": {k: fit[k] for k in ("E", "A", "B", "alpha", "beta")},
              "fit_problems": diagnostics.law_problems(fit, float(L[~test].min()))})
  return out

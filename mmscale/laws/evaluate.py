"""Held-out evaluation: fit on the smaller models, predict the larger ones."""

import numpy as np

from mmscale.errors import UserError
from mmscale.laws import chinchilla


def metrics(pred, obs) -> dict:
  pred, obs = np.asarray(pred, np.float64), np.asarray(obs, np.float64)
  resid = obs - pred
  ss = np.sum((obs - obs.mean()) ** 2)
  return {"mse": float(np.mean(resid**2)), "r2": float(1 - resid @ resid / ss) if ss > 0 else float("nan"),
          "mae_pct": float(np.mean(np.abs(resid) / obs) * 100)}


def split_sizes(N, heldout):
  """Mask of held-out rows: "largest" (the largest size), a fraction in (0,1) of sizes, or a params threshold."""
  sizes = np.unique(N)
  if sizes.size < 2:
    raise UserError("held-out evaluation needs at least 2 model sizes")
  if heldout in (None, "", "largest"):
    thr = sizes[-2]
  else:
    try:
      v = float(heldout)
    except ValueError:
      raise UserError(f"--heldout={heldout!r}: expected 'largest', a fraction in (0, 1) or a parameter count")
    if 0 < v < 1:
      keep = max(1, int(np.floor(sizes.size * (1 - v))))
      thr = sizes[keep - 1]
    else:
      thr = v
  mask = N > thr
  if not mask.any() or mask.all():
    raise UserError(f"--heldout={heldout}: must leave models on both sides (sizes {sizes[0]:.3g}..{sizes[-1]:.3g})")
  return mask


def heldout(N, D, L, how="largest", **fit_kw) -> dict:
  """Fits Approach 3 on rows with N at or below the split and reports errors on the rest."""
  N, D, L = (np.asarray(v, np.float64) for v in (N, D, L))
  test = split_sizes(N, how)
  fit = chinchilla.fit(N[~test], D[~test], L[~test], **fit_kw)
  pred = chinchilla.predict(fit, N[test], D[test])
  out = metrics(pred, L[test])
  out.update({"n_train": int((~test).sum()), "n_test": int(test.sum()),
              "max_train_params": float(N[~test].max()), "fit": {k: fit[k] for k in ("E", "A", "B", "alpha", "beta")}})
  return out

"""Bootstrap of the Approach-3 fit: resample points, refit from the full grid, summarise.

Resampling with replacement is done as integer weights on the Huber terms (a point drawn k times counts
k times), the same objective as fitting the resampled list. Every replicate runs the whole multi-start
search, all replicates in one vectorised batch (chinchilla.fit_many); intervals are percentiles.
"""

import numpy as np

from mmscale.laws import chinchilla
from mmscale.laws import derived
from mmscale.laws import diagnostics

COEFFS = ("E", "A", "B", "alpha", "beta")


def quantities(fit) -> dict:
  """Coefficients and the derived quantities whose uncertainty is reported."""
  out = {k: fit[k] for k in COEFFS}
  out.update(derived.closed_form(fit))
  return out


def bootstrap(N, D, L, n, seed=0, starts=None, level=0.95, tied=False) -> dict:
  """{"n", "se", "ci95", "samples", "n_degenerate", "degenerate_reasons"} over n replicates."""
  N, D, L = chinchilla.check_points(N, D, L, "bootstrap")
  rng = np.random.default_rng(seed)
  counts = []
  while len(counts) < n:
    c = np.bincount(rng.integers(0, N.size, N.size), minlength=N.size).astype(np.float64)
    if np.unique(N[c > 0]).size >= 2 and np.unique(D[c > 0]).size >= 2:
      counts.append(c)  # a draw with one model size cannot identify the law: draw again
  fits = chinchilla.fit_many(N, D, L, np.array(counts).reshape(-1, N.size), starts=starts, n_polish=3,
                             tied=tied) if n else []
  out = summarise(fits, float(np.min(L)), level)
  out["seed"] = seed
  return out


def summarise(fits, min_loss, level=0.95) -> dict:
  """Percentile intervals over replicates, counting the degenerate ones instead of failing on them.

  A replicate is degenerate when its law is (diagnostics.law_problems): E at its floor, an exponent off
  the trusted range, no compute-optimal allocation. Coefficient intervals use every replicate (dropping
  the bad ones would narrow them dishonestly); derived quantities (a, b, G, d) exist only for replicates
  with an interior optimum, so theirs use those, and n_degenerate says how many were set aside.
  """
  samples = [quantities(f) for f in fits]
  problems = [diagnostics.law_problems(f, min_loss) for f in fits]
  reasons = {}
  for p in problems:
    for r in p:
      reasons[r] = reasons.get(r, 0) + 1
  keys = samples[0].keys() if samples else ()
  arr = {k: np.array([s[k] for s in samples], np.float64) for k in keys}
  q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
  se, ci = {}, {}
  for k, v in arr.items():
    v = v[np.isfinite(v)]
    se[k] = float(np.std(v, ddof=1)) if v.size > 1 else float("nan")
    ci[k] = [float(x) for x in np.percentile(v, q)] if v.size else [float("nan")] * 2
  return {
      "n": len(samples), "n_degenerate": int(sum(bool(p) for p in problems)), "degenerate_reasons": reasons,
      "se": se, "ci95": ci, "samples": {k: v.tolist() for k, v in arr.items()},
  }

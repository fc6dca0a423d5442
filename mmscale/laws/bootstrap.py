"""Bootstrap of the Approach-3 fit: resample points, refit from the full grid, summarise.

Resampling with replacement is done as integer weights on the Huber terms (a point drawn k times counts
k times), the same objective as fitting the resampled list. Every replicate runs the whole multi-start
search, all replicates in one vectorised batch (chinchilla.fit_many); intervals are percentiles.
"""

import numpy as np

from mmscale.laws import chinchilla
from mmscale.laws import derived

COEFFS = ("E", "A", "B", "alpha", "beta")


def quantities(fit) -> dict:
  """Coefficients and the derived quantities whose uncertainty is reported."""
  out = {k: fit[k] for k in COEFFS}
  out.update(derived.closed_form(fit))
  return out


def bootstrap(N, D, L, n, seed=0, starts=None, level=0.95) -> dict:
  """{"n", "se": {q: std}, "ci95": {q: [lo, hi]}, "samples": {q: [...]}} over n replicates."""
  N, D, L = chinchilla.check_points(N, D, L, "bootstrap")
  rng = np.random.default_rng(seed)
  counts = []
  while len(counts) < n:
    c = np.bincount(rng.integers(0, N.size, N.size), minlength=N.size).astype(np.float64)
    if np.unique(N[c > 0]).size >= 2 and np.unique(D[c > 0]).size >= 2:
      counts.append(c)  # a draw with one model size cannot identify the law: draw again
  fits = chinchilla.fit_many(N, D, L, np.array(counts).reshape(-1, N.size), starts=starts, n_polish=3) if n else []
  samples = [quantities(f) for f in fits]
  keys = samples[0].keys() if samples else ()
  arr = {k: np.array([s[k] for s in samples]) for k in keys}
  q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
  return {
      "n": len(samples), "seed": seed,
      "se": {k: float(np.std(v, ddof=1)) for k, v in arr.items()},
      "ci95": {k: [float(x) for x in np.percentile(v, q)] for k, v in arr.items()},
      "samples": {k: v.tolist() for k, v in arr.items()},
  }

"""L-BFGS run on many starting points at once (numpy, float64).

Every start is an independent problem; stacking them makes each objective evaluation one large array
operation instead of thousands of small Python calls. Starts that have converged (or stalled) leave the
active set, so the cost shrinks as the batch finishes. The stopping test is relative to the objective
itself, never to max(|f|, 1): summed-Huber objectives are ~1e-3 and scipy's default test stops them early.
"""

import dataclasses

import numpy as np


@dataclasses.dataclass
class BatchResult:
  x: np.ndarray  # [S, k] final points
  f: np.ndarray  # [S] objective
  g: np.ndarray  # [S, k] gradient
  n_iter: np.ndarray  # [S] iterations taken
  converged: np.ndarray  # [S] bool: gradient or relative-decrease test met (not just out of iterations)
  n_evals: int  # objective evaluations, counted per start


def _two_loop(g, s_h, y_h, rho):
  """Direction -H g from the history (slots oldest..newest; empty slots have rho = 0)."""
  m = s_h.shape[1]
  q = g.copy()
  alphas = np.zeros(rho.shape)
  for i in range(m - 1, -1, -1):
    alphas[:, i] = rho[:, i] * np.einsum("sk,sk->s", s_h[:, i], q)
    q -= alphas[:, i, None] * y_h[:, i]
  yy = np.einsum("sk,sk->s", y_h[:, -1], y_h[:, -1])
  sy = np.einsum("sk,sk->s", s_h[:, -1], y_h[:, -1])
  gamma = np.where(yy > 0, sy / np.where(yy > 0, yy, 1.0), 1.0)
  r = gamma[:, None] * q
  for i in range(m):
    beta = rho[:, i] * np.einsum("sk,sk->s", y_h[:, i], r)
    r += s_h[:, i] * (alphas[:, i] - beta)[:, None]
  return -r


def minimize(vg, x0, *, max_iter=400, history=10, gtol=1e-9, ftol=1e-12, c1=1e-4, max_ls=40):
  """Minimises each row of x0 independently. vg(X [s, k], rows [s]) -> (f [s], grad [s, k]); rows are
  the indices in x0 of the points in X (for objectives that differ per start)."""
  x = np.array(x0, dtype=np.float64)
  n_starts, k = x.shape
  f, g = vg(x, np.arange(n_starts))
  n_evals = n_starts
  s_h = np.zeros((n_starts, history, k))
  y_h = np.zeros((n_starts, history, k))
  rho = np.zeros((n_starts, history))
  n_iter = np.zeros(n_starts, int)
  converged = np.abs(g).max(1) < gtol
  active = np.isfinite(f) & ~converged
  for _ in range(max_iter):
    idx = np.flatnonzero(active)
    if idx.size == 0:
      break
    xa, fa, ga = x[idx], f[idx], g[idx]
    has_hist = rho[idx, -1] > 0
    d = _two_loop(ga, s_h[idx], y_h[idx], rho[idx])
    gd = np.einsum("sk,sk->s", d, ga)
    reset = ~(gd < 0)  # not a descent direction: restart from steepest descent
    if reset.any():
      d[reset], gd[reset], has_hist[reset] = -ga[reset], -np.einsum("sk,sk->s", ga[reset], ga[reset]), False
      rho[idx[reset]] = 0.0
      s_h[idx[reset]] = y_h[idx[reset]] = 0.0
    # Without curvature information the first step is scaled to unit length (as scipy does).
    t = np.where(has_hist, 1.0, np.minimum(1.0, 1.0 / np.maximum(np.linalg.norm(d, axis=1), 1e-300)))
    xn, fn, gn = xa.copy(), fa.copy(), ga.copy()
    moved = np.zeros(idx.size, bool)
    pend = np.arange(idx.size)
    for _ls in range(max_ls):
      xt = xa[pend] + t[pend, None] * d[pend]
      ft, gt = vg(xt, idx[pend])
      n_evals += pend.size
      ok = np.isfinite(ft) & (ft <= fa[pend] + c1 * t[pend] * gd[pend])
      acc = pend[ok]
      xn[acc], fn[acc], gn[acc], moved[acc] = xt[ok], ft[ok], gt[ok], True
      fail = ~ok
      if not fail.any():
        break
      # Backtrack by quadratic interpolation, kept within [0.1, 0.5] of the last step.
      tp, fp = t[pend[fail]], ft[fail]
      denom = 2.0 * (fp - fa[pend[fail]] - gd[pend[fail]] * tp)
      tq = np.where(np.isfinite(fp) & (denom > 0), -gd[pend[fail]] * tp * tp / np.where(denom > 0, denom, 1.0), 0.1 * tp)
      t[pend[fail]] = np.clip(tq, 0.1 * tp, 0.5 * tp)
      pend = pend[fail]
    s = xn - xa
    y = gn - ga
    sy = np.einsum("sk,sk->s", s, y)
    upd = moved & (sy > 1e-12 * np.einsum("sk,sk->s", y, y))
    u = idx[upd]
    s_h[u, :-1], y_h[u, :-1], rho[u, :-1] = s_h[u, 1:], y_h[u, 1:], rho[u, 1:]
    s_h[u, -1], y_h[u, -1], rho[u, -1] = s[upd], y[upd], 1.0 / sy[upd]
    x[idx], f[idx], g[idx] = xn, fn, gn
    n_iter[idx] += 1
    small_g = np.abs(gn).max(1) < gtol
    small_df = moved & (fa - fn <= ftol * np.maximum(np.abs(fa), np.abs(fn)))
    done = small_g | small_df
    converged[idx[done]] = True
    active[idx[done | ~moved]] = False  # a failed line search means no further progress at this precision
  return BatchResult(x=x, f=f, g=g, n_iter=n_iter, converged=converged, n_evals=n_evals)

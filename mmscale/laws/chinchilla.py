"""Approach 3 of Hoffmann et al. (2022): L(N, D) = E + A/N^alpha + B/D^beta.

Estimator: minimise sum_i Huber_delta(LSE(a - alpha log N_i, b - beta log D_i, e) - log L_i) with
A = e^a, B = e^b, E = e^e, delta = 1e-3, summed (not averaged), by L-BFGS from the 4,500-start grid.
All starts run together (mmscale.laws.lbfgs); the best few distinct optima are then polished with scipy's
L-BFGS-B at tight tolerances and the gradient norm at the optimum is reported, so an early stop shows.
"""

import itertools

import numpy as np
import scipy.optimize

from mmscale.errors import UserError
from mmscale.laws import lbfgs

PARAMS = ("a", "b", "e", "alpha", "beta")  # order of the parameter vector
DELTA = 1e-3
HOFFMANN_START = {"A": 406.4, "B": 410.7, "E": 1.69, "alpha": 0.34, "beta": 0.28}


def hoffmann_grid() -> np.ndarray:
  """The 4,500 starts: alpha, beta in {0..2 by .5}, e in {-1..1 by .5}, a, b in {0..25 by 5}."""
  half = [0.0, 0.5, 1.0, 1.5, 2.0]
  es = [-1.0, -0.5, 0.0, 0.5, 1.0]
  ab = [0.0, 5.0, 10.0, 15.0, 20.0, 25.0]
  grid = [(a, b, e, al, be) for al, be, e, a, b in itertools.product(half, half, es, ab, ab)]
  return np.array(grid, dtype=np.float64)


def start_from(A, B, E, alpha, beta) -> np.ndarray:
  return np.array([[np.log(A), np.log(B), np.log(E), alpha, beta]])


def make_objective(N, D, L, delta=DELTA, weights=None, dtype=np.float64):
  """Returns vg(theta [S, 5]) -> (objective [S], gradient [S, 5]), vectorised over starts.

  weights (optional) multiply each point's Huber term: [n] for all starts, or [S, n] per start (the
  bootstrap's resampling counts, one replicate per block of starts); vg(theta, rows) then takes the
  indices of the starts in theta. dtype float32 halves the cost of the multi-start search (it only has to find the basins); the result
  is returned as float64 and polishing always uses float64.
  """
  lN, lD, lL = (np.log(np.asarray(v, np.float64)).astype(dtype) for v in (N, D, L))
  w_all = (np.ones_like(lL) if weights is None else np.asarray(weights)).astype(dtype)

  def vg(theta, rows=None):
    w = w_all if w_all.ndim == 1 else (w_all if rows is None else w_all[rows])
    # LSE(t1, t2, e) = log(e^t1 + e^t2 + e^e): e^e is per start, so only two exponentials per point.
    # Unshifted exponentials are exact here (E = e^e keeps the sum away from 0); a line-search trial
    # that overflows gives inf, which the optimiser rejects.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
      a, b, e, al, be = (theta[:, i, None].astype(dtype) for i in range(5))
      e1 = np.exp(a - al * lN)
      e2 = np.exp(b - be * lD)
      e3 = np.exp(e)
      s = e1 + e2 + e3
      r = np.log(s) - lL
      ar = np.abs(r)
      f = (w * np.where(ar <= delta, 0.5 * r * r, delta * (ar - 0.5 * delta))).sum(1)
      h = w * np.clip(r, -delta, delta) / s  # Huber derivative times d LSE / d t_j = e^t_j / s
      g1, g2 = h * e1, h * e2
      # einsum, not @: BLAS gemv here would wake OpenBLAS threads, slow on a shared machine.
      grad = np.stack([g1.sum(1), g2.sum(1), e3[:, 0] * h.sum(1), -np.einsum("sn,n->s", g1, lN),
                       -np.einsum("sn,n->s", g2, lD)], axis=1)
    return f.astype(np.float64), grad.astype(np.float64)

  return vg


def check_points(N, D, L, what="chinchilla"):
  N, D, L = (np.asarray(v, np.float64).ravel() for v in (N, D, L))
  if not N.size == D.size == L.size:
    raise UserError(f"{what}: params, tokens and loss have different lengths ({N.size}, {D.size}, {L.size})")
  if N.size < 6:
    raise UserError(f"{what}: {N.size} points are too few to fit 5 parameters (need at least 6)")
  if np.unique(N).size < 2:
    raise UserError(f"{what}: all points have one model size ({N[0]:.4g}); the N term needs at least 2 sizes")
  if np.unique(D).size < 2:
    raise UserError(f"{what}: all points have one token count ({D[0]:.4g}); the D term needs at least 2")
  return N, D, L


def distinct(x, f, limit):
  """Indices of the `limit` lowest objectives whose optima differ (starts often merge into one)."""
  keep = []
  for i in np.argsort(f):
    if not np.isfinite(f[i]):
      break
    if all(np.max(np.abs(x[i] - x[j])) > 1e-4 for j in keep):
      keep.append(i)
    if len(keep) == limit:
      break
  return keep


def polish(vg, theta, ftol=1e-15, gtol=1e-12, maxiter=20000):
  """scipy L-BFGS-B from one point at tight tolerances; returns (theta, objective, grad, result).

  The objective is divided by its starting value so that scipy's stopping test, relative to
  max(|f|, 1), really is relative (the raw objective is ~1e-3).
  """
  f0 = float(vg(np.asarray(theta)[None])[0][0])
  scale = 1.0 / f0 if np.isfinite(f0) and f0 > 0 else 1.0

  def fun(t):
    f, g = vg(t[None])
    return f[0] * scale, g[0] * scale

  res = scipy.optimize.minimize(
      fun, theta, jac=True, method="L-BFGS-B",
      options={"ftol": ftol, "gtol": gtol, "maxiter": maxiter, "maxfun": 4 * maxiter, "maxcor": 30})
  f, g = vg(res.x[None])
  return res.x, float(f[0]), g[0], res


def fit_many(N, D, L, weights, *, starts=None, delta=DELTA, n_polish=4, max_iter=200, gtol=1e-6, ftol=1e-9,
             chunk_elems=2_000_000) -> list[dict]:
  """Approach 3 once per row of weights [R, n] (e.g. bootstrap replicates), each from the full start grid.

  All replicates' starts run in one batch (in chunks of about chunk_elems start-points), which amortises
  the per-iteration overhead that dominates small tables. Per replicate, the distinct optima within 1.5x
  of its best are then converged together in float64 with relative tests only (gtol 1e-11, ftol 1e-15).
  """
  N, D, L = check_points(N, D, L)
  W = np.atleast_2d(np.asarray(weights, np.float64))
  starts = hoffmann_grid() if starts is None else np.atleast_2d(np.asarray(starts, np.float64))
  S = starts.shape[0]
  per_chunk = max(1, int(chunk_elems // (S * N.size)))
  out = []
  for lo in range(0, W.shape[0], per_chunk):
    Wc = W[lo:lo + per_chunk]
    rows_w = np.repeat(Wc, S, axis=0)
    # The batch only has to find the basins (float32, loose tolerances); polishing converges for real.
    batch = lbfgs.minimize(make_objective(N, D, L, delta, rows_w, np.float32), np.tile(starts, (Wc.shape[0], 1)),
                           max_iter=max_iter, gtol=gtol, ftol=ftol)
    f64 = make_objective(N, D, L, delta, rows_w)(batch.x)[0]
    cand, owner = [], []
    for r in range(Wc.shape[0]):
      block = f64[r * S:(r + 1) * S]
      ok = np.isfinite(block)
      if not ok.any():
        raise UserError("chinchilla: the objective is not finite at any start (check the table's values)")
      near = np.where(ok & (block <= 1.5 * block[ok].min()), block, np.inf)
      picked = distinct(batch.x[r * S:(r + 1) * S], near, n_polish)
      cand += [r * S + i for i in picked]
      owner += [r] * len(picked)
    cand, owner = np.array(cand), np.array(owner)
    tight = lbfgs.minimize(make_objective(N, D, L, delta, rows_w[cand]), batch.x[cand],
                           max_iter=5000, gtol=1e-11, ftol=1e-15)
    for r in range(Wc.shape[0]):
      mine = np.flatnonzero(owner == r)
      i = mine[np.argmin(tight.f[mine])]
      out.append(_result(N.size, tight.x[i], float(tight.f[i]), tight.g[i], S,
                         int(batch.converged[r * S:(r + 1) * S].sum())))
  return out


def _result(n, theta, f, g, n_starts, n_converged):
  a, b, e, alpha, beta = theta
  return {
      "law": "chinchilla", "n_points": int(n),
      "E": float(np.exp(e)), "A": float(np.exp(a)), "B": float(np.exp(b)),
      "alpha": float(alpha), "beta": float(beta), "objective": f,
      "grad_norm": float(np.linalg.norm(g)), "n_starts": int(n_starts), "n_converged": n_converged,
  }


def fit(N, D, L, *, starts=None, delta=DELTA, weights=None, n_polish=4, **kw) -> dict:
  """Fits Approach 3 and returns {"E","A","B","alpha","beta","objective","grad_norm","n_points",...}.

  After the batched search and float64 convergence (fit_many), the best point is confirmed with scipy's
  L-BFGS-B at tight tolerances; grad_norm is the gradient norm at the returned optimum.
  """
  N, D, L = check_points(N, D, L)
  w = np.ones(N.size) if weights is None else np.asarray(weights, np.float64)
  res = fit_many(N, D, L, w[None], starts=starts, delta=delta, n_polish=n_polish, **kw)[0]
  vg = make_objective(N, D, L, delta, w)
  # A coefficient that underflowed to 0 in exp() restarts from the smallest float, not log(0).
  logs = np.log(np.maximum([res["A"], res["B"], res["E"]], np.finfo(np.float64).tiny))
  theta0 = np.array([*logs, res["alpha"], res["beta"]])
  theta, f, g, _ = polish(vg, theta0)
  if f <= res["objective"]:
    res.update(_result(N.size, theta, f, g, res["n_starts"], res["n_converged"]))
  return res


def predict(fit_dict, N, D):
  return fit_dict["E"] + fit_dict["A"] / np.power(N, fit_dict["alpha"]) + fit_dict["B"] / np.power(D, fit_dict["beta"])

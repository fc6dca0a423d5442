"""Approach 3 of Hoffmann et al. (2022): L(N, D) = E + A/N^alpha + B/D^beta.

Estimator: minimise sum_i Huber_delta(LSE(a - alpha log N_i, b - beta log D_i, e) - log L_i) with
A = e^a, B = e^b, E = e^e, delta = 1e-3, summed (not averaged), by L-BFGS from the 4,500-start grid.
All starts run together (mmscale.laws.lbfgs), screened so that only the most promising continue; the best
few distinct optima are then converged at tight relative tolerances and the gradient norm at the optimum
is reported, so an early stop shows. (`polish`, scipy's L-BFGS-B, serves the generic fitter.)
"""

import itertools

import numpy as np

from mmscale.contract import chinchilla_loss
from mmscale.errors import UserError
from mmscale.laws import lbfgs

PARAMS = ("a", "b", "e", "alpha", "beta")  # order of the parameter vector
COEFFICIENTS = ("E", "A", "B", "alpha", "beta")  # a fit's keys, in the order of chinchilla_loss
DELTA = 1e-3
HOFFMANN_START = {"A": 406.4, "B": 410.7, "E": 1.69, "alpha": 0.34, "beta": 0.28}
SEARCH_ROWS = 4096  # larger tables: the start search runs on a fixed subsample, convergence on all rows
SCREEN_ITER, KEEP = 0, 48  # every start gets SCREEN_ITER iterations; per replicate the KEEP lowest go on
CHUNK_ELEMS = 1 << 18  # start-points per objective block: bounds memory whatever the number of starts


def hoffmann_grid() -> np.ndarray:
  """The 4,500 starts: alpha, beta in {0..2 by .5}, e in {-1..1 by .5}, a, b in {0..25 by 5}."""
  half = [0.0, 0.5, 1.0, 1.5, 2.0]
  es = [-1.0, -0.5, 0.0, 0.5, 1.0]
  ab = [0.0, 5.0, 10.0, 15.0, 20.0, 25.0]
  grid = [(a, b, e, al, be) for al, be, e, a, b in itertools.product(half, half, es, ab, ab)]
  return np.array(grid, dtype=np.float64)


def start_from(A, B, E, alpha, beta) -> np.ndarray:
  return np.array([[np.log(A), np.log(B), np.log(E), alpha, beta]])


def tied_grid() -> np.ndarray:
  """Starts for alpha = beta: the Hoffmann grid's rows with equal exponents, as (a, b, e, alpha)."""
  g = hoffmann_grid()
  return g[g[:, 3] == g[:, 4], :4]


def make_objective(N, D, L, delta=DELTA, weights=None, dtype=np.float64, owner=None, tied=False,
                   chunk_elems=CHUNK_ELEMS):
  """Returns vg(theta [S, 5]) -> (objective [S], gradient [S, 5]), vectorised over starts.

  weights (optional) multiply each point's Huber term: [n] for all starts, or [R, n] per replicate (the
  bootstrap's resampling counts); start i uses row owner[i] (owner None: row i). vg(theta, rows) takes the
  indices of the starts in theta. dtype float32 halves the cost of the multi-start search (it only has to
  find the basins); the result is returned as float64 and polishing always uses float64. tied=True takes
  theta [S, 4] = (a, b, e, alpha) with beta = alpha. Starts are evaluated in blocks of about chunk_elems
  start-points, so memory does not grow with the number of starts.
  """
  lN, lD, lL = (np.log(np.asarray(v, np.float64)).astype(dtype) for v in (N, D, L))
  w_all = (np.ones_like(lL) if weights is None else np.asarray(weights)).astype(dtype)
  per_block = max(1, int(chunk_elems // lL.size))

  def block(theta, w):
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

  def vg(theta, rows=None):
    theta = np.asarray(theta, np.float64)
    if tied:
      theta = np.concatenate([theta, theta[:, 3:4]], axis=1)
    if w_all.ndim == 2:
      idx = np.arange(theta.shape[0]) if rows is None else np.asarray(rows)
      w_rows = idx if owner is None else np.asarray(owner)[idx]
    f = np.empty(theta.shape[0])
    g = np.empty((theta.shape[0], 5))
    for lo in range(0, theta.shape[0], per_block):
      sl = slice(lo, lo + per_block)
      w = w_all if w_all.ndim == 1 else w_all[w_rows[sl]]
      f[sl], g[sl] = block(theta[sl], w)
    if tied:  # d/d alpha of f(alpha, beta = alpha)
      g = np.concatenate([g[:, :3], g[:, 3:4] + g[:, 4:5]], axis=1)
    return f, g

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
  import scipy.optimize  # here, not at the top: importing scipy costs ~0.2 s of every CLI start
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


def fit_many(N, D, L, weights, *, starts=None, delta=DELTA, n_polish=4, tied=False, max_iter=200, gtol=1e-6,
             ftol=1e-6, screen_iter=SCREEN_ITER, keep=KEEP) -> list[dict]:
  """Approach 3 once per row of weights [R, n] (e.g. bootstrap replicates), each from the full start grid.

  The search runs in float32 on at most SEARCH_ROWS rows (a fixed random subsample of a larger table, so
  its time and memory do not grow with the table): every start for screen_iter L-BFGS iterations, then
  only each replicate's `keep` lowest continue to convergence. Most of the 4,500 starts fall into a few
  basins within those first iterations, so the screen drops no basin that the full run would reach (the
  Epoch and synthetic tests check the published optimum). Per replicate, the distinct optima within 1.5x
  of its best are then converged together on all rows in float64 with relative tests only. (ftol 1e-6
  for the float32 search: smaller relative decreases are at float32's resolution, only iterations.)
  """
  N, D, L = check_points(N, D, L)
  W = np.atleast_2d(np.asarray(weights, np.float64))
  starts = (tied_grid() if tied else hoffmann_grid()) if starts is None else np.atleast_2d(np.asarray(starts, np.float64))
  if tied and starts.shape[1] == 5:
    starts = starts[:, :4]
  R, S = W.shape[0], starts.shape[0]
  cols = np.arange(N.size)
  if N.size > SEARCH_ROWS:
    cols = np.sort(np.random.default_rng(0).choice(N.size, SEARCH_ROWS, replace=False))
  sub = (N[cols], D[cols], L[cols])
  Ws = W[:, cols]
  owner = np.repeat(np.arange(R), S)
  x0 = np.tile(starts, (R, 1))
  vg_screen = make_objective(*sub, delta, Ws, np.float32, owner, tied)
  if screen_iter:
    screen = lbfgs.minimize(vg_screen, x0, max_iter=screen_iter, gtol=gtol, ftol=ftol)
    screen_x, screen_f = screen.x, screen.f
  else:  # scores only: no optimiser state per start (R x 4,500 of them for a bootstrap)
    screen_x, screen_f = x0, vg_screen(x0, np.arange(x0.shape[0]))[0]
  sel = []
  for r in range(R):
    f = screen_f[r * S:(r + 1) * S]
    order = np.argsort(np.where(np.isfinite(f), f, np.inf))
    sel += [r * S + i for i in order[:keep] if np.isfinite(f[i])]
    if not np.isfinite(f).any():
      raise UserError("chinchilla: the objective is not finite at any start (check the table's values)")
  sel = np.array(sel)
  batch = lbfgs.minimize(make_objective(*sub, delta, Ws, np.float32, owner[sel], tied), screen_x[sel],
                         max_iter=max_iter, gtol=gtol, ftol=ftol)
  f64 = make_objective(*sub, delta, Ws, np.float64, owner[sel], tied)(batch.x)[0]
  cand = []
  for r in range(R):
    mine = np.flatnonzero(owner[sel] == r)
    block = f64[mine]
    ok = np.isfinite(block)
    near = np.where(ok & (block <= 1.5 * block[ok].min()), block, np.inf)
    cand += [mine[i] for i in distinct(batch.x[mine], near, n_polish)]
  cand = np.array(cand)
  cand_owner = owner[sel][cand]
  x = batch.x[cand]
  if cols.size < N.size:
    # Converge on the subsample first, then take each replicate's best on all rows (one evaluation) to
    # the full-table convergence: the full rows only move the optimum a little, and cost the most.
    x = lbfgs.minimize(make_objective(*sub, delta, Ws, np.float64, cand_owner, tied), x,
                       max_iter=5000, gtol=1e-11, ftol=1e-15).x
    f_full = make_objective(N, D, L, delta, W, np.float64, cand_owner, tied)(x)[0]
    best = [np.flatnonzero(cand_owner == r)[np.argmin(f_full[cand_owner == r])] for r in range(R)]
    x, cand_owner = x[best], cand_owner[best]
  tight = lbfgs.minimize(make_objective(N, D, L, delta, W, np.float64, cand_owner, tied), x,
                         max_iter=5000, gtol=1e-11, ftol=1e-15)
  out = []
  for r in range(R):
    mine = np.flatnonzero(cand_owner == r)
    i = mine[np.argmin(tight.f[mine])]
    n_conv = int(batch.converged[owner[sel] == r].sum())
    out.append(_result(N.size, tight.x[i], float(tight.f[i]), tight.g[i], S, n_conv))
  return out


def _result(n, theta, f, g, n_starts, n_converged):
  a, b, e, alpha = theta[:4]
  beta = theta[4] if len(theta) == 5 else alpha
  out = {
      "law": "chinchilla", "n_points": int(n),
      "E": float(np.exp(e)), "A": float(np.exp(a)), "B": float(np.exp(b)),
      "alpha": float(alpha), "beta": float(beta), "objective": f,
      "grad_norm": float(np.linalg.norm(g)), "n_starts": int(n_starts), "n_converged": n_converged,
  }
  if len(theta) == 4:
    out["tied"] = True
  return out


def fit(N, D, L, *, starts=None, delta=DELTA, weights=None, n_polish=4, tied=False, **kw) -> dict:
  """Fits Approach 3 and returns {"E","A","B","alpha","beta","objective","grad_norm","n_points",...}.

  After the batched search and float64 convergence (fit_many), the best point is confirmed by one more
  run to tight tolerances; grad_norm is the gradient norm at the returned optimum. tied=True fits
  alpha = beta (one exponent, as Muennighoff et al. 2023 publish).
  """
  N, D, L = check_points(N, D, L)
  w = np.ones(N.size) if weights is None else np.asarray(weights, np.float64)
  res = fit_many(N, D, L, w[None], starts=starts, delta=delta, n_polish=n_polish, tied=tied, **kw)[0]
  vg = make_objective(N, D, L, delta, w, tied=tied)
  # A coefficient that underflowed to 0 in exp() restarts from the smallest float, not log(0).
  logs = np.log(np.maximum([res["A"], res["B"], res["E"]], np.finfo(np.float64).tiny))
  theta0 = np.array([*logs, res["alpha"]] + ([] if tied else [res["beta"]]))
  # Confirmed with the same batched L-BFGS (relative tests only) rather than scipy's: importing scipy
  # would cost more than the whole fit of a small table.
  conf = lbfgs.minimize(vg, theta0[None], max_iter=20000, gtol=1e-12, ftol=1e-15)
  theta, f, g = conf.x[0], float(conf.f[0]), conf.g[0]
  if f <= res["objective"]:
    res.update(_result(N.size, theta, f, g, res["n_starts"], res["n_converged"]))
  return res


def predict(fit_dict, N, D):
  return chinchilla_loss(N, D, *(fit_dict[k] for k in COEFFICIENTS))

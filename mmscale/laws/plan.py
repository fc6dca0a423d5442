"""Which runs to do next: rank (size, budget) cells by how much they would shrink an interval, per FLOP.

The fit's bootstrap gives the current uncertainty of the parameters theta = (log A, log B, log E, alpha,
beta) as a covariance S (over the replicates that identify a law). A new run at (N, D) observes
log L = LSE(log A - alpha log N, log B - beta log D, log E) + noise, with the noise variance s2 of the fit's
own log residuals; linearised, that is one more row J of a regression, and the covariance after it is
S - S J'J S / (J S J' + s2) (a rank-one Bayesian update). The interval of a target q(theta) (a = beta /
(alpha + beta), or the compute-optimal loss at a target budget) has half-width 1.96 sqrt(g' S g), g its
gradient. Cells are chosen greedily: the one with the largest drop in that width per FLOP it costs,
then S is updated as if it had run, and so on, so the plan does not pick the same information twice.
"""

import numpy as np

from mmscale.errors import UserError
from mmscale.laws import derived
from mmscale.laws import diagnostics

Z95 = 1.959963984540054
MIN_REPLICATES = 10


def theta_of(fit) -> np.ndarray:
  return np.array([np.log(fit["A"]), np.log(fit["B"]), np.log(fit["E"]), fit["alpha"], fit["beta"]], np.float64)


def law_of(theta) -> dict:
  a, b, e, al, be = theta
  return {"A": float(np.exp(a)), "B": float(np.exp(b)), "E": float(np.exp(e)), "alpha": float(al), "beta": float(be)}


def prior_cov(boot, min_loss) -> np.ndarray:
  """Covariance of theta over the bootstrap replicates that are not degenerate."""
  s = (boot or {}).get("samples") or {}
  if not all(k in s for k in ("A", "B", "E", "alpha", "beta")):
    raise UserError("plan-next needs a fit with bootstrap samples: run `mmscale fit --bootstrap=N --json=...` "
                    f"(N >= {MIN_REPLICATES})")
  rows = []
  for vals in zip(*(s[k] for k in ("A", "B", "E", "alpha", "beta"))):
    law = dict(zip(("A", "B", "E", "alpha", "beta"), (np.nan if v is None else float(v) for v in vals)))
    if not diagnostics.law_problems(law, min_loss):
      rows.append(theta_of(law))
  if len(rows) < MIN_REPLICATES:
    raise UserError(f"plan-next: {len(rows)} usable bootstrap replicates (need >= {MIN_REPLICATES}); "
                    "refit with a larger --bootstrap")
  return np.cov(np.array(rows), rowvar=False)


def jacobian(theta, N, D) -> np.ndarray:
  """d log L / d theta at each (N, D) -> [n, 5] (softmax weights of the three terms)."""
  a, b, e, al, be = theta
  lN, lD = np.log(np.asarray(N, np.float64)), np.log(np.asarray(D, np.float64))
  t = np.stack([a - al * lN, b - be * lD, np.full_like(lN, e)], axis=1)
  w = np.exp(t - t.max(1, keepdims=True))
  w /= w.sum(1, keepdims=True)
  return np.stack([w[:, 0], w[:, 1], w[:, 2], -w[:, 0] * lN, -w[:, 1] * lD], axis=1)


def noise_var(theta, N, D, L) -> float:
  """Variance of the log residuals of the fitted law (5 parameters used up)."""
  a, b, e, al, be = theta
  pred = np.logaddexp(np.logaddexp(a - al * np.log(N), b - be * np.log(D)), e)
  r = np.log(L) - pred
  return float(r @ r / max(1, r.size - 5))


def target(name):
  """q(theta) for --target: "a", or "loss@C" (the compute-optimal loss at budget C)."""
  if name == "a":
    return lambda th: th[4] / (th[3] + th[4])
  if name.startswith("loss@"):
    try:
      c = float(name[len("loss@"):])
    except ValueError:
      c = -1.0
    if not c > 0:
      raise UserError(f"--target={name!r}: expected 'a' or 'loss@C' with C a positive FLOP count (e.g. loss@1e22)")
    return lambda th: derived.numeric_optimum(law_of(th), c)[2]
  raise UserError(f"--target={name!r}: expected 'a' or 'loss@C' with C a positive FLOP count (e.g. loss@1e22)")


def gradient(q, theta, h=1e-6) -> np.ndarray:
  g = np.zeros(5)
  for k in range(5):
    e = np.zeros(5)
    e[k] = h
    g[k] = (q(theta + e) - q(theta - e)) / (2 * h)
  return g


def half_width(S, g) -> float:
  return float(Z95 * np.sqrt(max(g @ S @ g, 0.0)))


def rank(theta, S, s2, cells, q, top=5, flops=None) -> dict:
  """Greedy plan: cells [(N, C)] -> {"before", "after", "picked": [{params, budget, tokens, width_after, ...}]}.

  Each step takes the cell with the largest reduction of the 95 % half-width per FLOP (a cell costs its
  budget C), then updates S as if it had run. Stops after `top` cells or when `flops` would be exceeded.
  """
  cells = np.asarray(cells, np.float64).reshape(-1, 2)
  if cells.size == 0:
    raise UserError("plan-next: no candidate cells (every (size, budget) pair is already run); add --sizes or --budgets")
  g = gradient(q, theta)
  J = jacobian(theta, cells[:, 0], cells[:, 1] / (6.0 * cells[:, 0]))
  before = w = half_width(S, g)
  picked, spent, free = [], 0.0, np.ones(len(cells), bool)
  while len(picked) < top and free.any():
    SJ = J @ S  # [m, 5]
    denom = np.einsum("mk,mk->m", SJ, J) + s2
    gSJ = SJ @ g
    var_after = g @ S @ g - gSJ ** 2 / denom
    width_after = Z95 * np.sqrt(np.maximum(var_after, 0.0))
    gain = (w - width_after) / cells[:, 1]
    ok = free & ((flops is None) | (spent + cells[:, 1] <= (flops or np.inf)))
    if not ok.any():
      break
    i = int(np.argmax(np.where(ok, gain, -np.inf)))
    S = S - np.outer(SJ[i], SJ[i]) / denom[i]
    free[i] = False
    spent += cells[i, 1]
    w = float(width_after[i])
    n, c = cells[i]
    picked.append({"params": float(n), "budget": float(c), "tokens": float(c / (6.0 * n)),
                   "half_width_after": w, "gain_per_flop": float(gain[i])})
  return {"before": before, "after": w, "flops": spent, "picked": picked}


def candidates(N, C, sizes=(), budgets=(), rel_tol=0.05, tokens_per_param=(1.0, 1000.0)) -> list:
  """(size, budget) pairs from the table's sizes and budgets plus extras, minus the cells already run.

  By default one budget beyond the largest (x2) and one size either side of the range (x/3, x3) are
  offered too, so a plan can extend the grid as well as fill it. Cells outside tokens_per_param (D/N)
  are not offered (the sweep's grid drops them the same way).
  """
  from mmscale.laws import isoflop
  N, C = np.asarray(N, np.float64), np.asarray(C, np.float64)
  ids = isoflop.budget_ids(C, rel_tol)
  have_b = np.exp(np.bincount(ids, np.log(C)) / np.bincount(ids))
  all_n = np.unique(np.r_[np.unique(N), N.min() / 3, N.max() * 3, np.asarray(sizes, np.float64)])
  all_c = np.unique(np.r_[have_b, have_b.max() * 2, np.asarray(budgets, np.float64)])
  done = {(n, int(np.argmin(np.abs(np.log(all_c) - np.log(c))))) for n, c in zip(N, C)}
  lo, hi = tokens_per_param
  return [(n, c) for j, c in enumerate(all_c) for n in all_n
          if (n, j) not in done and lo <= c / (6 * n * n) <= hi]

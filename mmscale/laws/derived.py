"""Quantities derived from a fitted L = E + A/N^alpha + B/D^beta under C = 6 N D.

Closed form (Hoffmann et al. 2022, App. D.2): N_opt(C) = G (C/6)^a, D_opt(C) = G^-1 (C/6)^b with
a = beta/(alpha+beta), b = alpha/(alpha+beta), G = (alpha A / (beta B))^(1/(alpha+beta)), and D_opt ∝ N_opt^d,
d = b/a. Shukor et al. (App. C.2) instead regress log N_opt, log D_opt on log C (and log D_opt on log N_opt)
over optima found numerically per budget; `regressions` does that, so a law whose optimum is not the
closed form (another FLOP count, a constrained N range) is still summarised the same way.
"""

import numpy as np

from mmscale import contract


def closed_form(fit) -> dict:
  """a, b, G, d; all NaN when the law has no interior optimum (an exponent <= 0, A or B <= 0).

  Python's float ** float turns a negative base into a complex number, so a degenerate law (a bootstrap
  replicate that fits a negative exponent) is caught here rather than crashing a summary later.
  """
  al, be, A, B = (float(fit[k]) for k in ("alpha", "beta", "A", "B"))
  if not has_optimum(fit):
    return {"a": float("nan"), "b": float("nan"), "G": float("nan"), "d": float("nan")}
  s = al + be
  return {"a": be / s, "b": al / s, "G": float((al * A / (be * B)) ** (1.0 / s)), "d": al / be}


def has_optimum(fit) -> bool:
  """True when minimising the law at fixed compute has a finite interior solution."""
  vals = [float(fit[k]) for k in ("alpha", "beta", "A", "B")]
  return all(np.isfinite(v) and v > 0 for v in vals)


def n_opt(fit, C):
  cf = closed_form(fit)
  return cf["G"] * np.power(np.asarray(C, np.float64) / 6.0, cf["a"])


def d_opt(fit, C):
  cf = closed_form(fit)
  return np.power(np.asarray(C, np.float64) / 6.0, cf["b"]) / cf["G"]


def power_law(x, y) -> dict:
  """Least squares log y = k log x + log_c; returns {"exponent", "log_coef", "r2"}."""
  lx, ly = np.log(np.asarray(x, np.float64)), np.log(np.asarray(y, np.float64))
  k, c = np.polyfit(lx, ly, 1)
  resid = ly - (k * lx + c)
  ss = np.sum((ly - ly.mean()) ** 2)
  return {"exponent": float(k), "log_coef": float(c), "r2": float(1 - resid @ resid / ss) if ss > 0 else 1.0}


def numeric_optimum(fit, C, flops_per_param_token=6.0):
  """argmin_N L(N, C / (k N)) by a bounded 1-D search in log N (no closed form assumed).

  The loss along a budget is convex in ln N, so its derivative is bisected on [0, ln(C/k)]: vectorised
  over budgets (C may be an array) and without scipy, whose import would dominate a CLI fit. The loss
  is the contract's law (mmscale.contract.chinchilla_loss); its derivative along the budget is
  written out analytically from the same parameters: with D = C/(kN),
  dL/dlnN = -alpha A N^-alpha + beta B D^-beta.
  """
  E, A, B, al, be = (fit[k] for k in ("E", "A", "B", "alpha", "beta"))
  nd = np.asarray(C, np.float64) / flops_per_param_token  # N * D along the budget.

  def on_budget(ln):
    n = np.exp(ln)
    return n, nd / n

  lo, hi = np.zeros_like(nd), np.log(nd)
  for _ in range(200):  # halves a < 60-wide bracket to below 1e-15 relative
    mid = 0.5 * (lo + hi)
    n, d = on_budget(mid)
    rising = -al * A * n ** -al + be * B * d ** -be > 0
    lo, hi = np.where(rising, lo, mid), np.where(rising, mid, hi)
  n, d = on_budget(0.5 * (lo + hi))
  loss = contract.chinchilla_loss(n, d, E, A, B, al, be)
  if n.ndim == 0:
    return float(n), float(d), float(loss)
  return n, d, loss


def regressions(fit, budgets=None) -> dict:
  """Shukor et al. App. C.2: power laws N_opt ∝ C^a, D_opt ∝ C^b, D_opt ∝ N_opt^d, L_opt ∝ C^c over budgets."""
  budgets = np.logspace(18, 24, 13) if budgets is None else np.asarray(budgets, np.float64)
  opt = np.stack(numeric_optimum(fit, budgets), axis=1)
  return {
      "a_reg": power_law(budgets, opt[:, 0])["exponent"],
      "b_reg": power_law(budgets, opt[:, 1])["exponent"],
      "d_reg": power_law(opt[:, 0], opt[:, 1])["exponent"],
      "c_reg": power_law(budgets, opt[:, 2])["exponent"],
  }


def all_derived(fit) -> dict:
  out = closed_form(fit)
  if has_optimum(fit):
    out.update(regressions(fit))
  else:
    out.update({k: float("nan") for k in ("a_reg", "b_reg", "d_reg", "c_reg")})
  return out

"""Sparsity-aware law for MoE (after Abnar et al. 2025, as used in Shukor et al. App. C.7).

  L(N, D, S) = E + A/N^alpha + B/D^beta + C (1 - S)^lambda  [+ K (1 - S)^delta / N^gamma]

N is the ACTIVE parameter count (what a token pays for in FLOPs), D the tokens, S = 1 - active/total
the sparsity (0 for dense). The C (1-S)^lambda term is the gain (lambda > 0) from adding inactive
experts at fixed active size; the optional K term lets that gain shrink or grow with N (Abnar et al.'s
interaction term). Every term is positive, so log L is a log-sum-exp and the fit is the Approach-3
recipe (Huber on log loss, grid of starts, L-BFGS), started from a dense-only Chinchilla fit.
"""

import jax.numpy as jnp
import numpy as np

from mmscale.errors import UserError
from mmscale.laws import chinchilla
from mmscale.laws import diagnostics
from mmscale.laws import generic
from mmscale.laws import table as tbl


def sparsity(table):
  tbl.require(table, ("active_params", "params"), "sparsity law")
  s = 1.0 - table["active_params"] / table["params"]
  if (s < -1e-9).any():
    raise UserError(f"{int((s < -1e-9).sum())} rows have active_params > params")
  return np.clip(s, 0.0, 1.0 - 1e-12)


def fit(table, interaction=False) -> dict:
  tbl.require(table, ("params", "active_params", "tokens", "loss"), "sparsity law")
  S = sparsity(table)
  if not (S > 1e-6).any() or not (S <= 1e-6).any():
    raise UserError("sparsity law needs both dense (active_params == params) and sparse runs")
  N, D, L = table["active_params"], table["tokens"], table["loss"]
  dense = chinchilla.fit(N, D, L)  # warm start: all rows as if dense
  inputs = {"lN": np.log(N), "lD": np.log(D), "ls": np.log1p(-S)}

  def log_law(t, x):
    terms = [jnp.full_like(x["lN"], t[0]), t[1] - t[2] * x["lN"], t[3] - t[4] * x["lD"], t[5] + t[6] * x["ls"]]
    if interaction:
      terms.append(t[7] + t[8] * x["ls"] - t[9] * x["lN"])
    return jax_lse(jnp.stack(terms))

  base = dict(e=[np.log(dense["E"]) - 0.1, np.log(dense["E"])], a=[np.log(dense["A"])], alpha=[dense["alpha"]],
              b=[np.log(dense["B"])], beta=[dense["beta"]], c=[-4.0, -2.0, -1.0], lam=[0.1, 0.5, 1.0, 2.0])
  if interaction:
    base.update(k=[-2.0, 2.0], delta=[0.5, 1.0], gamma=[0.1, 0.3])
  names, starts = generic.grid(**base)
  r = generic.fit(log_law, names, starts, inputs, L, what="sparsity law")
  out = {"law": "sparsity", "E": float(np.exp(r["e"])), "A": float(np.exp(r["a"])), "alpha": r["alpha"],
         "B": float(np.exp(r["b"])), "beta": r["beta"], "C": float(np.exp(r["c"])), "lambda": r["lam"],
         "objective": r["objective"], "grad_norm": r["grad_norm"], "n_points": r["n_points"]}
  if interaction:
    out.update({"K": float(np.exp(r["k"])), "delta": r["delta"], "gamma": r["gamma"]})
  # The dense part of the law (E, A/N^alpha, B/D^beta) has the same failure modes as a Chinchilla fit.
  out["diagnostics"] = diagnostics.check_fit(out, N, D, L)
  return out


def jax_lse(x):
  m = jnp.max(x, axis=0)
  return m + jnp.log(jnp.sum(jnp.exp(x - m), axis=0))


def predict(f, N, D, S):
  N, D, S = (np.asarray(v, np.float64) for v in (N, D, S))
  out = chinchilla.predict(f, N, D) + f["C"] * (1 - S) ** f["lambda"]
  if "K" in f:
    out = out + f["K"] * (1 - S) ** f["delta"] / N ** f["gamma"]
  return out


def moe_vs_dense(f, active_params, tokens, S) -> list[dict]:
  """Predicted loss of an MoE (sparsity S) and of a dense model with the same active parameters."""
  rows = []
  for n in np.atleast_1d(active_params):
    moe, dense = float(predict(f, n, tokens, S)), float(predict(f, n, tokens, 0.0))
    rows.append({"active_params": float(n), "tokens": float(tokens), "sparsity": float(S),
                 "loss_moe": moe, "loss_dense": dense, "gain": dense - moe})
  return rows


def matched_pairs(table, rtol=0.02) -> list[dict]:
  """Observed MoE vs dense pairs with active params and tokens equal within rtol."""
  S = sparsity(table)
  Na, D, L = table["active_params"], table["tokens"], table["loss"]
  out = []
  for i in np.flatnonzero(S > 1e-6):
    m = (S <= 1e-6) & np.isclose(Na, Na[i], rtol=rtol) & np.isclose(D, D[i], rtol=rtol)
    if m.any():
      j = np.flatnonzero(m)[np.argmin(L[m])]
      out.append({"active_params": float(Na[i]), "tokens": float(D[i]), "sparsity": float(S[i]),
                  "loss_moe": float(L[i]), "loss_dense": float(L[j]), "gain": float(L[j] - L[i])})
  return out

"""Aghajanyan et al. (2023): one law per modality and the bimodal interaction law.

  L_i(N, D_i) = E_i + A_i/N^alpha_i + B_i/D_i^beta_i                 (fitted as Approach 3)
  L_ij(N, D_i, D_j) = [L_i(N, D_i) + L_j(N, D_j)]/2 - C_ij + A_ij/N^alpha_ij + B_ij/(D_i + D_j)^beta_ij

C_ij > 0 means the two modalities help each other (synergy), C_ij < 0 that they compete. From the
interaction law, the share of modality j that minimises L_ij at a model size and token count, or at a
compute budget (C = 6 N (D_i + D_j)), follows by a 1-D / 2-D search.
"""

import jax.numpy as jnp
import numpy as np
import scipy.optimize

from mmscale.errors import UserError
from mmscale.laws import chinchilla
from mmscale.laws import diagnostics
from mmscale.laws import generic
from mmscale.laws import table as tbl


def _tokens(table, m):
  col = f"tokens_{m}"
  if col not in table:
    raise UserError(f"mixed-modal laws need column {col!r} (tokens of modality {m} seen in training)")
  return np.nan_to_num(table[col])


def loss_column(table, m, loss_col=None):
  col = loss_col or ("loss" if m == "text" or f"loss_{m}" not in table else f"loss_{m}")
  if col not in table:
    raise UserError(f"no loss column {col!r} for modality {m}")
  return col


def _seen(table, m):
  """Whether each run saw content of modality m: its raw bytes where recorded, else its tokens.
  An image-only run has text positions (BOS/EOS and the image markers) but no text bytes."""
  seen = _tokens(table, m) > 0
  if f"bytes_{m}" in table:
    b = np.asarray(table[f"bytes_{m}"], float)
    seen = np.where(np.isfinite(b), b > 0, seen)
  return seen


def modality_rows(table, present, absent=()):
  """Rows of runs trained on the modalities in `present` and none of `absent`."""
  mask = np.ones(tbl.n_rows(table), bool)
  for m in present:
    mask &= _seen(table, m)
  for m in absent:
    if f"tokens_{m}" in table:
      mask &= ~_seen(table, m)
  return mask


def unimodal(table, m, others=(), loss_col=None) -> dict:
  """L_m(N, D_m) on the runs that saw only modality m."""
  sub = tbl.subset(table, modality_rows(table, [m], others))
  col = loss_column(table, m, loss_col)
  if tbl.n_rows(sub) == 0:
    raise UserError(f"no unimodal {m} runs (rows with tokens_{m} > 0 and no other modality)")
  tbl.require(sub, ("params", col), f"unimodal law ({m})")
  out = chinchilla.fit(sub["params"], _tokens(sub, m), sub[col])
  out.update({"law": "unimodal", "modality": m, "loss_column": col})
  out["diagnostics"] = diagnostics.check_fit(out, sub["params"], _tokens(sub, m), sub[col])
  return out


def _law_i(fit, N, D):
  return chinchilla.predict(fit, N, D)


def interaction(table, mi, mj, law_i, law_j, loss_col="loss", others=()) -> dict:
  """Fits C_ij, A_ij, alpha_ij, B_ij, beta_ij on the runs trained on both i and j."""
  sub = tbl.subset(table, modality_rows(table, [mi, mj], others))
  if tbl.n_rows(sub) == 0:
    raise UserError(f"no bimodal {mi}+{mj} runs (rows with tokens_{mi} > 0 and tokens_{mj} > 0)")
  tbl.require(sub, ("params", loss_col), f"interaction law ({mi}, {mj})")
  N, Di, Dj = sub["params"], _tokens(sub, mi), _tokens(sub, mj)
  if np.unique(N).size < 2:
    raise UserError(f"interaction law ({mi}, {mj}) needs at least 2 model sizes")
  base = 0.5 * (_law_i(law_i, N, Di) + _law_i(law_j, N, Dj))
  inputs = {"base": base, "lN": np.log(N), "lD": np.log(Di + Dj)}

  def log_law(t, x):
    pred = x["base"] - t[0] + jnp.exp(t[1] - t[2] * x["lN"]) + jnp.exp(t[3] - t[4] * x["lD"])
    return jnp.log(pred)

  names, starts = generic.grid(C=[-0.5, -0.1, 0.0, 0.1, 0.5], a=[0.0, 5.0, 10.0], alpha=[0.2, 0.5, 1.0],
                               b=[0.0, 5.0, 10.0, 15.0], beta=[0.2, 0.5, 1.0])
  res = generic.fit(log_law, names, starts, inputs, sub[loss_col], what=f"interaction law ({mi}, {mj})")
  out = {"law": "interaction", "modalities": [mi, mj], "C": res["C"], "A": float(np.exp(res["a"])),
         "alpha": res["alpha"], "B": float(np.exp(res["b"])), "beta": res["beta"],
         "objective": res["objective"], "grad_norm": res["grad_norm"], "n_points": res["n_points"],
         "synergy": bool(res["C"] > 0), "law_i": _coeffs(law_i), "law_j": _coeffs(law_j)}
  return out


def _coeffs(fit):
  return {k: fit[k] for k in ("E", "A", "B", "alpha", "beta")}


def predict(inter, N, Di, Dj):
  N, Di, Dj = (np.asarray(v, np.float64) for v in (N, Di, Dj))
  base = 0.5 * (_law_i(inter["law_i"], N, Di) + _law_i(inter["law_j"], N, Dj))
  return base - inter["C"] + inter["A"] / N ** inter["alpha"] + inter["B"] / (Di + Dj) ** inter["beta"]


def optimal_share(inter, N, D) -> float:
  """Share s of modality j (D_j = s D) that minimises L_ij(N, (1-s) D, s D)."""
  res = scipy.optimize.minimize_scalar(lambda s: predict(inter, N, (1 - s) * D, s * D),
                                       bounds=(1e-6, 1 - 1e-6), method="bounded", options={"xatol": 1e-8})
  return float(res.x)


def share_vs_size(inter, sizes, tokens_per_param=20.0) -> list[dict]:
  return [{"params": float(n), "tokens": float(n * tokens_per_param),
           "share": optimal_share(inter, n, n * tokens_per_param)} for n in sizes]


def share_vs_compute(inter, budgets) -> list[dict]:
  """At each budget C = 6 N D, the (N, share) pair that minimises L_ij."""
  out = []
  for c in budgets:
    def loss(z):
      n, s = np.exp(z[0]), 1 / (1 + np.exp(-z[1]))
      d = c / (6 * n)
      return float(predict(inter, n, (1 - s) * d, s * d))
    best = min((scipy.optimize.minimize(loss, [z0, 0.0], method="Nelder-Mead",
                                        options={"xatol": 1e-8, "fatol": 1e-12, "maxiter": 4000})
                for z0 in np.linspace(np.log(c / 6) * 0.3, np.log(c / 6) * 0.7, 5)), key=lambda r: r.fun)
    n = float(np.exp(best.x[0]))
    out.append({"flops": float(c), "params": n, "tokens": float(c / (6 * n)),
                "share": float(1 / (1 + np.exp(-best.x[1]))), "loss": float(best.fun)})
  return out

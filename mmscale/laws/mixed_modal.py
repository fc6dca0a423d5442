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


def _source_modalities(table, m_all) -> dict[str, tuple[str, ...]]:
  """Modalities whose content each validation source holds: its bits per raw byte of m are finite
  (an image-only source's text positions are markers without raw bytes, so it holds only image)."""
  out = {}
  for s in sorted(set(table["source"].tolist())):
    rows = table["source"] == s
    held = []
    for m in m_all:
      col = f"bpb_{m}" if f"bpb_{m}" in table else ("loss" if m == "text" else f"loss_{m}")
      if col in table and table[col].dtype.kind == "f" and np.isfinite(table[col][rows]).any():
        held.append(m)
    out[s] = tuple(held)
  return out


def by_modality(table, m_all) -> tuple[dict, dict]:
  """A `mmscale collect` table (a row per run x eval x source) -> a row per (run, eval) whose loss
  of each modality m is measured on m's own validation sources (the uni-modal ones, or else every
  source holding m), as Aghajanyan et al. evaluate: loss_text / loss_<m> per modality, and `loss`,
  the mean over the modalities the run trained on (a unimodal run's own loss; a bimodal run's
  [L_i + L_j]/2, the quantity the interaction law describes). Tables without several sources
  are returned as they are. -> (table, {modality: [sources]})."""
  if "source" not in table or len(set(table["source"].tolist())) < 2:
    return table, {}
  held = _source_modalities(table, m_all)
  sources = {}
  for m in m_all:
    own = [s for s, h in held.items() if h == (m,)] or [s for s, h in held.items() if m in h]
    if own:
      sources[m] = own
  keys = [c for c in ("run_id", "step") if c in table] or ["params", "tokens"]
  key = [tuple(str(table[c][i]) for c in keys) for i in range(tbl.n_rows(table))]
  first = {}
  for i, k in enumerate(key):
    first.setdefault(k, i)
  order = list(first.values())
  index = {k: j for j, k in enumerate(first)}
  group = np.array([index[k] for k in key])
  out = {c: v[order] for c, v in table.items() if c != "source"}
  means = {}
  for m, own in sources.items():
    col = "loss_text" if m == "text" and "loss_text" in table else ("loss" if m == "text" else f"loss_{m}")
    use = np.isin(table["source"], own) & np.isfinite(table[col])
    n = np.bincount(group[use], minlength=len(order))
    total = np.bincount(group[use], weights=table[col][use], minlength=len(order))
    means[m] = np.where(n > 0, total / np.maximum(n, 1), np.nan)
    out["loss_text" if m == "text" else f"loss_{m}"] = means[m]
  trained = np.zeros((len(order), len(means)), bool)
  for j, m in enumerate(means):
    trained[:, j] = _seen(out, m) if f"tokens_{m}" in out else True
  stacked = np.stack(list(means.values()), 1)
  out["loss"] = np.where(trained.any(1), np.nansum(np.where(trained, stacked, 0.0), 1)
                         / np.maximum(trained.sum(1), 1), np.nan)
  out["source"] = np.array(["by_modality"] * len(order), dtype=str)
  return out, sources


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
  shares = Dj / (Di + Dj)
  out["shares"] = share_groups(shares)
  out["diagnostics"] = interaction_diagnostics(out, N, Di + Dj, shares, law_i, law_j)
  return out


def share_groups(shares, gap=0.15) -> list[float]:
  """The distinct mixtures among realised shares of modality j: a mixture's runs realise shares a few
  points apart (documents longer than a sequence, packing), so shares closer than `gap` are one
  mixture; -> the mean share of each, ascending."""
  x = np.sort(np.asarray(shares, float))
  cuts = np.flatnonzero(np.diff(x) > gap) + 1
  return [round(float(g.mean()), 3) for g in np.split(x, cuts)]


# Five parameters: C, A, alpha trade off over the model sizes and B, beta over the token totals, so
# each needs more distinct values than the three parameters it shares them with.
MIN_INTERACTION_SIZES, MIN_INTERACTION_TOKENS, MIN_SHARES = 4, 4, 2


def interaction_diagnostics(out, N, D, shares, law_i, law_j) -> dict:
  """What the bimodal runs can and cannot pin, in check_fit's format (diagnostics.verdict_lines)."""
  sizes, tokens = np.unique(N).size, np.unique(np.round(D, -1)).size
  n_shares = len(share_groups(shares))
  short = [f"{k} {what} (need >= {need})" for k, what, need in (
      (sizes, "model sizes", MIN_INTERACTION_SIZES), (tokens, "token totals", MIN_INTERACTION_TOKENS),
      (n_shares, "image shares", MIN_SHARES)) if k < need]
  checks = [diagnostics._check(  # pylint: disable=protected-access
      "interaction_coverage", not short, f"{out['n_points']} bimodal runs: {sizes} sizes, {tokens} token "
      f"totals, {n_shares} shares", "too few: " + "; ".join(short) + ". C trades off against A/N^alpha "
      "(and B/D^beta) until the sizes (and token totals) outnumber the parameters they share.")]
  lo, hi = diagnostics.EXPONENT_RANGE
  bad = [k for k in ("alpha", "beta") if not lo <= out[k] <= hi]
  checks.append(diagnostics._check(  # pylint: disable=protected-access
      "interaction_exponents", not bad, f"alpha = {out['alpha']:.4g}, beta = {out['beta']:.4g} "
      f"(trusted range [{lo}, {hi}])", f"{' and '.join(bad)} outside the range: the N or D term is "
      "not identified, so C (synergy or competition) is not either; add sizes and budgets."))
  flagged = [m for m, law in ((out["modalities"][0], law_i), (out["modalities"][1], law_j))
             if not law.get("diagnostics", {}).get("ok", True)]
  checks.append(diagnostics._check(  # pylint: disable=protected-access
      "unimodal_base", not flagged, "base term [L_i + L_j]/2 from the unimodal laws"
      + (f"; {', '.join(flagged)} law flagged" if flagged else ""),
      f"the {' and '.join(flagged)} unimodal law failed its checks, and the interaction terms "
      "absorb its errors: fix those first."))
  failed = [c["name"] for c in checks if c["level"] == "fail"]
  return {"ok": not failed, "failed": failed, "warnings": [], "checks": checks}


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

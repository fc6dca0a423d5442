"""fit_all: every analysis the table supports, as one JSON dict (the fit.json that report reads).

Approach 3 (with closed-form and regression-derived exponents) always; Approach 2 when the points form
IsoFLOP budgets; the compute frontier; bootstrap and held-out evaluation on request; the same per group
when `group_by` is given. Optional analyses that the data cannot support are reported under "skipped"
with the reason, never silently dropped.
"""

import numpy as np
from absl import logging

from mmscale.contract import MODALITIES
from mmscale.errors import UserError
from mmscale.laws import bootstrap as boot
from mmscale.laws import chinchilla
from mmscale.laws import derived
from mmscale.laws import diagnostics
from mmscale.laws import evaluate
from mmscale.laws import isoflop
from mmscale.laws import table as tbl
from mmscale.laws.names import LAWS, fitter


def _one(table, law, n_boot, seed, heldout, **kw) -> dict:
  return fitter(law)(table, tbl.final_rows(table), n_boot, seed, heldout, **kw)


# Each law of mmscale.laws.names.LAWS: fit(table, final rows, n_boot, seed, heldout, **options).
# The other laws import jax (mixed_modal) or more; a Chinchilla fit never loads them.

def fit_sparsity(table, rows, *_) -> dict:
  from mmscale.laws import sparsity
  return sparsity.fit(rows)


def fit_compression(table, rows, *_) -> dict:
  from mmscale.laws import compression
  return compression.fit(rows)


def fit_chinchilla(table, rows, n_boot, seed, heldout, tied=False, isoflop_window=None) -> dict:
  tbl.require(rows, ("params", "tokens", "loss"), "chinchilla fit")
  N, D, L = rows["params"], rows["tokens"], rows["loss"]
  C = tbl.compute(rows)
  if heldout is not None:
    evaluate.split(N, C, heldout)  # a bad --heldout fails before the (long) fit, not after it
  out = chinchilla.fit(N, D, L, tied=tied)
  out.update(derived.all_derived(out))
  skipped = {}
  try:
    out["isoflop"] = isoflop.approach2(rows, window=isoflop_window)
  except UserError as e:
    skipped["isoflop"] = str(e)
  try:
    out["frontier"] = isoflop.frontier(rows)
  except UserError as e:
    skipped["frontier"] = str(e)
  if "run_id" in table:  # Approach 1 needs whole training curves, not just the final rows
    try:
      out["approach1"] = isoflop.approach1(table)
    except UserError as e:
      skipped["approach1"] = str(e)
  if "frontier" in out:
    out["c"] = out["frontier"]["c"]
  if n_boot:
    # Replicates are kept (a few numbers each) so the report can draw exact bands on N_opt, D_opt.
    out["bootstrap"] = boot.bootstrap(N, D, L, n_boot, seed=seed, tied=tied)
  if heldout is not None:
    out["heldout"] = evaluate.heldout(N, D, L, heldout, C=C, tied=tied)
  if skipped:
    out["skipped"] = skipped
  out["diagnostics"] = diagnostics.check_fit(out, N, D, L, isoflop.budget_vertices(rows, window=isoflop_window),
                                             out.get("bootstrap"), C)
  return out


def fit_mixed_modal(table, rows, *_) -> dict:
  """Aghajanyan et al.: a law per modality (its unimodal runs), an interaction law per pair with runs."""
  from mmscale.laws import mixed_modal
  rows, sources = mixed_modal.by_modality(rows, MODALITIES)
  ms = [m for m in MODALITIES if f"tokens_{m}" in rows]
  if len(ms) < 2:
    raise UserError("mixed_modal law needs tokens_<modality> columns for at least 2 modalities")
  uni, pairs = {}, {}
  for m in ms:
    if mixed_modal.modality_rows(rows, [m], [o for o in ms if o != m]).sum():
      uni[m] = mixed_modal.unimodal(rows, m, others=[o for o in ms if o != m])
  for i, mi in enumerate(ms):
    for mj in ms[i + 1:]:
      if mi in uni and mj in uni and mixed_modal.modality_rows(rows, [mi, mj]).sum():
        inter = mixed_modal.interaction(rows, mi, mj, uni[mi], uni[mj],
                                        others=[o for o in ms if o not in (mi, mj)])
        inter["share_vs_size"] = mixed_modal.share_vs_size(inter, np.geomspace(1e8, 1e11, 7))
        inter["share_vs_compute"] = mixed_modal.share_vs_compute(inter, np.geomspace(1e19, 1e24, 6))
        pairs[f"{mi}+{mj}"] = inter
  if not pairs:
    raise UserError("mixed_modal law: no modality pair has unimodal runs of both and bimodal runs")
  return {"law": "mixed_modal", "unimodal": uni, "interaction": pairs, "loss_sources": sources,
          "n_points": int(tbl.n_rows(rows)), "objective": float(sum(p["objective"] for p in pairs.values())),
          "grad_norm": float(max(p["grad_norm"] for p in pairs.values()))}


def fit_all(table, law="chinchilla", group_by=(), bootstrap=0, seed=0, heldout=None, tied=False,
            isoflop_window=None) -> dict:
  if law not in LAWS:
    raise UserError(f"--law={law!r}: must be one of {', '.join(sorted(LAWS))}")
  if bootstrap < 0:
    raise UserError(f"--bootstrap={bootstrap}: must be >= 0")
  if (tied or isoflop_window is not None) and law != "chinchilla":
    raise UserError(f"--tied and --isoflop_window apply to --law=chinchilla, not --law={law}")
  kw = {"tied": tied, "isoflop_window": isoflop_window} if law == "chinchilla" else {}
  group_by = [g for g in group_by if g]
  if "source" not in group_by and law != "mixed_modal":  # It takes each modality's loss on its own sources.
    table = tbl.average_sources(table)
  if not group_by:
    table, left = tbl.drop_diverged(table)
    out = _one(table, law, bootstrap, seed, heldout, **kw)
    if left:
      out["left_out"] = {"all": left}
    return out
  out = {"law": law, "group_by": list(group_by), "groups": {}}
  for key, sub in tbl.groups(table, group_by).items():
    sub, left = tbl.drop_diverged(sub)  # Per group, so one diverged run never sinks another group.
    if left:
      out.setdefault("left_out", {})[key] = left
    logging.info("fitting group %s (%d rows)", key, tbl.n_rows(sub))
    try:
      if not tbl.n_rows(sub):
        raise UserError("no run left to fit")
      out["groups"][key] = _one(sub, law, bootstrap, seed, heldout, **kw)
    except UserError as e:
      if not left:
        raise UserError(f"group {key}: {e}") from None
      out.setdefault("not_fitted", {})[key] = f"{e} (after leaving out its diverged runs)"
  if not out["groups"]:
    raise UserError("no group could be fitted: " + "; ".join(
        f"group {k}: {v}" for k, v in out["not_fitted"].items()))
  out["n_points"] = int(sum(g["n_points"] for g in out["groups"].values()))
  return out


def to_jsonable(x):
  if isinstance(x, dict):
    return {str(k): to_jsonable(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [to_jsonable(v) for v in x]
  if isinstance(x, np.ndarray):
    return to_jsonable(x.tolist())
  if isinstance(x, (np.floating, float)):
    return float(x) if np.isfinite(x) else None
  if isinstance(x, (np.integer,)):
    return int(x)
  if isinstance(x, np.bool_):
    return bool(x)
  return x

"""The demo's headline: four questions of the seed papers, each answered from a records table.

Every number is computed from `mmscale collect`'s CSV (the final eval of each finished run); none
is a constant. Each question gives an effect, its 95 % bootstrap interval, the published finding
and a verdict:

  1. MoE vs dense at equal active parameters (Shukor et al. 2025: MoE lower).
     Effect: mean over (size, budget) cells of L_text(early_moe) - L_text(early_dense); both
     share the width, so active parameters and FLOPs per token are equal. Expected sign: < 0.
  2. Early vs late fusion at equal compute (Shukor et al. 2025: early at least as good, better at
     small N). Effect: mean over cells of L_text(late_dense) - L_text(early_dense), both trained
     to the same FLOP budget with the same decoder. Expected sign: > 0 (early lower).
  3. Per-modality IsoFLOP (Tong et al. 2026: vision more data-hungry). Effect: b_image - b_text,
     b the exponent of D_opt ∝ C^b from each budget's parabola of that modality's loss against
     log N (Approach 2) on early_dense. Expected sign: > 0.
  4. Bits per raw byte across modalities (compression-normalised view: comparable). Effect: mean
     over cells of log2(bpb_image / bpb_text) on early_dense. "Comparable" is read as within a
     factor of 2: agrees if the interval lies inside (-1, 1), disagrees if it lies outside.

Verdicts of 1-3: "agrees" when the interval excludes zero on the published side, "disagrees" when
it excludes zero on the other side, "not resolved at this scale" when it includes zero.

Intervals: questions 1, 2 and 4 resample the paired cells with replacement; question 3 resamples
the parabolas' residuals (the same draw for both modalities, so their correlation is kept) and
refits every budget. A replicate whose parabola opens downwards has no vertex and is counted.
"""

import math

import numpy as np

from mmscale.laws import table as tbl

ARCHS = ("early_dense", "early_moe", "late_dense")
MODALITIES = ("text", "image")
LEVEL = 0.95
MARGIN_LOG2 = 1.0  # Question 4: "comparable" = within a factor 2^MARGIN_LOG2.

# (title, seed finding, expected sign of the effect) per question.
FINDINGS = {
    "moe_vs_dense": ("MoE vs dense at equal active parameters (text loss, MoE - dense, nats/token)",
                     "Shukor et al. 2025: MoE has lower loss than dense at equal active parameters", -1),
    "early_vs_late": ("early vs late fusion at equal compute (text loss, late - early, nats/token)",
                      "Shukor et al. 2025: early fusion at least as good as late, better at small N", +1),
    "data_exponent": ("per-modality IsoFLOP data exponent (D_opt ∝ C^b, b_image - b_text)",
                      "Tong et al. 2026: vision is more data-hungry than language (larger b for image)", +1),
    "bits_per_byte": ("bits per raw byte across modalities (log2 of bpb_image / bpb_text)",
                      "compression-normalised scaling: bits per raw byte comparable across modalities", 0),
}


def final_runs(table) -> list[dict]:
  """One dict per finished run (its final eval): arch, size, budget, params, flops, and per modality
  the loss (nats per target) and bpb pooled over validation sources by their target counts."""
  t = tbl.final_rows(table)
  if "final" in t and t["final"].dtype.kind != "f":
    keep = np.isin(np.char.lower(t["final"].astype(str)), ("true", "1", "yes"))
    t = tbl.subset(t, keep)
  runs: dict[str, dict] = {}
  for i in range(tbl.n_rows(t)):
    rid = str(t["run_id"][i])
    r = runs.setdefault(rid, {"run_id": rid, "arch": str(t["arch"][i]), "size": str(t["size"][i]),
                              "budget": float(t["budget"][i]), "params": float(t["params"][i]),
                              "flops": float(t["flops"][i]), "_sums": {}})
    for m in MODALITIES:
      loss, bpb, n = (t.get(f"{k}_{m}") for k in ("loss", "bpb", "targets"))
      if loss is None or n is None or not (np.isfinite(loss[i]) and np.isfinite(n[i]) and n[i] > 0):
        continue
      s = r["_sums"].setdefault(m, [0.0, 0.0, 0.0])
      s[0] += loss[i] * n[i]  # nats
      s[1] += n[i]
      if bpb is not None and np.isfinite(bpb[i]) and bpb[i] > 0:
        s[2] += loss[i] * n[i] / math.log(2) / bpb[i]  # raw bytes = bits / bpb
  out = []
  for r in runs.values():
    sums = r.pop("_sums")
    for m, (nats, n, raw) in sums.items():
      r[f"loss_{m}"] = nats / n
      r[f"bpb_{m}"] = nats / math.log(2) / raw if raw > 0 else float("nan")
    out.append(r)
  return sorted(out, key=lambda r: (r["arch"], r["budget"], r["params"]))


def paired_cells(runs, arch_a: str, arch_b: str, key: str) -> list[tuple[str, float, float]]:
  """(size, budget, value_b - value_a) for every (size, budget) cell both architectures finished."""
  by = {(r["arch"], r["size"], r["budget"]): r for r in runs}
  out = []
  for (arch, size, budget), ra in sorted(by.items(), key=lambda kv: (kv[0][2], kv[1]["params"])):
    rb = by.get((arch_b, size, budget))
    if arch == arch_a and rb is not None and key in ra and key in rb:
      out.append((size, budget, rb[key] - ra[key]))
  return out


def bootstrap_mean(values, n=2000, seed=0) -> tuple[float, float, float]:
  """Mean and percentile interval of the mean, resampling the values with replacement."""
  v = np.asarray(values, float)
  rng = np.random.default_rng(seed)
  means = v[rng.integers(0, v.size, (n, v.size))].mean(1)
  lo, hi = np.quantile(means, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
  return float(v.mean()), float(lo), float(hi)


def _vertex(x, y):
  """log N at the minimum of the parabola y = c2 x^2 + c1 x + c0, or None if it opens downwards."""
  c2, c1, _ = np.polyfit(x, y, 2)
  return -c1 / (2 * c2) if c2 > 0 else None


def _data_exponent(log_n_opt, flops):
  """b of D_opt ∝ C^b with D_opt = C / (6 N_opt): a least-squares slope in log-log."""
  log_c = np.log(flops)
  log_d = log_c - np.log(6.0) - np.asarray(log_n_opt)
  return float(np.polyfit(log_c, log_d, 1)[0])


def isoflop_exponents(runs, arch="early_dense", n=1000, seed=0) -> dict:
  """Per modality: b from each budget's parabola of loss_m vs log N, with a residual bootstrap."""
  mine = [r for r in runs if r["arch"] == arch and all(f"loss_{m}" in r for m in MODALITIES)]
  budgets = sorted({r["budget"] for r in mine})
  groups = [[r for r in mine if r["budget"] == b] for b in budgets]
  groups = [g for g in groups if len(g) >= 3]
  if len(groups) < 2:
    return {"error": f"{arch}: needs >= 2 budgets with >= 3 sizes holding text and image losses"}
  # Approach 2 reads N_opt off a valley: budgets whose lowest loss (in either modality) sits at the
  # smallest or largest size only extrapolate, so they are left out when >= 2 budgets remain.
  inner = [all(0 < int(np.argmin([r[f"loss_{m}"] for r in g])) < len(g) - 1 for m in MODALITIES)
           for g in groups]
  interior = {m: sum(0 < int(np.argmin([r[f"loss_{m}"] for r in g])) < len(g) - 1 for g in groups)
              for m in MODALITIES}
  notes = []
  if sum(inner) >= 2:
    groups = [g for g, ok in zip(groups, inner) if ok]
  else:
    notes.append(f"no interval: the minimum is at an interior size at {sum(inner)} of {len(groups)} "
                 "budgets for both modalities (N_opt extrapolated; add sizes)")
  if all(len(g) == 3 for g in groups):
    notes.append("no interval: 3 sizes per budget leave the parabolas no residual to resample")
  x = [np.log([r["params"] for r in g]) for g in groups]
  flops = np.array([np.mean([r["flops"] for r in g]) for g in groups])
  fits, resid = {}, {}
  for m in MODALITIES:
    y = [np.array([r[f"loss_{m}"] for r in g]) for g in groups]
    coef = [np.polyfit(xi, yi, 2) for xi, yi in zip(x, y)]
    fits[m] = [np.polyval(c, xi) for c, xi in zip(coef, x)]
    resid[m] = [yi - fi for yi, fi in zip(y, fits[m])]
    verts = [_vertex(xi, yi) for xi, yi in zip(x, y)]
    if any(v is None for v in verts):
      return {"error": f"{arch}: the {m} loss has no IsoFLOP valley at some budget (parabola opens downwards)"}
    fits[m + "_b"] = _data_exponent(verts, flops)
    fits[m + "_n_opt"] = [float(np.exp(v)) for v in verts]
  rng = np.random.default_rng(seed)
  # Residuals rescaled for the 3 fitted coefficients per budget, drawn per budget by position so a
  # run's text and image residuals move together.
  reps, degenerate = [], 0
  for _ in range(n):
    draws = [rng.integers(0, xi.size, xi.size) for xi in x]
    bs = {}
    for m in MODALITIES:
      verts = []
      for xi, fi, ri, d in zip(x, fits[m], resid[m], draws):
        scale = math.sqrt(xi.size / max(xi.size - 3, 1))
        verts.append(_vertex(xi, fi + scale * ri[d]))
      if any(v is None for v in verts):
        break
      bs[m] = _data_exponent(verts, flops)
    if len(bs) < len(MODALITIES):
      degenerate += 1
      continue
    reps.append((bs["image"] - bs["text"], bs["text"], bs["image"]))
  effect = fits["image_b"] - fits["text_b"]
  q = [(1 - LEVEL) / 2, (1 + LEVEL) / 2]
  ci = np.quantile(np.array(reps), q, axis=0).T if reps and not notes else np.full((3, 2), np.nan)
  (lo, hi), ci_text, ci_image = ci[0], ci[1].tolist(), ci[2].tolist()
  return {"effect": effect, "lo": float(lo), "hi": float(hi), "b_text": fits["text_b"],
          "b_image": fits["image_b"], "ci_text": ci_text, "ci_image": ci_image,
          "budgets": len(groups), "interior": interior, "notes": notes,
          "budgets_sampled": len(budgets),
          "degenerate": degenerate, "replicates": n, "n_opt": {m: fits[m + "_n_opt"] for m in MODALITIES}}


def verdict(lo: float, hi: float, sign: int) -> str:
  if not (math.isfinite(lo) and math.isfinite(hi)):
    return "not resolved at this scale"
  if sign == 0:  # An equivalence claim: inside the margin agrees, wholly outside disagrees.
    if -MARGIN_LOG2 < lo and hi < MARGIN_LOG2:
      return "agrees"
    if lo >= MARGIN_LOG2 or hi <= -MARGIN_LOG2:
      return "disagrees"
    return "not resolved at this scale"
  if lo > 0 or hi < 0:
    return "agrees" if (lo > 0) == (sign > 0) else "disagrees"
  return "not resolved at this scale"


def interior_minima(runs, key="loss_text") -> dict[str, tuple[int, int]]:
  """Per architecture: (budgets whose lowest `key` is at an interior size, budgets)."""
  out = {}
  for arch in sorted({r["arch"] for r in runs}):
    inside = total = 0
    for b in sorted({r["budget"] for r in runs if r["arch"] == arch}):
      pts = sorted((r["params"], r[key]) for r in runs if r["arch"] == arch and r["budget"] == b and key in r)
      if len(pts) >= 3:
        total += 1
        inside += 0 < min(range(len(pts)), key=lambda j: pts[j][1]) < len(pts) - 1
    out[arch] = (inside, total)
  return out


def answers(table) -> dict:
  """The four questions' effects, intervals and verdicts from a collect table."""
  for col in ("run_id", "arch", "size", "budget", "params", "flops"):
    if col not in table:
      raise ValueError(f"the headline needs column {col!r} (a table of a study with an 'arch' axis)")
  runs = final_runs(table)
  out = {"runs": len(runs), "interior": interior_minima(runs)}
  pairs = {"moe_vs_dense": ("early_dense", "early_moe", "loss_text"),
           "early_vs_late": ("early_dense", "late_dense", "loss_text")}
  for q, (a, b, key) in pairs.items():
    cells = paired_cells(runs, a, b, key)
    if len(cells) < 2:
      out[q] = {"error": f"needs >= 2 (size, budget) cells finished by both {a} and {b}"}
      continue
    mean, lo, hi = bootstrap_mean([d for _, _, d in cells])
    out[q] = {"effect": mean, "lo": lo, "hi": hi, "cells": len(cells)}
    if q == "early_vs_late":  # "better at small N": the gap at the smallest and largest decoder.
      # Realised compute of late over early in the same cells: the grid counts early fusion's FLOPs
      # per position (padding included), late fusion's on its measured non-pad share.
      by = {(r["arch"], r["size"], r["budget"]): r["flops"] for r in runs}
      out[q]["compute_ratio"] = float(np.mean([by[(b, s, c)] / by[(a, s, c)] for s, c, _ in cells]))
      sizes = [s for s, _, _ in cells]
      for edge, size in (("smallest", sizes[0]), ("largest", sizes[-1])):
        d = [v for s, _, v in cells if s == size]
        out[q][edge] = {"size": size, **dict(zip(("effect", "lo", "hi"), bootstrap_mean(d)))} if len(d) >= 2 else None
  out["data_exponent"] = isoflop_exponents(runs)
  ratios = [math.log2(r["bpb_image"] / r["bpb_text"]) for r in runs if r["arch"] == "early_dense"
            and r.get("bpb_image", 0) > 0 and r.get("bpb_text", 0) > 0]
  if len(ratios) >= 2:
    mean, lo, hi = bootstrap_mean(ratios)
    means = {m: float(np.mean([r[f"bpb_{m}"] for r in runs if r["arch"] == "early_dense" and f"bpb_{m}" in r]))
             for m in MODALITIES}
    out["bits_per_byte"] = {"effect": mean, "lo": lo, "hi": hi, "cells": len(ratios), "mean_bpb": means}
  else:
    out["bits_per_byte"] = {"error": "needs >= 2 early_dense runs with image and text bits per raw byte"}
  for q, (_, _, sign) in FINDINGS.items():
    a = out[q]
    a["verdict"] = verdict(a["lo"], a["hi"], sign) if "effect" in a else "not resolved at this scale"
  return out


def lines(ans: dict) -> list[str]:
  """The headline text, one block per question."""
  out = [f"{ans['runs']} finished runs; IsoFLOP minimum (text loss) at an interior size: " + ", ".join(
      f"{arch} {i}/{n} budgets" for arch, (i, n) in ans["interior"].items())]
  for k, (q, (title, finding, _)) in enumerate(FINDINGS.items(), 1):
    a = ans[q]
    out.append(f"Q{k} {title}")
    if "effect" not in a:
      out.append(f"   measured: not measured ({a['error']})")
    else:
      ci = (f"95% CI [{a['lo']:+.4f}, {a['hi']:+.4f}]" if math.isfinite(a["lo"]) and math.isfinite(a["hi"])
            else "95% CI undefined")
      out.append(f"   measured: {a['effect']:+.4f}  {ci}" + _detail(q, a))
    out.append(f"   seed:     {finding}")
    out.append(f"   verdict:  {a['verdict']}")
  return out


def _detail(q: str, a: dict) -> str:
  if q == "data_exponent":
    inner = ", ".join(f"{m} {a['interior'][m]}/{a['budgets_sampled']}" for m in MODALITIES)
    def b(m):
      lo, hi = a[f"ci_{m}"]
      return f"{a[f'b_{m}']:.3f}" + (f" [{lo:.3f}, {hi:.3f}]" if math.isfinite(lo) else "")
    return (f"  (b_text {b('text')}, b_image {b('image')} over {a['budgets']} budgets; "
            f"interior minima {inner}; {a['degenerate']}/{a['replicates']} replicates without a valley"
            + "".join(f"; {n}" for n in a["notes"]) + ")")
  if q == "bits_per_byte":
    return (f"  (mean bpb: image {a['mean_bpb']['image']:.3f}, text {a['mean_bpb']['text']:.3f}; "
            f"{a['cells']} runs; comparable = within a factor {2 ** MARGIN_LOG2:g})")
  text = f"  ({a['cells']} cells" + (f"; realised compute late/early {a['compute_ratio']:.3f})"
                                     if "compute_ratio" in a else ")")
  for edge in ("smallest", "largest"):
    if a.get(edge):
      e = a[edge]
      text += f"; at the {edge} size {e['size']}: {e['effect']:+.4f} [{e['lo']:+.4f}, {e['hi']:+.4f}]"
  return text

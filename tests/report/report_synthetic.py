"""Synthetic records tables drawn from a known law L = E + A/N^alpha + B/D^beta (test fixtures)."""

import csv
import json

import numpy as np

LAWS = {  # (fusion, ffn) -> coefficients; distinct so the per-study fits are told apart.
    ("early", "dense"): dict(E=1.9, A=400.0, B=2000.0, alpha=0.34, beta=0.37),
    ("late", "dense"): dict(E=1.95, A=300.0, B=2500.0, alpha=0.32, beta=0.38),
    ("early", "moe"): dict(E=1.85, A=600.0, B=1800.0, alpha=0.36, beta=0.36),
}
SOURCES = {"caption": 0.15, "interleaved": 0.05, "text": 0.0}  # offsets added to the law
BUDGETS = (1e17, 3e17, 1e18, 3e18)
SIZE_FACTORS = (1 / 8, 1 / 3, 1.0, 3.0, 8.0)
FRACTIONS = (0.25, 0.5, 1.0)


def law(c, n, d):
  return c["E"] + c["A"] / n ** c["alpha"] + c["B"] / d ** c["beta"]


def n_opt(c, budget):
  s = c["alpha"] + c["beta"]
  g = (c["alpha"] * c["A"] / (c["beta"] * c["B"])) ** (1 / s)
  return g * (budget / 6) ** (c["beta"] / s)


def rows(families=tuple(LAWS), seed=0, noise=0.002, routing=True):
  """(rows as dicts, routing by run_id): runs x evals x sources, per the Collect-table contract."""
  rng = np.random.default_rng(seed)
  out, routes = [], {}
  for fusion, ffn in families:
    coef = LAWS[(fusion, ffn)]
    for budget in BUDGETS:
      for k, f in enumerate(SIZE_FACTORS):
        n = float(np.round(n_opt(coef, budget) * f))
        d_final = budget / (6 * n)
        run_id = f"{fusion}-{ffn}-c{budget:.0e}-n{k}"
        for frac in FRACTIONS:
          d = d_final * frac
          base = law(coef, n, d)
          for src, off in SOURCES.items():
            loss = (base + off) * (1 + noise * rng.standard_normal())
            out.append({
                "run_id": run_id, "step": int(1000 * frac), "source": src, "loss": loss,
                "bpb": loss / np.log(2) / 4.0, "loss_image": 1.3 * loss, "bpb_image": loss / 3.0,
                "params": n, "active_params": n, "embedding_params": 0.1 * n,
                "non_embedding_params": 0.9 * n, "tokens": d, "tokens_text": 0.4 * d,
                "tokens_image": 0.6 * d, "tokens_audio": 0.0, "flops": 6 * n * d,
                "flops_formula": "6ND", "final": frac == 1.0, "budget": budget,
                "fusion": fusion, "ffn": ffn, "size": f"n{k}"})
        if ffn == "moe" and routing:
          routes[run_id] = routing_counts(rng, n_layers=4, n_experts=8)
  return out, routes


def routing_counts(rng, n_layers, n_experts):
  """Counts [layer, expert, modality]: deeper layers route images to fewer experts."""
  counts = np.zeros((n_layers, n_experts, 3))
  for layer in range(n_layers):
    sharp = 0.5 + 2.0 * layer
    text_p = rng.dirichlet(np.ones(n_experts) * 5)
    img_p = np.exp(-sharp * np.arange(n_experts) / n_experts)
    counts[layer, :, 0] = 4000 * text_p
    counts[layer, :, 1] = 6000 * img_p / img_p.sum()
  return {"counts": counts.round().tolist(), "modalities": ["text", "image", "audio"]}


def write_csv(path, rows_):
  keys = list(rows_[0])
  with open(path, "w", newline="") as f:
    w = csv.DictWriter(f, keys)
    w.writeheader()
    w.writerows(rows_)
  return path


def write_routing(path, routes):
  with open(path, "w") as f:
    json.dump(routes, f)
  return path


def write_root(root, rows_, routes):
  """A sweep root as the trainer and registry leave it: run.json, records.jsonl, summary.json."""
  from mmscale.sweep import registry
  from mmscale.train.records import append_record, write_json_atomic
  by_run = {}
  for r in rows_:
    by_run.setdefault(r["run_id"], []).append(r)
  specs = []
  for run_id, rs in by_run.items():
    last = max(rs, key=lambda r: r["step"])
    tags = {k: last[k] for k in ("budget", "fusion", "ffn", "size")}
    specs.append(registry.RunSpec(run_id=run_id, name=run_id, kind="run", config={},
                                  params=int(last["params"]), tokens=int(last["tokens"]),
                                  flops=last["flops"], own_flops=last["flops"], steps=last["step"],
                                  tags=tags))
  registry.write_specs(str(root), specs)
  for run_id, rs in by_run.items():
    d = root / run_id
    for step in sorted({r["step"] for r in rs}):
      at = [r for r in rs if r["step"] == step]
      r0 = at[0]
      rec = {"kind": "eval", "run_id": run_id, "step": step, "tokens": r0["tokens"],
             "tokens_by_modality": {m: r0[f"tokens_{m}"] for m in ("text", "image", "audio")},
             "flops": r0["flops"], "flops_formula": r0["flops_formula"], "params": r0["params"],
             "active_params": r0["active_params"], "vision_params": 0,
             "embedding_params": r0["embedding_params"],
             "non_embedding_params": r0["non_embedding_params"], "wall_time": 1.0,
             "val": {r["source"]: {k: r[k] for k in ("loss", "bpb", "loss_image", "bpb_image")}
                     for r in at}}
      if run_id in routes:
        rec["routing"] = routes[run_id]
      append_record(d / "records.jsonl", rec)
    write_json_atomic(d / "summary.json", {"status": "done"})
  return root

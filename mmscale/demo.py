"""`mmscale demo`: the main job — real data, an IsoFLOP sweep, fits, a report and the headline.

Each stage is the same command a user would type, run in order; each reads only what the one
before wrote, and each skips what is already done, so re-running the demo reuses every finished
run, the prepared data and the tokenizer:

  mmscale data prepare --out OUT/data
  mmscale sweep   --config=experiments/demo.py --root=OUT/sweep --workers=2
  mmscale collect --root=OUT/sweep --out=OUT/records.csv
  mmscale fit     --records=OUT/records.csv --group_by=ffn --bootstrap=N --json=OUT/fit.json
  mmscale report  --records=OUT/records.csv --fit=OUT/fit.json --out=OUT/report
"""

import json
import os
import time

from absl import flags

from mmscale.errors import UserError
from mmscale.flagparse import parse_flags

FLAGS = flags.FlagValues()
_OUT = flags.DEFINE_string("out", "demo_out", "Folder for the data, the sweep, the table, the fit and the report.",
                           flag_values=FLAGS)
_WORKERS = flags.DEFINE_integer("workers", 2, "Local sweep workers.", flag_values=FLAGS)
_BOOTSTRAP = flags.DEFINE_integer("bootstrap", 100, "Bootstrap replicates per architecture.", flag_values=FLAGS)
_STUDY = flags.DEFINE_string("study", "experiments/demo.py", "Study file.", flag_values=FLAGS)


def _stage(title: str, argv: list[str]) -> None:
  """Runs one `mmscale` command in this process, with its own flags, and times it."""
  from mmscale import cli

  print(f"\n=== {title}: mmscale {' '.join(argv)}", flush=True)
  start = time.time()
  code = cli.run(["mmscale", *argv])
  if code != 0:
    raise UserError(f"demo stage '{title}' failed (exit code {code}); fix it and re-run `make demo` "
                    "(finished work is kept)")
  print(f"=== {title}: done in {time.time() - start:.0f} s", flush=True)


def _interval(fit: dict, key: str) -> str:
  ci = ((fit.get("bootstrap") or {}).get("ci95") or {}).get(key)
  value = fit.get(key, float("nan"))
  return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else f"{value:.3f}"


def final_table(records_csv: str) -> dict:
  """The final eval of each finished run, loss averaged over validation sources."""
  from mmscale.laws import table as tbl

  return tbl.final_rows(tbl.average_sources(tbl.read_table(records_csv)))


def moe_vs_dense(t: dict) -> dict:
  """Final loss (mean over sources) of MoE against dense for each (size, budget) cell: both share the
  width, so their active parameters are equal and the comparison is at equal active compute."""
  from mmscale.laws import table as tbl

  if "ffn" not in t:
    return {}
  cells = {}
  for i in range(tbl.n_rows(t)):
    if "kind" in t and t["kind"][i] == "trunk":
      continue
    key = (str(t["size"][i]), float(t["budget"][i]))
    cells.setdefault(key, {})[str(t["ffn"][i])] = (float(t["loss"][i]), float(t["active_params"][i]))
  pairs = [(c["dense"], c["moe"]) for c in cells.values() if "dense" in c and "moe" in c]
  if not pairs:
    return {}
  diffs = [m[0] - d[0] for d, m in pairs]
  return {"cells": len(pairs), "moe_better": sum(d < 0 for d in diffs),
          "mean_difference": sum(diffs) / len(diffs),
          "equal_active": all(abs(d[1] - m[1]) <= 1e-9 * d[1] for d, m in pairs)}


def isoflop_minima(t: dict) -> dict:
  """Per architecture: for each budget, whether the lowest final loss lies strictly inside the
  sampled sizes (an IsoFLOP valley) rather than at the smallest or largest model."""
  from mmscale.laws import table as tbl

  out = {}
  for i in range(tbl.n_rows(t)):
    key = (str(t["ffn"][i]), float(t["budget"][i]))
    out.setdefault(key, []).append((float(t["params"][i]), float(t["loss"][i])))
  result = {}
  for (ffn, budget), points in sorted(out.items()):
    points.sort()
    best = min(range(len(points)), key=lambda j: points[j][1])
    result.setdefault(ffn, []).append((budget, 0 < best < len(points) - 1))
  return result


def headline(out: str) -> list[str]:
  with open(os.path.join(out, "fit.json"), encoding="utf-8") as f:
    fit = json.load(f)
  lines = ["", "=" * 78, "mmscale demo: what the sweep found", "=" * 78]
  groups = fit.get("groups") or {"all": fit}
  for name, g in groups.items():
    lines.append(f"{name:>10}: alpha {_interval(g, 'alpha')}  beta {_interval(g, 'beta')}")
    lines.append(f"{'':>10}  a (N_opt ∝ C^a) {_interval(g, 'a')}  b (D_opt ∝ C^b) {_interval(g, 'b')}")
    frontier, iso = g.get("frontier") or {}, g.get("isoflop") or {}
    if frontier:
      lines.append(f"{'':>10}  frontier L ∝ C^c: c = {frontier['c']:.4f}, R² = {frontier['r2']:.3f}")
    if iso:
      lines.append(f"{'':>10}  IsoFLOP (approach 2): N_opt ∝ C^{iso['a']:.3f} over "
                   f"{len(iso['budgets'])} budgets with a bracketed minimum")
  final = final_table(os.path.join(out, "records.csv"))
  for ffn, budgets in isoflop_minima(final).items():
    inside = sum(ok for _, ok in budgets)
    lines.append(f"IsoFLOP minimum inside the sampled sizes ({ffn}): {inside} of {len(budgets)} budgets")
  cmp = moe_vs_dense(final)
  if cmp:
    verdict = "beats" if cmp["mean_difference"] < 0 else "does not beat"
    lines.append(f"MoE (8 experts, top-1) {verdict} dense at equal active parameters: lower loss in "
                 f"{cmp['moe_better']} of {cmp['cells']} (size, budget) cells, mean difference "
                 f"{cmp['mean_difference']:+.4f} nats/token")
  lines.append(f"report: {os.path.abspath(os.path.join(out, 'report', 'index.html'))}")
  return lines


def main(argv: list[str]) -> int:
  parse_flags(FLAGS, argv)
  out = os.path.abspath(_OUT.value)
  data = os.path.join(out, "data")
  os.makedirs(out, exist_ok=True)
  started = time.time()
  if not os.path.exists(os.path.join(data, "manifest.json")):
    _stage("data", ["data", "prepare", f"--out={data}"])
  else:
    print(f"=== data: reusing {data}", flush=True)
  study = [f"--config={_STUDY.value}", f"--config.data.data_dir={data}"]
  _stage("sweep", ["sweep", *study, f"--root={out}/sweep", f"--workers={_WORKERS.value}"])
  _stage("collect", ["collect", *study, f"--root={out}/sweep", f"--out={out}/records.csv"])
  _stage("fit", ["fit", f"--records={out}/records.csv", "--group_by=ffn", f"--bootstrap={_BOOTSTRAP.value}",
                 f"--json={out}/fit.json"])
  # The study's table, with the MoE routing counts read from its runs' records under the root.
  _stage("report", ["report", f"--records={out}/records.csv", f"--root={out}/sweep",
                    f"--fit={out}/fit.json", f"--out={out}/report"])
  for line in headline(out):
    print(line)
  print(f"total {time.time() - started:.0f} s")
  return 0

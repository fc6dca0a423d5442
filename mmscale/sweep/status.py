"""Progress of every run under a root, read from disk only (specs, claims, records, summaries)."""

import os

from mmscale.sweep import claims
from mmscale.sweep import registry


def _last_step(path: str) -> int:
  """Step of the last complete record, reading only the file's tail (records grow large)."""
  import json
  try:
    with open(path, "rb") as f:
      f.seek(0, os.SEEK_END)
      size = f.tell()
      f.seek(max(0, size - 65536))
      lines = f.read().split(b"\n")
  except FileNotFoundError:
    return 0
  for line in reversed(lines):
    try:
      return int(json.loads(line).get("step", 0))
    except (ValueError, AttributeError):
      continue
  return 0


def run_status(root: str, run_id: str) -> dict:
  spec = registry.read_spec(root, run_id)
  d = registry.run_dir(root, run_id)
  status = registry.status(root, run_id)
  summary = registry.summary(root, run_id) or {}
  step = int(summary.get("step", 0)) if status in registry.FINISHED else _last_step(
      os.path.join(d, registry.RECORDS))
  held = claims.holder(d) if status == "running" else None
  return {"run_id": run_id, "kind": spec.kind, "status": status, "step": step,
          "steps": spec.steps, "progress": step / spec.steps if spec.steps else 0.0,
          "params": spec.params, "tokens": spec.tokens, "flops": spec.flops,
          "worker": f"{held.get('host')}:{held.get('pid')}" if held else "", "tags": spec.tags,
          "reason": summary.get("reason", "") if status == "diverged" else ""}


def table(root: str) -> list[dict]:
  return [run_status(root, r) for r in registry.list_runs(root)]


def format_table(rows: list[dict]) -> str:
  header = f"{'run_id':<44} {'kind':<6} {'status':<9} {'step':>13} {'done':>5} {'params':>9} " \
           f"{'flops':>9}  worker"
  lines = [header]
  for r in rows:
    lines.append(f"{r['run_id']:<44} {r['kind']:<6} {r['status']:<9} "
                 f"{str(r['step']) + '/' + str(r['steps']):>13} {100 * r['progress']:>4.0f}% "
                 f"{r['params']:>9.3g} {r['flops']:>9.3g}  {r['worker']}")
  counts = {}
  for r in rows:
    counts[r["status"]] = counts.get(r["status"], 0) + 1
  lines.append(f"{len(rows)} runs: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
  lines += [f"{r['run_id']} diverged: {r['reason']}" for r in rows if r["status"] == "diverged"]
  return "\n".join(lines)

"""Progress of every run under a root, read from disk only (specs, claims, records, summaries).

Per run: status, step, last training loss, throughput and ETA from the last two train records
(their steps, tokens and wall times). In total: runs per status, tokens/s of the running runs and
the sweep's ETA, which is the compute still to do (each unfinished run's own FLOPs, a branch
counting only its cool-down) over the compute rate (FLOPs/s) the running runs sustain now.
"""

import json
import math
import os

from mmscale import contract
from mmscale.sweep import claims
from mmscale.sweep import registry

# Shown first and always (with 0), in this order; any other status (preempted, blocked, one added
# later) follows with its count.
MAIN_STATUSES = (contract.DONE, contract.RUNNING, contract.PENDING, contract.FAILED,
                 contract.DIVERGED)
# Compute still to do; failed runs wait on a retry.
UNFINISHED = (contract.RUNNING, contract.PENDING, contract.PREEMPTED)


def _tail(path: str, limit: int = 65536) -> list[dict]:
  """The complete records at the end of a records file, reading only its tail (records grow
  large); widens the window once when it holds fewer than two train records."""
  try:
    with open(path, "rb") as f:
      f.seek(0, os.SEEK_END)
      size = f.tell()
      f.seek(max(0, size - limit))
      lines = f.read().split(b"\n")
  except FileNotFoundError:
    return []
  if size > limit:
    lines = lines[1:]  # The first line of the window is cut.
  out = []
  for line in lines:
    try:
      r = json.loads(line)
    except (ValueError, UnicodeDecodeError):
      continue  # A torn last line, or a blank one.
    if isinstance(r, dict):
      out.append(r)
  if size > limit and sum(r.get("kind") == "train" for r in out) < 2 and limit < 2**22:
    return _tail(path, limit * 16)
  return out


def _mtime(path: str) -> float:
  try:
    return os.stat(path).st_mtime
  except FileNotFoundError:
    return 0.0


def _live(records: list[dict]) -> dict:
  """Step, last loss and rates from the tail of a run's records (None where unknown)."""
  train = [r for r in records if r.get("kind") == "train"]
  out = {"step": int(records[-1].get("step", 0)) if records else 0, "loss": None,
         "tokens_per_s": None, "steps_per_s": None}
  if train and "loss" in train[-1]:
    out["loss"] = float(train[-1]["loss"])
  timed = [r for r in train if "wall_time" in r]
  if len(timed) >= 2:
    a, b = timed[-2], timed[-1]
    dt = float(b["wall_time"]) - float(a["wall_time"])
    if dt > 0 and b["step"] > a["step"]:
      out["steps_per_s"] = (b["step"] - a["step"]) / dt
      if "tokens" in a and "tokens" in b:
        out["tokens_per_s"] = (b["tokens"] - a["tokens"]) / dt
  return out


def run_status(root: str, run_id: str) -> dict:
  spec = registry.read_spec(root, run_id)
  d = registry.run_dir(root, run_id)
  status = registry.status(root, run_id)
  summary = registry.summary(root, run_id) or {}
  live = _live(_tail(os.path.join(d, contract.RECORDS_FILE)))
  # This run's own share of the work: a branch starts at its trunk's step.
  start = int(spec.depends_step) if spec.kind == "branch" else 0
  step = int(summary.get("step", 0)) if status in contract.FINISHED else live["step"]
  if status == contract.RUNNING:  # A branch that has not logged yet is at its trunk's step.
    step = max(step, start)
  held = claims.holder(d) if status == contract.RUNNING else None
  own = min(1.0, max(0.0, (step - start) / (spec.steps - start))) if spec.steps > start else 1.0
  if status == contract.DONE:
    own = 1.0
  # (1 s of slack: file times come from a coarser clock than time.time().)
  if held and _mtime(os.path.join(d, contract.RECORDS_FILE)) < float(held.get("time", 0)) - 1.0:
    # Nothing logged since this attempt started (it is compiling): the rates on disk are the
    # previous attempt's, before its preemption.
    live["steps_per_s"] = live["tokens_per_s"] = None
  rate = live["steps_per_s"] if status == contract.RUNNING else None
  eta = (spec.steps - step) / rate if rate else None
  flops_rate = rate * spec.own_flops / (spec.steps - start) if rate and spec.steps > start else None
  return {"run_id": run_id, "kind": spec.kind, "status": status, "step": step,
          "steps": spec.steps, "progress": step / spec.steps if spec.steps else 0.0,
          "params": spec.params, "tokens": spec.tokens, "flops": spec.flops,
          "own_flops": spec.own_flops, "own_progress": own, "loss": live["loss"],
          "tokens_per_s": live["tokens_per_s"] if status == contract.RUNNING else None,
          "flops_per_s": flops_rate, "eta_s": eta,
          "worker": f"{held.get('host')}:{held.get('pid')}" if held else "", "tags": spec.tags,
          "reason": summary.get("reason", "") if status == contract.DIVERGED else ""}


def table(root: str) -> list[dict]:
  return [run_status(root, r) for r in registry.list_runs(root)]


def totals(rows: list[dict], flops_per_s: float | None = None) -> dict:
  """Counts per status, throughput of the running runs and the sweep's ETA.

  `flops_per_s` overrides the running runs' current compute rate (a watcher that saw the sweep
  progress over minutes knows a rate that includes start-up and compile time)."""
  counts = {s: 0 for s in MAIN_STATUSES}
  for r in rows:
    counts[r["status"]] = counts.get(r["status"], 0) + 1
  running = [r for r in rows if r["status"] == contract.RUNNING]
  rates = [r["tokens_per_s"] for r in running if r["tokens_per_s"] is not None]
  remaining = sum(r["own_flops"] * (1 - r["own_progress"]) for r in rows
                  if r["status"] in UNFINISHED)
  if flops_per_s is None:
    flops_per_s = sum(r["flops_per_s"] or 0.0 for r in running)
  eta = remaining / flops_per_s if remaining and flops_per_s else (0.0 if not remaining else None)
  return {"counts": counts, "tokens_per_s": sum(rates) if rates else None,
          "remaining_flops": remaining, "eta_s": eta}


def duration(seconds) -> str:
  """1h02m, 4m05s, '-' when unknown."""
  if seconds is None or not math.isfinite(seconds):
    return "-"
  s = int(round(seconds))
  return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def _num(x, fmt: str) -> str:
  return "-" if x is None else format(x, fmt)


def format_totals(t: dict) -> str:
  """`3 done · 2 running · 18 pending · 0 failed · 1 diverged · 12,400 tok/s · ETA 4m10s`."""
  counts = " · ".join(f"{n} {s}" for s, n in t["counts"].items())
  return f"{counts} · {_num(t['tokens_per_s'], ',.0f')} tok/s · ETA {duration(t['eta_s'])}"


def format_running(r: dict) -> str:
  return (f"  {r['run_id']}  step {r['step']}/{r['steps']}  loss {_num(r['loss'], '.4f')}  "
          f"{_num(r['tokens_per_s'], ',.0f')} tok/s  ETA {duration(r['eta_s'])}")


def format_table(rows: list[dict]) -> str:
  header = f"{'run_id':<44} {'kind':<6} {'status':<9} {'step':>13}  done {'loss':>8} " \
           f"{'tok/s':>9} {'ETA':>7} {'params':>9} {'flops':>9}  worker"
  lines = [header]
  for r in rows:
    lines.append(f"{r['run_id']:<44} {r['kind']:<6} {r['status']:<9} "
                 f"{str(r['step']) + '/' + str(r['steps']):>13} {100 * r['progress']:>4.0f}% "
                 f"{_num(r['loss'], '.4f'):>8} {_num(r['tokens_per_s'], ',.0f'):>9} "
                 f"{duration(r['eta_s']) if r['status'] == contract.RUNNING else '':>7} "
                 f"{r['params']:>9.3g} {r['flops']:>9.3g}  {r['worker']}")
  counts = {}
  for r in rows:
    counts[r["status"]] = counts.get(r["status"], 0) + 1
  lines.append(f"{len(rows)} runs: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
  lines.append("total: " + format_totals(totals(rows)))
  lines += [f"{r['run_id']} diverged: {r['reason']}" for r in rows
            if r["status"] == contract.DIVERGED]
  return "\n".join(lines)

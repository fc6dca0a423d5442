"""Collect: every run's eval records -> one table, a row per run x eval point x validation source.

Columns: run_id, step, source, loss, bpb, loss_<m>, bpb_<m>,
targets_<m>, parameter counts, tokens (total and per modality), flops, flops_formula, final (last
eval of a finished run; never a trunk's, which has no cool-down), kind (run/trunk/branch), status
(the run's, as `mmscale status` shows it: done, diverged, running...) with status_reason (a diverged
run's step and cause: `mmscale fit` and `report` leave those runs out and say why), routing (an MoE
run's eval record "routing" as one JSON cell: counts [layer][expert][modality], modalities and the
specialization score per layer, mmscale.contract.routing_record; what the report's experts panel
draws, so the report needs only the table) and one column per config.run.tags key. The table
is written through a temporary file and a rename, so an existing table survives a failing collect.
"""

import csv
import json
import math
import os

from absl import logging

from mmscale import contract
from mmscale.contract import MODALITIES
from mmscale.errors import UserError
from mmscale.sweep import registry

FIXED = ["run_id", "step", "source", "loss", "bpb"]
COUNTS = ["params", "active_params", "vision_params", "embedding_params", "non_embedding_params"]
TOKENS = (["tokens"] + [f"tokens_{m}" for m in MODALITIES]
          + [f"bytes_{m}" for m in MODALITIES])  # Raw bytes trained on: compression-normalised laws.
TAIL = ["flops", "flops_formula", "wall_time", "final", "kind", "status", "status_reason", "routing"]


def _read_records(path: str) -> list[dict]:
  from mmscale.train.records import read_records
  return read_records(path)


def _torn_tail(path: str) -> bool:
  with open(path, "rb") as f:
    f.seek(0, os.SEEK_END)
    if f.tell() == 0:
      return False
    f.seek(-1, os.SEEK_END)
    return f.read(1) != b"\n"


def run_rows(root: str, run_id: str) -> list[dict]:
  spec = registry.read_spec(root, run_id)
  path = os.path.join(registry.run_dir(root, run_id), contract.RECORDS_FILE)
  if not os.path.exists(path):
    return []
  if _torn_tail(path):
    logging.warning("%s: ignoring a torn last line (a write cut short by a kill)", path)
  evals = {}
  for i, r in enumerate(_read_records(path)):
    if not isinstance(r, dict) or not isinstance(r.get("step"), int):  # A hand-edited or foreign file.
      raise UserError(f"{path}: record {i + 1} has no integer 'step' (not a records file mmscale wrote)")
    if r.get("kind") == "eval":
      evals[r["step"]] = r  # A step redone after a resume replaces the earlier copy.
  summary = registry.summary(root, run_id) or {}
  status = registry.status(root, run_id)
  done = status == contract.DONE
  reason = summary.get("reason", "") if status == contract.DIVERGED else ""
  last = max(evals) if evals else None
  rows = []
  for step in sorted(evals):
    r = evals[step]
    by_mod, bytes_mod = r.get("tokens_by_modality", {}), r.get("bytes_by_modality", {})
    base = {"run_id": run_id, "step": step, **{k: r.get(k, "") for k in COUNTS},
            "tokens": r.get("tokens", ""), **{f"tokens_{m}": by_mod.get(m, 0) for m in MODALITIES},
            **{f"bytes_{m}": bytes_mod.get(m, "") for m in MODALITIES},
            "flops": r.get("flops", ""), "flops_formula": r.get("flops_formula", ""),
            "wall_time": r.get("wall_time", ""), "final": bool(done and step == last and spec.kind != "trunk"),
            "kind": spec.kind, "status": status, "status_reason": reason,
            **{k: v for k, v in spec.tags.items()},
            "routing": json.dumps(r["routing"], separators=(",", ":")) if r.get("routing") else ""}
    for source, metrics in sorted(r.get("val", {}).items()):
      rows.append({**base, "source": source, **metrics})
  return rows


def _fmt(v):
  if isinstance(v, float):
    return repr(v) if math.isfinite(v) else str(v)  # Full precision: fits read these back.
  return v


def collect(root: str, out: str, only=None) -> int:
  """Writes the table; returns the number of rows. `only`: the run ids to include (default: all)."""
  run_ids = registry.list_runs(root)
  if only is not None:
    run_ids = [r for r in run_ids if r in set(only)]
  if not run_ids:
    raise UserError(f"--root={root}: holds no runs (no */{registry.RUN_FILE})")
  rows = []
  for run_id in run_ids:
    rows.extend(run_rows(root, run_id))
  if not rows:
    raise UserError(f"--root={root}: no run has written an eval record yet")
  tag_keys = []
  for run_id in run_ids:
    for k in registry.read_spec(root, run_id).tags:
      if k not in tag_keys:
        tag_keys.append(k)
  metric_keys = sorted({k for r in rows for k in r} - set(FIXED + COUNTS + TOKENS + TAIL + tag_keys))
  columns = FIXED + metric_keys + COUNTS + TOKENS + TAIL + [k for k in tag_keys if k not in TAIL]
  out_dir = os.path.dirname(os.path.abspath(out))
  tmp = os.path.join(out_dir, f".{os.path.basename(out)}.tmp.{os.getpid()}")
  try:
    with open(tmp, "w", newline="") as f:
      w = csv.DictWriter(f, fieldnames=columns, restval="")
      w.writeheader()
      for r in rows:
        w.writerow({k: _fmt(r.get(k, "")) for k in columns})
    os.replace(tmp, out)
  except OSError as e:
    raise UserError(f"--out={out}: cannot write the table ({e.strerror or e})") from None
  return len(rows)

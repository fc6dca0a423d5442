"""A fast stand-in for mmscale.train.loop.train with the same on-disk contract.

It keeps the trainer's promises that the sweep machinery relies on, without JAX: deterministic
float updates that depend on the schedule (so cool-down branches differ from trunks), checkpoints
at checkpoint_every / save_steps / the end / on SIGTERM (written to a temporary directory and
renamed, as Orbax does), resume from the latest checkpoint, branches from init_from at init_step,
records via mmscale.train.records, summary.json with status. Every start is appended to
<root>/starts.log and every resume (run id, step) to <root>/resumes.log, for the tests to count.
Env: FAKE_STEP_S (seconds per step), FAKE_FAIL (run name substring that raises), FAKE_DIVERGE (run
name substring whose loss turns NaN at its last step but one: summary "diverged", as the trainer),
FAKE_IMPORT_S (seconds this module takes to import, like JAX's), FAKE_SELF_TERM (run name substring
that dies of SIGTERM with the default action, as a run signalled before its handler exists).
"""

import hashlib
import json
import math
import os
import signal
import time

from mmscale.train import preemption
from mmscale.train import records as rec

time.sleep(float(os.environ.get("FAKE_IMPORT_S", "0")))


def _lr(t, step):
  lr = float(t.lr) * min(1.0, (step + 1) / max(1, t.warmup_steps))
  if t.schedule == "wsd":
    start = t.steps - math.ceil(t.cooldown_fraction * t.steps)
    if step >= start:
      lr *= 1 - (step - start + 1) / (t.steps - start + 1)
  return lr


def _noise(seed, step):
  h = hashlib.sha256(f"{seed}:{step}".encode()).digest()
  return int.from_bytes(h[:4], "little") / 2**32 - 0.5


def _save(ckdir, step, state):
  tmp = os.path.join(ckdir, f"{step}.tmp")
  os.makedirs(tmp, exist_ok=True)
  with open(os.path.join(tmp, "state.json"), "w") as f:
    json.dump(state, f)
  os.replace(tmp, os.path.join(ckdir, str(step))) if not os.path.exists(
      os.path.join(ckdir, str(step))) else None


def _latest(ckdir):
  steps = [int(n) for n in os.listdir(ckdir) if n.isdigit()] if os.path.isdir(ckdir) else []
  return max(steps) if steps else None


def _load(ckdir, step):
  with open(os.path.join(ckdir, str(step), "state.json")) as f:
    return json.load(f)


def train(config, workdir):
  t = config.train
  run_id = os.path.basename(os.path.normpath(workdir))
  root = os.path.dirname(os.path.normpath(workdir))
  rank = os.environ.get("MMSCALE_PROCESS_ID", os.environ.get("SLURM_PROCID", "0"))
  if rank != "0":  # A gang follower: rank 0 writes everything, as in the real trainer.
    with open(os.path.join(root, f"rank{rank}.log"), "a") as f:
      f.write(run_id + "\n")
    return {"status": "done"}
  with open(os.path.join(root, "starts.log"), "a") as f:
    f.write(run_id + "\n")
  if os.environ.get("FAKE_FAIL") and os.environ["FAKE_FAIL"] in run_id:
    raise RuntimeError("injected failure")
  if os.environ.get("FAKE_SELF_TERM") and os.environ["FAKE_SELF_TERM"] in run_id:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(60)
  if preemption.requested():  # Signalled while importing: nothing done, nothing to save.
    summary = {"run_id": run_id, "status": "preempted", "step": 0, "steps": t.steps}
    rec.write_json_atomic(os.path.join(workdir, "summary.json"), summary)
    return summary
  stop = {"flag": False}
  signal.signal(signal.SIGTERM, lambda s, f: stop.update(flag=True))
  ckdir = os.path.join(workdir, "checkpoints")
  os.makedirs(ckdir, exist_ok=True)
  latest = _latest(ckdir)
  if latest is not None:
    state = _load(ckdir, latest)
    with open(os.path.join(os.path.dirname(os.path.normpath(workdir)), "resumes.log"), "a") as f:
      f.write(f"{run_id} {latest}\n")
  elif t.init_from:
    state = _load(os.path.join(t.init_from, "checkpoints"), int(t.init_step))
  else:
    state = {"step": 0, "w": 3.0 + 0.01 * config.seed}
  step, w = state["step"], state["w"]
  path = os.path.join(workdir, "records.jsonl")
  rec.keep_records_until(path, step)
  delay = float(os.environ.get("FAKE_STEP_S", "0"))
  tps = int(config.data.batch_size) * int(config.data.seq_len)
  n = 1000 * int(config.model.width) // 16  # Parameters grow with width, and the loss falls with
  size_term = 20.0 / n ** 0.5  # them, so that a scaling law can be fitted to the fake records.
  evals = {round(t.steps * (i + 1) / t.eval_points) for i in range(t.eval_points)}
  saves = set(t.save_steps) | {t.steps}
  status = "running"
  diverge = os.environ.get("FAKE_DIVERGE") and os.environ["FAKE_DIVERGE"] in run_id
  while step < t.steps:
    w = w - _lr(t, step) * 0.05 * (w - 1.0) + 1e-3 * _noise(config.seed, step)
    step += 1
    if diverge and step == t.steps - 1:
      rec.append_record(path, {"kind": "train", "run_id": run_id, "step": step, "loss": math.nan})
      summary = {"run_id": run_id, "status": "diverged", "step": step, "steps": t.steps,
                 "diverged_step": step, "reason": f"training loss is nan at step {step}"}
      rec.write_json_atomic(os.path.join(workdir, "summary.json"), summary)
      return summary
    time.sleep(delay)
    rec.append_record(path, {"kind": "train", "run_id": run_id, "step": step, "loss": w})
    if step in evals:
      rec.append_record(path, {
          "kind": "eval", "run_id": run_id, "step": step, "tokens": step * tps,
          "tokens_by_modality": {"text": step * tps // 2, "image": step * tps // 2, "audio": 0},
          "flops": 6.0 * n * step * tps, "flops_formula": "6N", "params": n,
          "active_params": n, "vision_params": 0, "embedding_params": 100,
          "non_embedding_params": n - 100, "wall_time": 0.0, "lr": _lr(t, step - 1),
          "val": {"text": {"loss": w + size_term, "bpb": (w + size_term) / math.log(2)},
                  "caption": {"loss": w + size_term + 0.5,
                              "bpb": (w + size_term + 0.5) / math.log(2),
                              "loss_image": 2 * w}}})
    every = int(t.checkpoint_every)
    if step in saves or (every and step % every == 0) or stop["flag"]:
      _save(ckdir, step, {"step": step, "w": w})
    if stop["flag"] and step < t.steps:
      status = "preempted"
      break
  if status == "running":
    status = "done"
  summary = {"run_id": run_id, "status": status, "step": step, "steps": t.steps}
  rec.write_json_atomic(os.path.join(workdir, "summary.json"), summary)
  return summary

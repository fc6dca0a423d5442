"""One training run: the train/eval loop, readable top to bottom (the Trainer builds what it runs).

Everything a run leaves behind lives in its workdir: config.json (the resolved config),
records.jsonl (train and eval records), summary.json (final values and status) and checkpoints/.
A run that finds a checkpoint in its workdir resumes from it and produces the same records as one
that never stopped: params, optimizer state and the data-iterator state all come back, and records
written after the checkpoint are dropped before they are written again.
"""

import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from mmscale import config as config_lib
from mmscale import contract
from mmscale import flops as flops_lib
from mmscale.contract import MODALITIES
from mmscale.train import preemption
from mmscale.train import records as rec
from mmscale.train.cadence import Cadence
from mmscale.train.checkpoint import RunCheckpoints
from mmscale.train.metrics import MetricWriter
from mmscale.train.progress import Progress, format_eval
from mmscale.train.trainer import Trainer
from mmscale.train.workdir import prepare_workdir


def _read(path) -> list[dict]:
  return rec.read_records(path) if os.path.exists(path) else []


@jax.jit
def _all_finite(tree):
  """Whether every float leaf of `tree` is finite: one reduction, checked before each save."""
  leaves = [x for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.inexact)]
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves])) if leaves else True


def _first_non_finite(host: list, last_step: int):
  """(step, reason) of the first step whose loss or gradient norm is NaN or infinite, else None."""
  for i, m_ in enumerate(host):
    for key, name in (("loss", "training loss"), ("grad_norm", "gradient norm")):
      value = float(m_[key])
      if not np.isfinite(value):
        step = last_step - len(host) + 1 + i
        return step, f"{name} is {value} at step {step}"
  return None


def _stopped_at_start(config, workdir) -> dict:
  """The summary of a run signalled before it built anything: preempted, nothing new to save."""
  path = os.path.join(workdir, contract.SUMMARY_FILE)
  previous = {}
  try:
    with open(path, encoding="utf-8") as f:
      previous = json.load(f)
  except (OSError, ValueError):  # None yet, or cut short: this summary replaces it.
    pass
  summary = {"step": 0, "tokens": 0, "train_time": 0.0, **previous,
             "run_id": config_lib.run_id(config), "status": contract.PREEMPTED,
             "steps": int(config.train.steps)}
  if jax.process_index() == 0:
    rec.write_json_atomic(path, summary)
  return summary


def train(config, workdir) -> dict:
  """Trains (or resumes, or finishes) one run; returns its summary.

  SIGTERM/SIGUSR1 at any moment (see preemption.py) ends it with status "preempted" after saving
  what it has; a non-finite loss or gradient norm ends it with status "diverged", before any save
  of the diverged state, so the checkpoints on disk all come from before the divergence.
  """
  with preemption.guard():
    return _train(config, workdir)


def _train(config, workdir) -> dict:
  config = config_lib.resolve(config)
  workdir = prepare_workdir(config, workdir, primary=jax.process_index() == 0)
  if preemption.requested():  # Signalled while starting up: stop before compiling anything.
    return _stopped_at_start(config, workdir)
  run = _Run(config, workdir)
  run.initial_eval()
  return run.finish(run.loop())


class _Run:
  """One call of train(): the Trainer, the checkpoints and records, and the loop's own state."""

  def __init__(self, config, workdir):
    self.config, self.workdir = config, workdir
    self.t = Trainer(config, workdir)
    self.steps = int(config.train.steps)
    self.cadence = Cadence.of(config.train)
    self.ckpt = RunCheckpoints(os.path.join(workdir, contract.CHECKPOINTS_DIR),
                               config.train.keep_checkpoints, save_steps=config.train.save_steps)
    self.records_path = os.path.join(workdir, contract.RECORDS_FILE)
    self.primary = jax.process_index() == 0
    self.step, self.params, self.opt_state, self.meta = self._restore()
    if self.primary:
      rec.keep_records_until(self.records_path, self.step)
    self.writer = MetricWriter(self.t.stages.run, workdir, self.t.run_id, self.step, self.primary,
                               logged_config=config.to_dict())
    self.last_loss = float("nan")
    self.diverged = None  # (step, reason) of the first non-finite loss or gradient norm read back.
    self.pending = []  # Metrics of the steps not yet read back.
    self.deferred = None  # A train record whose read-back waits until the next step is queued.

  def _restore(self):
    """(step, params, opt_state, meta): from this run's latest checkpoint, else (a cool-down
    branch) from its trunk's checkpoint at the branch point, else the Trainer's initial state."""
    t, train = self.t, self.config.train
    state = {"params": t.params, "opt_state": t.opt_state}
    abstract = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), state)
    meta = {"step": 0, "tokens": 0, "tokens_by_modality": {m: 0 for m in MODALITIES},
            "bytes_by_modality": {m: 0.0 for m in MODALITIES}, "train_time": 0.0}
    restored = self.ckpt.restore(abstract)
    if restored is None and train.init_from:
      trunk = RunCheckpoints(os.path.join(os.fspath(train.init_from), contract.CHECKPOINTS_DIR),
                             read_only=True)
      restored = trunk.restore(abstract, step=int(train.init_step))
      trunk.close()
    if restored is None:
      return 0, state["params"], state["opt_state"], meta
    step, state, data_state, meta = restored
    t.data.set_state(data_state)
    logging.info("resuming %s from step %d", t.run_id, step)
    return step, state["params"], state["opt_state"], meta

  # -- records ----------------------------------------------------------------------------------

  def append(self, record: dict) -> None:
    """records.jsonl (the source of truth) and the metric writers (TensorBoard, W&B)."""
    rec.append_record(self.records_path, record)
    self.writer.write(record)

  def fixed_fields(self) -> dict:
    """What every eval record carries for fitting: tokens, FLOPs and parameter counts."""
    meta, tokens = self.meta, int(self.meta["tokens"])
    flops, formula = flops_lib.training_flops(self.config, tokens, meta["tokens_by_modality"])
    return {"run_id": self.t.run_id, "step": self.step, "tokens": tokens,
            "tokens_by_modality": dict(meta["tokens_by_modality"]),
            "bytes_by_modality": dict(meta["bytes_by_modality"]), "flops": flops,
            "flops_formula": formula, **self.t.counts}

  def initial_eval(self) -> None:
    """The step-0 eval record, once per run (not again on a resume, nor when signalled)."""
    if (self.step != 0 or preemption.requested()
        or any(r.get("kind") == "init_eval" for r in _read(self.records_path))):
      return
    self.t.params = self.params
    val, _ = self.t.evaluate()
    if self.primary:
      self.append({"kind": "init_eval", **self.fixed_fields(), "val": val})
      print(format_eval(0, val), file=sys.stderr, flush=True)

  def eval_record(self) -> None:
    self.t.params = self.params
    val, routing = self.t.evaluate()
    record = {"kind": "eval", **self.fixed_fields(), "val": val, "train_loss": self.last_loss,
              "lr": self.t.lr(self.step), "wall_time": self.meta["train_time"],
              "data_shares": self.t.data.realised()}
    if routing is not None:
      record["routing"] = contract.routing_record(routing)
    if self.primary:
      self.append(record)
    self.progress.eval(self.step, val)

  def read_back(self, until: int, metrics_list: list, write: bool = True) -> None:
    """Reads back the metrics of the steps up to `until` and writes its train record (`write`).

    The read-back waits for step `until` to finish, so wall_time marks its completion. A stop on a
    signal reads back without writing: a record at a step the schedule does not log would survive
    the resume and make the records differ from an uninterrupted run's.
    """
    meta = self.meta
    host = jax.device_get(metrics_list)  # One transfer for all of them, not one per scalar.
    if self.diverged is None:
      self.diverged = _first_non_finite(host, until)
    for m_ in host:
      meta["tokens"] += int(m_["tokens"])
      for m in MODALITIES:
        meta["tokens_by_modality"][m] += int(m_[f"tokens_{m}"])
        meta["bytes_by_modality"][m] += float(m_[f"raw_bytes_{m}"])
    meta["train_time"] = self.train_time0 + time.time() - self.started
    last = host[-1]
    self.last_loss = float(last["loss"])
    self.progress.update(until, meta["tokens"], self.last_loss)
    if self.primary and write:
      self.append({
          "kind": "train", "run_id": self.t.run_id, "step": until, "tokens": int(meta["tokens"]),
          "loss": self.last_loss, "grad_norm": float(last["grad_norm"]),
          "lr": self.t.lr(until), "wall_time": meta["train_time"]})

  # -- the loop ---------------------------------------------------------------------------------

  def loop(self) -> str:
    """Trains to the last step, a stop signal or a divergence; returns the status so far."""
    self.progress = Progress(self.steps, self.step, enabled=self.primary)
    self.started, self.train_time0 = time.time(), float(self.meta["train_time"])
    first_step = self.step
    with jax.set_mesh(self.t.mesh):
      while self.step < self.steps:
        if self.step == first_step and preemption.requested():
          return contract.PREEMPTED  # Signalled while building or evaluating: nothing new to save.
        metrics = self.train_step()
        if self.deferred is not None:
          # The previous log step's read-back, now that this step keeps the device busy: reading
          # it before dispatching would leave the device idle for the record and the next batch.
          self.read_back(*self.deferred)
          self.deferred = None
          if self.diverged:
            break
        step, stop = self.step, preemption.requested()  # Later signals save at the step's end.
        save, evaluate = self.cadence.due("save", step), self.cadence.due("eval", step)
        self.queue_read_back(metrics, now=save or evaluate or stop or step == self.steps,
                             stop=stop)
        if not self.diverged and (save or stop) and not bool(_all_finite(self.params)):
          # Finite metrics so far, yet the last update overflowed: not a state to save either.
          self.diverged = (step, f"parameters are not finite after step {step}")
        if self.diverged:
          break  # Before the eval and the save: nothing of the diverged state reaches the disk.
        if evaluate:
          self.eval_record()
        if save or stop:
          self.save()
        if stop and step < self.steps:
          return contract.PREEMPTED
    return "running"

  def train_step(self):
    """Dispatches the next update (asynchronously); returns its metrics, still on the device."""
    self.ckpt.raise_failed_save()  # A background save that failed (disk full) stops the run now.
    t = self.t
    batch = t.device_batch(next(t.data))
    self.params, self.opt_state, metrics = t.train_step(self.params, self.opt_state, batch,
                                                        t.lr_input(self.step + 1))
    self.step += 1
    return metrics

  def queue_read_back(self, metrics, *, now: bool, stop: bool) -> None:
    """Queues this step's metrics. At a log step (or a stop) they are read back `now` when an
    eval, a save, a stop or the end needs the counts (and every metric checked before a save);
    otherwise one step later, once the next update keeps the device busy."""
    self.pending.append(metrics)
    log = self.cadence.due("log", self.step)
    if not (log or stop):
      return
    if now:
      self.read_back(self.step, self.pending, write=log)
    else:
      self.deferred = (self.step, self.pending)
    self.pending = []

  def save(self) -> None:
    self.meta["step"] = self.step
    self.ckpt.save(self.step, {"params": self.params, "opt_state": self.opt_state},
                   self.t.data.get_state(), self.meta)

  # -- the end ----------------------------------------------------------------------------------

  def finish(self, status: str) -> dict:
    """Closes the writers and checkpoints and writes summary.json; returns the summary."""
    self.progress.close()
    self.writer.close()
    self.ckpt.close()
    if self.diverged:
      status = contract.DIVERGED
      logging.error("run %s diverged: %s; stopped at step %d; its checkpoints are all from before "
                    "it", self.t.run_id, self.diverged[1], self.step)
    if status == "running":
      status = contract.DONE
    summary = {"run_id": self.t.run_id, "status": status, "step": self.step, "steps": self.steps,
               "tokens": int(self.meta["tokens"]), "train_time": self.meta["train_time"],
               **self.t.counts}
    if self.diverged:
      summary.update(diverged_step=self.diverged[0], reason=self.diverged[1])
    if self.primary:
      written = _read(self.records_path)
      final = [r for r in written if r.get("kind") == "eval"]
      if final:
        summary.update(final_val=final[-1]["val"], flops=final[-1]["flops"],
                       flops_formula=final[-1]["flops_formula"])
      init = [r for r in written if r.get("kind") == "init_eval"]
      if init:
        summary["initial_val"] = init[0]["val"]
      rec.write_json_atomic(os.path.join(self.workdir, contract.SUMMARY_FILE), summary)
    return summary

"""One training run: mesh → model → optimizer → data → train/eval loop → records.

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
from flax import nnx

from mmscale import config as config_lib
from mmscale import flops as flops_lib
from mmscale import contract
from mmscale import parallel
from mmscale import models
from mmscale import stages
from mmscale.contract import MODALITIES
from mmscale.data import pipeline
from mmscale.train import preemption
from mmscale.train import records as rec
from mmscale.train.checkpoint import RunCheckpoints
from mmscale.train.metrics import MetricWriter
from mmscale.train.optimizer import make_optimizer
from mmscale.train.progress import Progress, format_eval
from mmscale.train.schedule import make_schedule
from mmscale.train.step import make_steps
from mmscale.train.workdir import prepare_workdir


def eval_steps(train_cfg) -> list[int]:
  """Steps after which to evaluate: `eval_points` evenly spaced (or every `eval_every`), the last included."""
  steps = int(train_cfg.steps)
  if train_cfg.eval_every:
    points = set(range(int(train_cfg.eval_every), steps + 1, int(train_cfg.eval_every)))
  else:
    n = int(train_cfg.eval_points)
    points = {max(1, int(round(k * steps / n))) for k in range(1, n + 1)}
  points.add(steps)
  return sorted(p for p in points if p > int(train_cfg.init_step))


def _summarise(sums: dict, media_objective: bool) -> dict:
  """Per-source validation values from summed metrics: nats per target and bits per raw byte."""
  out = {}
  for m in MODALITIES if media_objective else ("text",):
    n, nll, nbytes = float(sums.get(f"count_{m}", 0)), float(sums.get(f"nll_{m}", 0)), float(sums.get(f"bytes_{m}", 0))
    if n > 0:
      out[f"loss_{m}"] = nll / n
      out[f"bpb_{m}"] = rec.bits_per_byte(nll, nbytes)
      out[f"targets_{m}"] = int(n)
  out["loss"] = out.get("loss_text", float("nan"))
  out["bpb"] = out.get("bpb_text", float("nan"))
  return out


def _codebook_sample(config, process_index, process_count, per_code: int = 4, max_batches: int = 64):
  """Training batches for fitting the VQ codebook: ~`per_code` media patches per code.

  Drawn from a separate iterator with the run's seed, so the codebook is a pure function of the
  config and the training iterator itself is not advanced.
  """
  it = pipeline.make_train_iterator(config, process_index, process_count)
  want, have, batches = per_code * int(config.model.vq_codebook_size), 0, []
  while have < want and len(batches) < max_batches:
    b = next(it)
    batches.append(b)
    have += int(np.sum((b["modality"] > 0) & (b["segment_ids"] > 0)))
  return batches


class Trainer:
  """Holds the compiled steps, the state and the data of one run."""

  def __init__(self, config, workdir):
    self.config = config
    self.workdir = workdir
    self.run_id = config_lib.run_id(config)
    self.mesh = parallel.make_mesh(config.mesh, stages.batch_size(config))
    self.batch_sharding = parallel.batch_sharding(self.mesh)
    pi, pc = jax.process_index(), jax.process_count()
    self.data = pipeline.make_train_iterator(config, pi, pc)
    self.eval_data = {s: pipeline.make_eval_batches(config, s, pi, pc) for s in pipeline.stream_names(config)}
    with jax.set_mesh(self.mesh):
      sample = _codebook_sample(config, pi, pc) if config.model.image_loss == "vq" else None
      model = stages.build_model(config, nnx.Rngs(config.seed), sample_batches=sample)
      parallel.shard_model(model, self.mesh)
      graphdef, params, rest = nnx.split(model, nnx.Param, ...)
      labels = models.param_groups(params) if config.model.fusion == "late" else None
      self.tx = make_optimizer(config, labels)
      self.params = params
      shardings = parallel.opt_state_shardings(self.tx, params, self.mesh)
      self.opt_state = jax.jit(self.tx.init, out_shardings=shardings)(params)
      train_step, eval_step = make_steps(graphdef, rest, self.tx, config)
      self.train_step = jax.jit(train_step, donate_argnums=(0, 1))
      self.eval_step = jax.jit(eval_step)
    self.counts = flops_lib.param_counts(config)
    self.schedule = make_schedule(config.train)
    # Every step's learning rate in one compiled call: evaluating the optax schedule eagerly at each
    # record would dispatch (and, the first time in a process, compile) a dozen tiny ops.
    n = max(int(config.train.steps), 1)
    self._lrs = np.asarray(jax.jit(jax.vmap(self.schedule))(np.arange(n, dtype=np.int32)), np.float32)

  def lr(self, step: int) -> float:
    """The learning rate the optimizer used for `step` (1-based: the update that produced it)."""
    return float(self._lrs[step - 1])

  def lr_input(self, step: int) -> np.float32:
    """The train step's `lr` argument for the update that produces `step` (1-based)."""
    return self._lrs[step - 1]

  def device_batch(self, batch: dict) -> dict:
    if jax.process_count() == 1:  # One transfer for the whole batch: the cheapest host path.
      return jax.device_put(batch, self.batch_sharding)
    return {k: jax.make_array_from_process_local_data(self.batch_sharding, np.asarray(v))
            for k, v in batch.items()}

  def evaluate(self) -> tuple[dict, dict]:
    val, routing = {}, None
    with jax.set_mesh(self.mesh):
      for stream, batches in self.eval_data.items():
        sums = {}
        for b in batches:
          m = self.eval_step(self.params, self.device_batch(b))
          for k, v in m.items():
            sums[k] = sums.get(k, 0) + np.asarray(v, dtype=np.float64)
        val[stream] = _summarise(sums, self.config.model.image_loss != "none")
        if "route_counts" in sums:
          routing = (routing if routing is not None else 0) + sums["route_counts"]
    return val, routing


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
  path = os.path.join(workdir, "summary.json")
  previous = {}
  try:
    with open(path, encoding="utf-8") as f:
      previous = json.load(f)
  except (OSError, ValueError):  # None yet, or cut short: this summary replaces it.
    pass
  summary = {"step": 0, "tokens": 0, "train_time": 0.0, **previous,
             "run_id": config_lib.run_id(config), "status": "preempted",
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
  t = Trainer(config, workdir)
  steps = int(config.train.steps)
  ckpt = RunCheckpoints(os.path.join(workdir, "checkpoints"), config.train.keep_checkpoints,
                        save_steps=config.train.save_steps)
  records_path = os.path.join(workdir, "records.jsonl")
  primary = jax.process_index() == 0

  state = {"params": t.params, "opt_state": t.opt_state}
  abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), state)
  meta = {"step": 0, "tokens": 0, "tokens_by_modality": {m: 0 for m in MODALITIES},
          "bytes_by_modality": {m: 0.0 for m in MODALITIES}, "train_time": 0.0}
  restored = ckpt.restore(abstract)
  if restored is None and config.train.init_from:
    # A cool-down branch: start from the trunk's checkpoint at the branch point.
    trunk = RunCheckpoints(os.path.join(os.fspath(config.train.init_from), "checkpoints"), read_only=True)
    restored = trunk.restore(abstract, step=int(config.train.init_step))
    trunk.close()
  if restored is not None:
    step, state, data_state, meta = restored
    t.data.set_state(data_state)
    logging.info("resuming %s from step %d", t.run_id, step)
  else:
    step = 0
  if primary:
    rec.keep_records_until(records_path, step)
  writer = MetricWriter(config, workdir, t.run_id, step, primary)

  def append(record: dict) -> None:
    """records.jsonl (the source of truth) and the metric writers (TensorBoard, W&B)."""
    rec.append_record(records_path, record)
    writer.write(record)
  params, opt_state = state["params"], state["opt_state"]

  def fixed_fields() -> dict:
    tokens = int(meta["tokens"])
    flops, formula = flops_lib.training_flops(config, tokens, meta["tokens_by_modality"])
    return {"run_id": t.run_id, "step": step, "tokens": tokens,
            "tokens_by_modality": dict(meta["tokens_by_modality"]),
            "bytes_by_modality": dict(meta["bytes_by_modality"]), "flops": flops,
            "flops_formula": formula, **t.counts}

  if (step == 0 and not preemption.requested()
      and not any(r.get("kind") == "init_eval" for r in _read(records_path))):
    t.params = params
    val, _ = t.evaluate()
    if primary:
      append({"kind": "init_eval", **fixed_fields(), "val": val})
    if primary:
      print(format_eval(0, val), file=sys.stderr, flush=True)

  evals = set(eval_steps(config.train))
  saves = set(config.train.save_steps) | ({steps} if steps else set())
  every = int(config.train.checkpoint_every)
  status, last_loss = "running", float("nan")
  diverged = None  # (step, reason) of the first non-finite loss or gradient norm read back.
  progress = Progress(steps, step, enabled=primary)
  started = time.time()
  train_time0 = float(meta["train_time"])
  pending = []  # Metrics of the steps not yet read back.
  deferred = None  # A train record whose read-back waits until the next step is queued.

  def log(until: int, metrics_list: list, write: bool = True) -> None:
    """Reads back the metrics of the steps up to `until` and writes its train record (`write`).

    The read-back waits for step `until` to finish, so wall_time marks its completion. A stop on a
    signal reads back without writing: a record at a step the schedule does not log would survive
    the resume and make the records differ from an uninterrupted run's.
    """
    nonlocal last_loss, diverged
    host = jax.device_get(metrics_list)  # One transfer for all of them, not one per scalar.
    if diverged is None:
      diverged = _first_non_finite(host, until)
    for m_ in host:
      meta["tokens"] += int(m_["tokens"])
      for m in MODALITIES:
        meta["tokens_by_modality"][m] += int(m_[f"tokens_{m}"])
        meta["bytes_by_modality"][m] += float(m_[f"raw_bytes_{m}"])
    meta["train_time"] = train_time0 + time.time() - started
    last = host[-1]
    last_loss = float(last["loss"])
    progress.update(until, meta["tokens"], last_loss)
    if primary and write:
      append({
          "kind": "train", "run_id": t.run_id, "step": until, "tokens": int(meta["tokens"]),
          "loss": last_loss, "grad_norm": float(last["grad_norm"]),
          "lr": t.lr(until), "wall_time": meta["train_time"]})

  first_step = step
  with jax.set_mesh(t.mesh):
    while step < steps:
      if step == first_step and preemption.requested():  # Signalled while building or evaluating:
        status = "preempted"  # nothing new to save. Later signals save at the end of their step.
        break
      ckpt.raise_failed_save()  # A background save that failed (disk full) stops the run now.
      batch = t.device_batch(next(t.data))
      params, opt_state, metrics = t.train_step(params, opt_state, batch, t.lr_input(step + 1))
      step += 1
      if deferred is not None:
        # The previous log step's read-back, now that this step keeps the device busy: reading it
        # before dispatching would leave the device idle for the record and the next batch.
        log(*deferred)
        deferred = None
        if diverged:
          break
      pending.append(metrics)
      save = step in saves or bool(every and step % every == 0)
      scheduled = save or step in evals
      stop = preemption.requested()
      if step % config.train.log_every == 0 or scheduled or stop or step == steps:
        if scheduled or stop or step == steps:
          # Evals, saves and the end need the counts now (and every metric checked before a save).
          log(step, pending, write=step % config.train.log_every == 0 or scheduled or step == steps)
        else:
          deferred = (step, pending)
        pending = []
      if not diverged and (save or stop) and not bool(_all_finite(params)):
        # Finite metrics so far, yet the last update overflowed: not a state to save either.
        diverged = (step, f"parameters are not finite after step {step}")
      if diverged:
        break  # Before the eval and the save: nothing of the diverged state reaches the disk.
      if step in evals:
        t.params = params
        val, routing = t.evaluate()
        record = {"kind": "eval", **fixed_fields(), "val": val, "train_loss": last_loss,
                  "lr": t.lr(step), "wall_time": meta["train_time"],
                  "data_shares": t.data.realised()}
        if routing is not None:
          record["routing"] = contract.routing_record(routing)
        if primary:
          append(record)
        progress.eval(step, val)
      if save or stop:
        meta["step"] = step
        ckpt.save(step, {"params": params, "opt_state": opt_state}, t.data.get_state(), meta)
      if stop and step < steps:
        status = "preempted"
        break
  progress.close()
  writer.close()
  ckpt.close()
  if diverged:
    status = "diverged"
    logging.error("run %s diverged: %s; stopped at step %d; its checkpoints are all from before it",
                  t.run_id, diverged[1], step)
  if status == "running":
    status = "done"
  summary = {"run_id": t.run_id, "status": status, "step": step, "steps": steps,
             "tokens": int(meta["tokens"]), "train_time": meta["train_time"], **t.counts}
  if diverged:
    summary.update(diverged_step=diverged[0], reason=diverged[1])
  if primary:
    written = _read(records_path)
    final = [r for r in written if r.get("kind") == "eval"]
    if final:
      summary.update(final_val=final[-1]["val"], flops=final[-1]["flops"],
                     flops_formula=final[-1]["flops_formula"])
    init = [r for r in written if r.get("kind") == "init_eval"]
    if init:
      summary["initial_val"] = init[0]["val"]
    rec.write_json_atomic(os.path.join(workdir, "summary.json"), summary)
  return summary

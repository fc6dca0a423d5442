"""The Trainer of one run: mesh → model → optimizer → data → compiled steps, and evaluation.

It builds everything a run computes with and holds the state the loop advances (mmscale/train/
loop.py drives it). Each stage gets its view from mmscale/stages.py: the model config.model and
its inputs, the mesh config.mesh and the batch size, the data config.data and the seed, the
optimizer config.train and the param groups.
"""

import jax
import numpy as np
from flax import nnx

from mmscale import config as config_lib
from mmscale import flops as flops_lib
from mmscale import models
from mmscale import parallel
from mmscale import stages
from mmscale.contract import MODALITIES
from mmscale.data import pipeline
from mmscale.train import records as rec
from mmscale.train.optimizer import make_optimizer
from mmscale.train.schedule import make_schedule
from mmscale.train.step import make_steps


def _summarise(sums: dict, media_objective: bool) -> dict:
  """Per-source validation values from summed metrics: nats per target and bits per raw byte."""
  out = {}
  for m in MODALITIES if media_objective else ("text",):
    n, nll, nbytes = (float(sums.get(f"{k}_{m}", 0)) for k in ("count", "nll", "bytes"))
    if n > 0:
      out[f"loss_{m}"] = nll / n
      out[f"bpb_{m}"] = rec.bits_per_byte(nll, nbytes)
      out[f"targets_{m}"] = int(n)
  out["loss"] = out.get("loss_text", float("nan"))
  out["bpb"] = out.get("bpb_text", float("nan"))
  return out


def _codebook_sample(data, seed: int, codebook_size: int, process_index, process_count,
                     per_code: int = 4, max_batches: int = 64):
  """Training batches for fitting the VQ codebook: ~`per_code` media patches per code.

  Drawn from a separate iterator of config.data `data` with the run's seed, so the codebook is a
  pure function of the config and the training iterator itself is not advanced.
  """
  it = pipeline.train_iterator(data, seed, process_index, process_count)
  want, have, batches = per_code * int(codebook_size), 0, []
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
    s = stages.split(config)
    self.stages = s
    self.mesh = parallel.make_mesh(s.mesh, stages.batch_size(config))
    self.batch_sharding = parallel.batch_sharding(self.mesh)
    pi, pc = jax.process_index(), jax.process_count()
    self.data = pipeline.train_iterator(s.data, s.seed, pi, pc)
    self.eval_data = {name: pipeline.eval_batches(s.data, name, int(s.train.eval_batches), pi, pc)
                      for name in pipeline.stream_names(s.data)}
    with jax.set_mesh(self.mesh):
      sample = (_codebook_sample(s.data, s.seed, s.model.vq_codebook_size, pi, pc)
                if s.model.image_loss == "vq" else None)
      model_cfg = s.model
      model = models.NMM(model_cfg, s.model_inputs, nnx.Rngs(s.seed), sample_batches=sample)
      parallel.shard_model(model, self.mesh)
      graphdef, params, rest = nnx.split(model, nnx.Param, ...)
      self.tx = make_optimizer(s.train, stages.param_labels(model_cfg, params),
                               model_cfg.encoder.lr_factor)
      self.params = params
      shardings = parallel.opt_state_shardings(self.tx, params, self.mesh)
      self.opt_state = jax.jit(self.tx.init, out_shardings=shardings)(params)
      train_step, eval_step = make_steps(graphdef, rest, self.tx, model_cfg)
      self.train_step = jax.jit(train_step, donate_argnums=(0, 1))
      self.eval_step = jax.jit(eval_step)
    self.counts = flops_lib.param_counts(config)
    self.schedule = make_schedule(s.train)
    # Every step's learning rate in one compiled call: evaluating the optax schedule eagerly at each
    # record would dispatch (and, the first time in a process, compile) a dozen tiny ops.
    n = max(int(s.train.steps), 1)
    self._lrs = np.asarray(jax.jit(jax.vmap(self.schedule))(np.arange(n, dtype=np.int32)),
                           np.float32)

  def lr(self, step: int) -> float:
    """The learning rate the optimizer used for `step` (1-based: the update that produced it)."""
    return float(self.lr_input(step))

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
        val[stream] = _summarise(sums, self.stages.model.image_loss != "none")
        if "route_counts" in sums:
          routing = (routing if routing is not None else 0) + sums["route_counts"]
    return val, routing

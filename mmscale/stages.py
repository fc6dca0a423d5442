"""The boundary between the run config and the stages: frozen per-stage configs.

Users write one ml_collections ConfigDict (`get_config(arg)`, `--config.a.b=` overrides), and
mmscale.config validates and resolves it. Past that point no stage gets the whole run config:
the trainer, the FLOPs count and the sweep's plan cut it here, and each stage receives its own
section, frozen, plus what it needs from another section as explicit, named inputs:

  model      config.model + ModelInputs (vocab size, seq_len, patch sizes, compute dtype, seed);
             the loss and the train step get config.model too
  mesh       config.mesh + the global batch size + the MoE expert count (parallel.make_mesh)
  data       config.data + the seed, the process index and count (data.pipeline.train_iterator)
             and, for evaluation, train.eval_batches (data.pipeline.eval_batches)
  optimizer  config.train + the param-group labels and model.encoder.lr_factor (a fusion with
             encoder towers; param_labels() below; train.optimizer.make_optimizer)
  metrics    config.run + the workdir, the run id and the resolved config as a dict for W&B
             (train.metrics.MetricWriter)
  sweep      not part of any run's config: the study's grid (get_grid, or config.sweep, which
             the sweep removes from the base config) as one frozen, checked Grid
             (mmscale/sweep/grid_config.py, which says why it is a dataclass); the planner gets
             it with the base config, a worker the resolved configs of its runs

Why ml_collections.FrozenConfigDict for the sections rather than frozen dataclasses: a section
keeps the field names, nesting and `.get` of the config users write and of the keys errors name
(`model.moe.experts`), and its fields stay defined once, in the stage's `defaults()`, instead of
in a defaults function and a dataclass both. Freezing makes a stage's config immutable (setting
a field raises) and hashable. The inputs a stage takes from elsewhere are a few fixed, typed
values, so they are a small frozen dataclass (ModelInputs).
"""

import dataclasses

import ml_collections

from mmscale import config as config_lib
from mmscale.models import config as model_config
from mmscale.models import fusion
from mmscale.models import param_groups
from mmscale.models.nmm import NMM

Frozen = ml_collections.FrozenConfigDict


@dataclasses.dataclass(frozen=True)
class Stages:
  """A resolved run config cut into the sections of its stages."""
  model: Frozen
  model_inputs: model_config.ModelInputs
  data: Frozen
  train: Frozen
  mesh: Frozen
  run: Frozen
  seed: int


def _section(config, name) -> Frozen:
  return Frozen(config[name] if name in config else {})


def model_inputs(config, vocab_size: int | None = None) -> model_config.ModelInputs:
  """The model's inputs from outside config.model. vocab_size: None = resolve it from the config
  (mmscale.config.vocab_size: model.vocab_size, else the tokenizer's)."""
  d = config.data
  train = config.get("train", None) or {}
  return model_config.ModelInputs(
      vocab_size=config_lib.vocab_size(config) if vocab_size is None else int(vocab_size),
      seq_len=int(d.seq_len), patch_dim=int(d.patch_dim),
      patches_per_image=(int(d.image_size) // int(d.patch_size)) ** 2,
      dtype=str(train.get("dtype", "float32")), seed=int(config.get("seed", 0)))


def model_stage(config, vocab_size: int | None = None):
  """(frozen config.model, ModelInputs): everything the model is built from."""
  return Frozen(config.model), model_inputs(config, vocab_size)


def model_dims(config, vocab_size: int | None = None) -> model_config.Dims:
  return model_config.dims(*model_stage(config, vocab_size))


def build_model(config, rngs, sample_batches=None, vocab_size: int | None = None) -> NMM:
  """The model of a run config. sample_batches: training batches (VQ codebook fit)."""
  model, inputs = model_stage(config, vocab_size)
  return NMM(model, inputs, rngs, sample_batches=sample_batches)


def param_labels(model: Frozen, params):
  """The optimizer's parameter groups: "encoder"/"decoder" labels for late fusion, else None."""
  return param_groups(params) if fusion.has_encoder(model.fusion) else None


def experts(config) -> int | None:
  """The MoE expert count the mesh must divide; None for a model without routed experts."""
  model = config.get("model", None)
  return int(model.moe.experts) if model is not None and model.get("ffn") == "moe" else None


def batch_size(config) -> int | None:
  return int(config.data.batch_size) if "data" in config and "batch_size" in config.data else None


def split(config, vocab_size: int | None = None) -> Stages:
  """All the stage configs of a (resolved) run config."""
  model, inputs = model_stage(config, vocab_size)
  return Stages(model=model, model_inputs=inputs, data=_section(config, "data"),
                train=_section(config, "train"), mesh=_section(config, "mesh"),
                run=_section(config, "run"), seed=int(config.get("seed", 0)))

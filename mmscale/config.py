"""The base config and its validation.

Every stage owns the defaults and the checks of its own sub-config (`config.model` in
mmscale/models/config.py, `config.data` in mmscale/data/config.py, `config.mesh` in
mmscale/parallel.py, `config.train` here); this file assembles them, so a study file starts from
`base_config()` and changes only what it studies. Validation runs before any work starts and turns
the first bad value into a one-line `ConfigError` naming the key, the value and what is allowed.
"""

import fnmatch
import functools
import hashlib
import json
import math
import numbers
import os
import re

import ml_collections

from mmscale import validation as check
from mmscale.errors import ConfigError
from mmscale.train import schedule


def train_defaults() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.tokens = 0  # Total training tokens (all non-pad positions); 0 means use `steps`.
  c.steps = 100  # Overwritten from `tokens` by resolve() when tokens > 0.
  c.lr = 3e-3
  c.warmup_steps = 10
  c.schedule = "wsd"  # warm-up -> constant -> cool-down (Hägele et al. 2024; Shukor et al. 2025).
  c.cooldown_fraction = 0.2
  c.cooldown_shape = "inv_sqrt"
  c.b1 = 0.9
  c.b2 = 0.95
  c.eps = 1e-8
  c.weight_decay = 1e-4
  c.clip_norm = 1.0
  c.eval_every = 0  # Steps between evals; 0 = use eval_points.
  c.eval_points = 4  # Number of evals, spaced evenly in tokens (the last one at the final step).
  c.eval_batches = 4  # Held-out batches per validation stream.
  c.log_every = 10
  c.checkpoint_every = 0  # Steps; 0 = only on preemption, at save_steps and at the end.
  c.keep_checkpoints = 2
  c.save_steps = ()  # Extra steps whose checkpoints are kept (trunk points for cool-down branches).
  c.init_from = ""  # A trunk's workdir: a cool-down branch starts from its checkpoint...
  c.init_step = 0  # ...at this step, and keeps the trunk's step count, schedule and data order.
  c.dtype = "float32"  # Compute dtype of the model (params stay float32).
  return c


def base_config() -> ml_collections.ConfigDict:
  # Imported here so that stages can import mmscale.config without import cycles.
  from mmscale import parallel
  from mmscale.data import config as data_config
  from mmscale.models import config as model_config

  c = ml_collections.ConfigDict()
  c.seed = 0
  c.model = model_config.defaults()
  c.data = data_config.defaults()
  c.train = train_defaults()
  c.mesh = parallel.defaults()
  c.run = ml_collections.ConfigDict({"name": "run", "tags": ml_collections.ConfigDict()})
  # Metric writers (mmscale/train/metrics.py): presentation only, they never change the model.
  c.run.tensorboard = True  # TensorBoard event files in the run's workdir.
  c.run.wandb = ""  # A Weights & Biases project name; "" = no W&B.
  c.run.wandb_mode = "offline"  # "offline" (sync later with `wandb sync`) or "online".
  return c


def validate_train(config) -> None:
  t = config.train
  check.integer("train.tokens", int(t.tokens) if float(t.tokens).is_integer() else t.tokens, 0)
  if not t.tokens:
    check.integer("train.steps", t.steps)
  check.number("train.lr", t.lr)
  check.integer("train.warmup_steps", t.warmup_steps, 0)
  check.choice("train.schedule", t.schedule, schedule.SCHEDULES)
  check.choice("train.cooldown_shape", t.cooldown_shape, schedule.COOLDOWNS)
  check.unit_interval("train.cooldown_fraction", t.cooldown_fraction)
  for key in ("b1", "b2"):
    check.unit_interval(f"train.{key}", t[key])
  check.number("train.eps", t.eps)
  if not (isinstance(t.weight_decay, numbers.Real) and t.weight_decay >= 0):
    raise ConfigError("train.weight_decay", t.weight_decay, "must be a number >= 0")
  check.number("train.clip_norm", t.clip_norm)
  check.integer("train.eval_every", t.eval_every, 0)
  check.integer("train.eval_points", t.eval_points)
  check.integer("train.eval_batches", t.eval_batches)
  check.integer("train.log_every", t.log_every)
  check.integer("train.checkpoint_every", t.checkpoint_every, 0)
  check.integer("train.keep_checkpoints", t.keep_checkpoints)
  for s in t.save_steps:
    check.integer("train.save_steps", s)
  check.one_of("train.dtype", t.dtype, ("float32", "bfloat16"))
  if t.init_from and not t.init_step:
    raise ConfigError("train.init_step", t.init_step, "must be > 0 when train.init_from is set")


def validate(config) -> None:
  """Checks every value of a full config; raises ConfigError on the first bad one."""
  from mmscale import parallel
  from mmscale.data import config as data_config
  from mmscale.models import config as model_config

  if not isinstance(config.seed, numbers.Integral) or config.seed < 0:
    raise ConfigError("seed", config.seed, "must be a non-negative integer")
  data_config.validate_section(config.data)
  model_config.validate(config.model)
  check_model_fits_data(config)
  validate_train(config)
  experts = config.model.moe.experts if config.model.ffn == "moe" else None
  parallel.validate(config.mesh, batch_size=config.data.batch_size, experts=experts)
  validate_run(config)


def vocab_size(config) -> int:
  """The model's vocabulary: model.vocab_size, or when it is 0 the tokenizer's (no prepared data
  needed for the built-in tokenizers, so a sweep's plan and its FLOPs need none either)."""
  from mmscale.data import tokenizers
  return int(config.model.vocab_size) or tokenizers.model_vocab_size(config)


def check_model_fits_data(config) -> None:
  """Checks between the model and the data stage, which do not read each other's configs: each
  stage's validator sees its own section only, so these live here, where the whole config is."""
  from mmscale.data import tokenizers
  from mmscale.data.config import PROCEDURAL_MODALITIES
  from mmscale.models import flash_attention

  m, d = config.model, config.data
  if m.attention_impl == "pallas":
    problem = flash_attention.seq_len_problem(int(d.seq_len))
    if problem:
      raise ConfigError("data.seq_len", d.seq_len, f"with model.attention_impl='pallas' {problem}")
  if m.vocab_size and m.vocab_size < (n := tokenizers.get_tokenizer(config).vocab_size):
    # Token ids past the embedding table would make every loss NaN from the first step.
    raise ConfigError("model.vocab_size", m.vocab_size,
                      f"must be 0 (the tokenizer's) or at least the tokenizer's vocabulary of {n} "
                      f"(data.tokenizer={config.data.tokenizer!r})")
  # A media modality a built-in stream produces needs its own input projection in the model.
  for name, s in (config.data.get("streams", None) or {}).items():
    if s.get("source") != "procedural":
      continue
    for mod in PROCEDURAL_MODALITIES.get(s.get("name"), ()):
      if mod != "text" and mod not in m.modalities:
        raise ConfigError("model.modalities", tuple(m.modalities),
                          f"must include {mod!r}: stream data.streams.{name} produces it")


WANDB_MODES = ("offline", "online")


def validate_run(config) -> None:
  """The metric writers' keys (defaults where a config predates them)."""
  r = config.run
  tb, wandb, mode = r.get("tensorboard", True), r.get("wandb", ""), r.get("wandb_mode", "offline")
  check.boolean("run.tensorboard", tb)
  if not isinstance(wandb, str):
    raise ConfigError("run.wandb", wandb, "must be a W&B project name, or '' for no W&B")
  check.one_of("run.wandb_mode", mode, WANDB_MODES)
  if wandb:
    import importlib.util
    if importlib.util.find_spec("wandb") is None:
      raise ConfigError("run.wandb", wandb, "needs the wandb package: pip install 'mmscale[wandb]'")


def tokens_per_step(config) -> int:
  return int(config.data.batch_size) * int(config.data.seq_len)


def resolve(config) -> ml_collections.ConfigDict:
  """Validates, fills derived values and returns a locked copy (the run's resolved config)."""
  validate(config)
  return derive(config)


def derive(config) -> ml_collections.ConfigDict:
  """resolve() without validate(): the golden dumps use it, since validation checks that a
  study's prepared data is on disk and the dumps must not depend on it."""
  c = ml_collections.ConfigDict(config.to_dict())
  if c.train.tokens:
    c.train.steps = max(1, math.ceil(float(c.train.tokens) / tokens_per_step(c)))
  if c.train.warmup_steps >= c.train.steps:
    raise ConfigError("train.warmup_steps", c.train.warmup_steps,
                      f"must be smaller than train.steps ({c.train.steps})")
  if c.train.init_step and c.train.init_step >= c.train.steps:
    raise ConfigError("train.init_step", c.train.init_step,
                      f"must be smaller than train.steps ({c.train.steps})")
  c.lock()
  return c


# ----------------------------------------------------------------------------- run identity
# A run id is `run.name` plus a 10-hex hash of the keys that change the trained model or its
# evaluation. Three rules keep ids stable across harmless changes:
#
# 1. NOT_HASHED keys never enter the hash: presentation (`run.*`, `train.log_every`), storage
#    (checkpoint cadence, where the prepared data lives) and implementation choices that compute
#    the same function (mesh layout, rematerialisation, attention kernel, MoE matmul strategy).
# 2. HASHED keys (every other key the base config had when this scheme was fixed) always enter the
#    hash, with the base default standing in for a key an older config lacks; changing one of
#    their defaults therefore changes the ids of the runs it changes.
# 3. A key the base config gains later enters the hash only when its value differs from its
#    default, so upgrading mmscale leaves existing runs' ids (and their resume) alone.
#
# `data.streams.<name>.<field>` is matched as `data.streams.*.<field>` (streams are named by
# studies). A branch's `train.init_from` is hashed as its trunk's readable name only: the trunk's
# directory (root and id hash) may change without changing what the branch is. A constant-LR
# run's length (`train.steps`, `train.tokens`) is not hashed: its model at step k does not depend
# on where it stops, so a trunk continued to a larger budget stays the same run.

NOT_HASHED = (
    "run.*",  # run.name is the id's readable prefix; tags, tensorboard, wandb are presentation.
    "train.log_every",
    "train.checkpoint_every",
    "train.keep_checkpoints",
    "train.save_steps",  # Which checkpoints are kept, not what is trained.
    "data.data_dir",  # Where the prepared corpora live, not what they are.
    "data.num_threads",
    "data.prefetch",
    "data.cache_examples",
    "mesh.*",  # Sharded and single-device training compute the same function (tested).
    "model.remat",
    "model.attention_impl",
    "model.moe.grouped_matmul",
    "model.moe.block_size",
)

HASHED = tuple("""
seed
data.audio.frame_ms data.audio.hop_ms data.audio.max_seconds data.audio.n_mels
data.audio.patch_frames data.audio.sample_rate data.batch_size data.bpe_vocab_size
data.estimate_examples data.host_split data.image_size data.mix_by data.mixture data.modalities
data.on_corrupt data.patch_dim data.patch_size data.procedural_eval_size data.procedural_size
data.seq_len data.shuffle data.streams.*.eval_size data.streams.*.eval_split
data.streams.*.fields data.streams.*.name data.streams.*.path data.streams.*.size
data.streams.*.source data.streams.*.split data.streams.*.weight data.tokenizer
model.depth model.encoder.depth model.encoder.ffn_hidden model.encoder.head_dim
model.encoder.heads model.encoder.lr_factor model.encoder.width model.ffn model.ffn_hidden
model.ffn_multiple model.fusion model.head_dim model.heads model.image_loss
model.image_loss_weight model.init_scale model.modalities model.moe.capacity_factor
model.moe.every model.moe.expert_hidden model.moe.experts model.moe.lb_weight model.moe.mode
model.moe.routing model.moe.shared_expert model.moe.top_k model.moe.z_weight model.norm_eps
model.qk_norm model.rope_theta model.vocab_size model.vq_codebook_size model.vq_iters model.width
train.b1 train.b2 train.clip_norm train.cooldown_fraction train.cooldown_shape train.dtype
train.eps train.eval_batches train.eval_every train.eval_points train.init_from train.init_step
train.lr train.schedule train.steps train.tokens train.warmup_steps train.weight_decay
""".split())

_STREAM = re.compile(r"^data\.streams\.[^.]+\.")
_RUN_ID_HASH = re.compile(r"-[0-9a-f]{10}$")


def flatten(d: dict, prefix: str = "") -> dict:
  """{"a": {"b": 1}} -> {"a.b": 1}; empty dicts stay leaves."""
  out = {}
  for k, v in d.items():
    if isinstance(v, dict) and v:
      out.update(flatten(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = v
  return out


def pattern(key: str) -> str:
  """The key as HASHED and NOT_HASHED spell it (stream names become `*`)."""
  return _STREAM.sub("data.streams.*.", key)


def is_hashed(key: str) -> bool:
  return not any(fnmatch.fnmatchcase(pattern(key), p) for p in NOT_HASHED)


def _canon(value):
  """JSON form: tuples and lists compare equal (run.json stores tuples as lists)."""
  return json.loads(json.dumps(value, default=str))


@functools.lru_cache(maxsize=1)
def hash_defaults() -> dict:
  """{key pattern: default} of the base config; a stream field's default is the stream()'s."""
  from mmscale.data import config as data_config
  out = {pattern(k): _canon(v) for k, v in flatten(base_config().to_dict()).items()}
  out.update({f"data.streams.*.{k}": _canon(v) for k, v in data_config.stream().to_dict().items()})
  return out


def identity(config) -> dict:
  """{key: value} of what the hash covers (see the module docstring)."""
  d = config.to_dict() if hasattr(config, "to_dict") else dict(config)
  flat = {k: _canon(v) for k, v in flatten(d).items() if is_hashed(k)}
  base = hash_defaults()
  for key in HASHED:  # An older config lacking a key ran with the default.
    if "*" not in key and key not in flat and key in base:
      flat[key] = base[key]
  out = {}
  for key, value in flat.items():
    p = pattern(key)
    if p not in HASHED and p in base and value == base[p]:
      continue  # Rule 3: a key added later, at its default.
    out[key] = value
  if out.get("train.schedule") == "constant":
    out.pop("train.steps", None)
    out.pop("train.tokens", None)
  if out.get("train.init_from"):
    trunk = os.path.basename(os.path.normpath(str(out["train.init_from"])))
    out["train.init_from"] = _RUN_ID_HASH.sub("", trunk)
  return out


def _identity_hash(config) -> str:
  blob = json.dumps(identity(config), sort_keys=True)
  return hashlib.sha256(blob.encode()).hexdigest()[:10]



def config_hash(config) -> str:
  """Short hash of what makes the run what it is (see "run identity" above): the same run always
  maps to the same directory, whatever its presentation keys say or which keys mmscale gained."""
  return _identity_hash(config)


def run_id(config) -> str:
  """Readable name plus the config hash, e.g. `ef-s2-c1e13-3f9a0c21d4`."""
  return f"{config.run.name}-{config_hash(config)}"

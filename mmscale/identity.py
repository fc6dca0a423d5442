"""Run identity: which config keys make a run what it is, and the hash of them.

A run id is `run.name` plus a 10-hex hash of the keys that change the trained model or its
evaluation. Three rules keep ids stable across harmless changes:

1. NOT_HASHED keys never enter the hash: presentation (`run.*`, `train.log_every`), storage
   (checkpoint cadence, where the prepared data lives) and implementation choices that compute
   the same function (mesh layout, rematerialisation, attention kernel, MoE matmul strategy).
2. HASHED keys (every other key the base config had when this scheme was fixed) always enter the
   hash, with the base default standing in for a key an older config lacks; changing one of
   their defaults therefore changes the ids of the runs it changes.
3. A key the base config gains later enters the hash only when its value differs from its
   default, so upgrading mmscale leaves existing runs' ids (and their resume) alone.

`data.streams.<name>.<field>` is matched as `data.streams.*.<field>` (streams are named by studies).
A branch's `train.init_from` is hashed as its trunk's readable name only: the trunk's directory
(root and id hash) may change without changing what the branch is. A constant-LR run's length
(`train.steps`, `train.tokens`) is not hashed: its model at step k does not depend on where it
stops, so a trunk continued to a larger budget stays the same run.
"""

import fnmatch
import functools
import hashlib
import json
import os
import re

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
def defaults() -> dict:
  """{key pattern: default} of the base config; a stream field's default is the stream()'s."""
  from mmscale import config as config_lib
  from mmscale.data import config as data_config
  out = {pattern(k): _canon(v) for k, v in flatten(config_lib.base_config().to_dict()).items()}
  out.update({f"data.streams.*.{k}": _canon(v) for k, v in data_config.stream().to_dict().items()})
  return out


def identity(config) -> dict:
  """{key: value} of what the hash covers (see the module docstring)."""
  d = config.to_dict() if hasattr(config, "to_dict") else dict(config)
  flat = {k: _canon(v) for k, v in flatten(d).items() if is_hashed(k)}
  base = defaults()
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


def config_hash(config) -> str:
  blob = json.dumps(identity(config), sort_keys=True)
  return hashlib.sha256(blob.encode()).hexdigest()[:10]


"""config.model: the architecture knobs, their validation, and the derived dimensions.

`defaults()` is assembled into `mmscale.config.base_config()`; `validate(model)` checks
config.model alone (the checks between the model and other sections, such as a Pallas kernel's
seq_len, are run-level: mmscale/config.py). The model itself never sees the run config: it gets its own section plus `ModelInputs`, the few values that come from elsewhere
(mmscale/stages.py derives both). `dims(model, inputs)` turns them into the concrete sizes that
both the model (mmscale/models/) and the accounting (mmscale/flops.py) use, so the two can never
disagree about a derived value.
"""

import dataclasses
import numbers

import ml_collections

from mmscale.contract import MEDIA_MODALITIES as MEDIA
from mmscale.contract import MODALITIES
from mmscale import validation as check
from mmscale.errors import ConfigError
from mmscale.models import attention, blocks, fusion, loss, moe_config
from mmscale.models.layers import ffn_hidden


def _moe_defaults() -> ml_collections.ConfigDict:
  return moe_config.defaults()


def encoder_defaults() -> ml_collections.ConfigDict:
  """The late-fusion encoder (one per media modality, same shape for each)."""
  c = ml_collections.ConfigDict()
  c.width = 32
  c.depth = 2
  c.heads = 2
  c.head_dim = 0  # 0 = width // heads.
  c.ffn_hidden = 0  # 0 = 8/3 * width rounded up to a multiple of model.ffn_multiple.
  c.lr_factor = 1.0  # Encoder learning rate = train.lr * lr_factor (optimizer param groups).
  return c


def defaults() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.width = 64
  c.depth = 2
  c.heads = 4
  c.head_dim = 0  # 0 = width // heads.
  c.ffn_hidden = 0  # SwiGLU hidden size; 0 = 8/3 * width rounded up to a multiple of ffn_multiple.
  c.ffn_multiple = 64
  c.vocab_size = 0  # 0 = the tokenizer's vocabulary (mmscale.config.vocab_size resolves it).
  c.rope_theta = 10000.0
  c.qk_norm = True
  c.norm_eps = 1e-6
  c.init_scale = 1.0  # Multiplies every kernel's fan-in init std (embeddings: std = init_scale).
  c.fusion = "early"  # early: media patches -> one linear map; late: a ViT encoder per modality.
  c.ffn = "dense"  # dense SwiGLU | moe (config.model.moe) | modality (one FFN per modality).
  c.modalities = ("image",)  # Media modalities with their own input projection / encoder.
  c.image_loss = "none"  # Objective at media targets: none | next_patch | vq.
  c.image_loss_weight = 1.0  # Weight of each media modality's mean loss next to the text mean.
  c.vq_codebook_size = 256  # k-means fit wants >= 4 * this many sample patches.
  c.vq_iters = 20  # k-means iterations when fitting the VQ codebook.
  # Rematerialisation of each scanned layer in the backward pass: a key of blocks.REMAT_POLICIES. Chosen by
  # benchmarks/bench_memory.py (benchmarks/RESULTS.md "Memory").
  c.remat = "full"
  # Attention kernel: "" / "xla" (XLA, dense mask) | "cudnn" (GPU, dense mask as bias) | "pallas"
  # (flash kernel on the mask's per-query intervals: Triton on GPU, interpreted on CPU).
  c.attention_impl = ""
  c.encoder = encoder_defaults()
  c.moe = _moe_defaults()
  return c


@dataclasses.dataclass(frozen=True)
class Tower:
  """Sizes of one transformer stack (the decoder or an encoder)."""
  width: int
  depth: int
  heads: int
  head_dim: int
  ffn_hidden: int
  qk_norm: bool

  @property
  def attn_dim(self) -> int:
    return self.heads * self.head_dim


@dataclasses.dataclass(frozen=True)
class Dims:
  decoder: Tower
  encoder: Tower | None  # Late fusion only.
  vocab_size: int
  patch_dim: int
  seq_len: int
  patches_per_image: int
  modalities: tuple  # Media modalities, in config order.
  fusion: str
  ffn: str
  image_loss: str
  codebook_size: int


@dataclasses.dataclass(frozen=True)
class ModelInputs:
  """What the model needs from outside config.model, as explicit named values.

  vocab_size: the tokenizer's vocabulary (used when model.vocab_size is 0); seq_len, patch_dim and
  patches_per_image: the data's packing and patching; dtype: the compute dtype (train.dtype);
  seed: the run's seed (the VQ codebook's k-means). mmscale.stages.model_stage derives it.
  """
  vocab_size: int
  seq_len: int
  patch_dim: int
  patches_per_image: int
  dtype: str = "float32"
  seed: int = 0


def dims(model, inputs: ModelInputs) -> Dims:
  """The model's dimensions from its config section and its inputs (no file is read)."""
  m = model
  vocab = int(m.vocab_size) or int(inputs.vocab_size)
  if vocab <= 0:
    raise ConfigError("model.vocab_size", m.vocab_size,
                      "is 0 (the tokenizer's) but no vocabulary size was passed to the model")
  dec = Tower(m.width, m.depth, m.heads, m.head_dim or m.width // m.heads,
              ffn_hidden(m.width, m.ffn_hidden, m.ffn_multiple), bool(m.qk_norm))
  enc = None
  if fusion.has_encoder(m.fusion):  # The encoder tower's shape (mmscale/models/fusion.py).
    e = m.encoder
    enc = Tower(e.width, e.depth, e.heads, e.head_dim or e.width // e.heads,
                ffn_hidden(e.width, e.ffn_hidden, m.ffn_multiple), bool(m.qk_norm))
  return Dims(dec, enc, vocab, int(inputs.patch_dim), int(inputs.seq_len),
              int(inputs.patches_per_image), tuple(m.modalities), m.fusion, m.ffn, m.image_loss,
              int(m.vq_codebook_size))


# -- validation ---------------------------------------------------------------------------------

def _check_tower(prefix, c):
  check.integer(f"{prefix}.width", c.width)
  check.integer(f"{prefix}.depth", c.depth)
  check.integer(f"{prefix}.heads", c.heads)
  check.integer(f"{prefix}.head_dim", c.head_dim, 0)
  if not c.head_dim and c.width % c.heads:
    raise ConfigError(f"{prefix}.heads", c.heads,
                      f"must divide {prefix}.width ({c.width}) when head_dim is 0")
  if c.head_dim % 2 or (not c.head_dim and (c.width // c.heads) % 2):
    raise ConfigError(f"{prefix}.head_dim", c.head_dim or c.width // c.heads,
                      "must be even (rotary embeddings rotate pairs)")
  check.integer(f"{prefix}.ffn_hidden", c.ffn_hidden, 0)


def validate(model) -> None:
  """Checks config.model `model` alone; ConfigError on the first bad value."""
  m = model
  _check_tower("model", m)
  check.integer("model.ffn_multiple", m.ffn_multiple)
  check.integer("model.vocab_size", m.vocab_size, 0)
  check.number("model.rope_theta", m.rope_theta)
  check.boolean("model.qk_norm", m.qk_norm)
  check.number("model.norm_eps", m.norm_eps)
  check.number("model.init_scale", m.init_scale)
  check.choice("model.fusion", m.fusion, fusion.FUSIONS)
  check.choice("model.ffn", m.ffn, blocks.FFNS)
  mods = m.modalities
  if isinstance(mods, str) or not isinstance(mods, (tuple, list)):
    raise ConfigError("model.modalities", mods, f"must be a tuple of modalities from {MEDIA}")
  for mod in mods:
    check.one_of("model.modalities", mod, MEDIA)
  if len(set(mods)) != len(mods):
    raise ConfigError("model.modalities", tuple(mods), "must not repeat a modality")
  check.choice("model.image_loss", m.image_loss, loss.IMAGE_LOSSES)
  if not isinstance(m.image_loss_weight, numbers.Real) or m.image_loss_weight < 0:
    raise ConfigError("model.image_loss_weight", m.image_loss_weight, "must be a number >= 0")
  check.integer("model.vq_codebook_size", m.vq_codebook_size, 2)
  check.integer("model.vq_iters", m.vq_iters)
  check.choice("model.attention_impl", m.attention_impl, attention.ATTENTION_IMPLS)
  check.choice("model.remat", m.remat, blocks.REMAT_POLICIES)
  _check_tower("model.encoder", m.encoder)
  check.number("model.encoder.lr_factor", m.encoder.lr_factor)
  if m.ffn != "dense" or "moe" in m:
    moe_config.validate(m)
  if m.ffn == "moe" and m.depth % m.moe.every:
    raise ConfigError("model.moe.every", m.moe.every,
                      f"must divide model.depth ({m.depth}) so the layers stack in equal groups")

"""config.model.fusion: how each media modality's patches enter the decoder.

early: one linear projection per modality into the decoder's width (decoder parameters).
late: one ViT-style encoder per modality (bidirectional within each media block) and a linear
connector; its parameters are the "encoder" group (vision_params, the encoder's learning rate).

FUSIONS is the registry config.model's validator reads, NMM builds from and the accounting
(mmscale/flops.py, the optimizer's parameter groups) asks: a new fusion kind is one entry. Each
entry names the NMM attribute its modules live under, so parameter paths ("media_in", "encoders")
stay those of existing checkpoints and of the optimizer's "encoder" group.
"""

from typing import Callable, NamedTuple

import jax.numpy as jnp
from flax import nnx

from mmscale.models import attention, blocks, layers


class Encoder(nnx.Module):
  """ViT-style encoder of one media modality: patch projection, dense blocks, norm, connector."""

  def __init__(self, model, dims, *, rngs, dtype):
    tower, scale = dims.encoder, float(model.init_scale)
    self.attention_impl = model.attention_impl
    self.patch_in = layers.Dense((dims.patch_dim,), (tower.width,), ("patch", "embed"),
                                 rngs=rngs, scale=scale, dtype=dtype)
    self.stack = blocks.Stack(model, tower, "dense", rngs=rngs, dtype=dtype, remat=model.remat)
    self.norm = layers.RMSNorm(tower.width, eps=model.norm_eps, dtype=dtype)
    self.connector = layers.Dense((tower.width,), (dims.decoder.width,), (None, "embed"),
                                  rngs=rngs, scale=scale, dtype=dtype)

  def __call__(self, patches, positions, segment_ids, block_ids):
    mask = attention.make_mask(segment_ids, block_ids, "encoder", self.attention_impl)
    valid = block_ids > 0
    x, _ = self.stack(self.patch_in(patches), positions, mask, jnp.zeros_like(block_ids), valid)
    return self.connector(self.norm(x))


def _projection(model, dims, *, rngs, dtype):
  return layers.Dense((dims.patch_dim,), (dims.decoder.width,), ("patch", "embed"), rngs=rngs,
                      scale=float(model.init_scale), dtype=dtype)


class Fusion(NamedTuple):
  attr: str  # The NMM attribute holding one module per media modality.
  build: Callable  # (model, dims, *, rngs, dtype) -> one modality's module.
  # (module, patches, positions, segment_ids, block_ids of this modality) -> [B, L, width].
  apply: Callable
  # True: each media modality has its own encoder tower of config.model.encoder's shape (patch
  # projection, blocks, norm, connector), counted as vision_params, trained as the optimizer's
  # "encoder" group, and its FLOPs counted per media token, C = 6(N_v*D_v + N*D). False: a linear
  # patch projection into the decoder's width, counted with the decoder's parameters, C = 6ND.
  encoder: bool


FUSIONS = {
    "early": Fusion("media_in", _projection, lambda f, patches, *_: f(patches), encoder=False),
    "late": Fusion("encoders", Encoder, lambda f, patches, pos, seg, blk: f(patches, pos, seg, blk),
                   encoder=True),
}


def has_encoder(name: str) -> bool:
  """Whether config.model.fusion=`name` runs media through encoder towers (see Fusion.encoder)."""
  return FUSIONS[name].encoder


def encoder_attrs() -> frozenset:
  """The NMM attributes whose parameters form the optimizer's "encoder" group."""
  return frozenset(f.attr for f in FUSIONS.values() if f.encoder)

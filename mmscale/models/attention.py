"""Self-attention with rotary positions, QK-norm and the native-multimodal mask.

Mask: allowed(q, k) = seg[q] == seg[k] > 0 and (k <= q or block[q] == block[k] > 0):
causal over text, bidirectional within one media block, never across packed segments.

`model.attention_impl` picks how it is applied:
- "" / "xla" / "cudnn": a boolean [B, 1, L, L] array into `jax.nn.dot_product_attention` (cuDNN
  reads it as a dense bias: its own mask types cannot say "bidirectional within an image").
- "pallas": the mask never exists as an array. It is an interval per query within its segment
  (`Intervals`, mmscale/models/flash_attention.py) and a Pallas flash kernel skips the key blocks
  outside it: Triton on GPU, the Pallas interpreter on CPU (for tests, slow).
Rows without any allowed key (padding; text rows in the encoder mask) are ignored by the loss: the
dense path gives them a uniform softmax from jax's large-negative fill, the flash path zeros.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx
from jax.sharding import PartitionSpec as P

from mmscale import parallel
from mmscale.models import flash_attention, layers


class Intervals(NamedTuple):
  """The mask as allowed(q, k) = seg[q] == seg[k] > 0 and lo[q] <= k <= hi[q] ([B, L] int32 each)."""
  segment_ids: jax.Array
  lo: jax.Array
  hi: jax.Array


def flash(q, k, v, mask: Intervals):
  """The Pallas kernel; under a mesh, per device on its rows of the batch (a Triton custom call
  has no partitioning rule, so XLA would gather the whole batch onto every device)."""
  mesh = jax.sharding.get_abstract_mesh()
  if mesh.empty or mesh.size == 1:
    return flash_attention.flash_attention(q, k, v, *mask)
  rows = P(parallel.batch_axes(mesh, q.shape[0]) or None)
  # check_vma=False: pallas_call's outputs carry no varying-axes annotation; every row is local.
  return jax.shard_map(flash_attention.flash_attention, mesh=mesh, in_specs=(rows,) * 6,
                       out_specs=rows, check_vma=False)(q, k, v, *mask)


def _dense_mask(segment_ids, block_ids, kind):
  return (decoder_mask if kind == "decoder" else encoder_mask)(segment_ids, block_ids)


def _interval_mask(segment_ids, block_ids, kind):
  return Intervals(segment_ids, *flash_attention.mask_intervals(segment_ids, block_ids, kind))


# model.attention_impl -> the mask builder for it; the dense ones also name the backend of
# jax.nn.dot_product_attention ("" = jax's default).
ATTENTION_IMPLS = {"": _dense_mask, "xla": _dense_mask, "cudnn": _dense_mask,
                   "pallas": _interval_mask}


def make_mask(segment_ids, block_ids, kind: str, implementation: str = ""):
  """The decoder or encoder mask in the form `implementation` consumes (see the module doc)."""
  return ATTENTION_IMPLS[implementation](segment_ids, block_ids, kind)


def decoder_mask(segment_ids, block_ids):
  """[B, L] ids -> [B, 1, L, L] bool: causal in a segment, bidirectional within a media block."""
  seg_q, seg_k = segment_ids[:, :, None], segment_ids[:, None, :]
  same_segment = (seg_q == seg_k) & (seg_q > 0)
  n = segment_ids.shape[1]
  causal = jnp.arange(n)[:, None] >= jnp.arange(n)[None, :]
  blk_q, blk_k = block_ids[:, :, None], block_ids[:, None, :]
  same_block = (blk_q == blk_k) & (blk_q > 0)
  return (same_segment & (causal[None] | same_block))[:, None]


def encoder_mask(segment_ids, block_ids):
  """[B, L] ids -> [B, 1, L, L] bool: bidirectional within a media block, nothing else."""
  seg_q, seg_k = segment_ids[:, :, None], segment_ids[:, None, :]
  blk_q, blk_k = block_ids[:, :, None], block_ids[:, None, :]
  return ((seg_q == seg_k) & (seg_q > 0) & (blk_q == blk_k) & (blk_q > 0))[:, None]


def rotary(x, positions, theta: float):
  """Rotates pairs (x[..., i], x[..., i + D/2]) by positions * theta^(-2i/D).  x: [B, L, H, D]."""
  half = x.shape[-1] // 2
  freq = theta ** (-jnp.arange(half, dtype=jnp.float32) / half)
  angle = positions.astype(jnp.float32)[:, :, None, None] * freq  # [B, L, 1, D/2]
  sin, cos = jnp.sin(angle), jnp.cos(angle)
  x1, x2 = jnp.split(x.astype(jnp.float32), 2, axis=-1)
  out = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
  return out.astype(x.dtype)


class Attention(nnx.Module):

  def __init__(self, tower, *, rope_theta, eps, rngs, scale=1.0, out_scale=None,
               dtype=jnp.float32, implementation=None):
    d, h, k = tower.width, tower.heads, tower.head_dim
    self.rope_theta, self.dtype, self.implementation = rope_theta, dtype, implementation
    kw = dict(rngs=rngs, scale=scale, dtype=dtype)
    self.q = layers.Dense((d,), (h, k), ("embed", "heads", "kv"), **kw)
    self.k = layers.Dense((d,), (h, k), ("embed", "heads", "kv"), **kw)
    self.v = layers.Dense((d,), (h, k), ("embed", "heads", "kv"), **kw)
    kw["scale"] = scale if out_scale is None else out_scale
    self.o = layers.Dense((h, k), (d,), ("heads", "kv", "embed"), **kw)
    if tower.qk_norm:  # Normalise q and k per head (Dehghani et al. 2023) for stable logits.
      self.q_norm = layers.RMSNorm(k, ("kv",), eps=eps, dtype=dtype)
      self.k_norm = layers.RMSNorm(k, ("kv",), eps=eps, dtype=dtype)
    else:
      self.q_norm = self.k_norm = None

  def __call__(self, x, positions, mask):
    q, k, v = self.q(x), self.k(x), self.v(x)
    if self.q_norm is not None:
      q, k = self.q_norm(q), self.k_norm(k)
    q = rotary(q, positions, self.rope_theta)
    k = rotary(k, positions, self.rope_theta)
    if isinstance(mask, Intervals):
      out = flash(q, k, v, mask)
    else:
      impl = None if self.implementation in (None, "", "xla") else self.implementation
      out = jax.nn.dot_product_attention(q, k, v, mask=mask, implementation=impl)
    return self.o(out)

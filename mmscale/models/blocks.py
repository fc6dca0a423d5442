"""Pre-norm transformer blocks and the scanned layer stack.

Layers are created with nnx.vmap (parameters stacked on a leading "layers" axis) and applied with
jax.lax.scan, so compile time does not grow with depth. With MoE every n-th layer, a scanned group
holds n blocks (n-1 dense, then one MoE) and the stack scans over depth / n groups.
Every module here takes `model` = config.model (frozen, mmscale/stages.py), never the run config.
"""

import jax
from flax import nnx
from jax.ad_checkpoint import checkpoint_name
from jax.sharding import PartitionSpec as P

from mmscale import parallel
from mmscale.models import attention, layers, moe

_cp = jax.checkpoint_policies
# config.model.remat -> what the backward pass keeps of each scanned group (None: no remat, keep
# everything). "block_io" keeps only each block's attention and FFN outputs (checkpoint_name'd
# below) and recomputes the rest; see benchmarks/RESULTS.md "Memory" for how the default was chosen.
REMAT_POLICIES = {
    "none": None,
    "full": _cp.nothing_saveable,
    "dots": _cp.dots_saveable,
    "dots_no_batch": _cp.dots_with_no_batch_dims_saveable,
    "block_io": _cp.save_only_these_names("attn_out", "ffn_out"),
}


def _dense_ffn(model, tower, *, rngs, scale, out_scale, dtype):
  return layers.SwiGLU(tower.width, tower.ffn_hidden, rngs=rngs, scale=scale,
                       out_scale=out_scale, dtype=dtype)


def _moe_ffn(model, tower, *, rngs, scale, out_scale, dtype):
  return moe.MoEFeedForward(model, rngs, dtype=dtype)


def _modality_ffn(model, tower, *, rngs, scale, out_scale, dtype):
  return moe.ModalityFeedForward(model, rngs, dtype=dtype)


# config.model.ffn -> the FFN of a block: dense SwiGLU | sparse MoE | one FFN per modality. Its keys
# are the allowed kinds.
FFNS = {"dense": _dense_ffn, "moe": _moe_ffn, "modality": _modality_ffn}


def ffn_module(kind, model, tower, *, rngs, scale, out_scale, dtype):
  return FFNS[kind](model, tower, rngs=rngs, scale=scale, out_scale=out_scale, dtype=dtype)


def rows_split(x):
  """x [B, ...] constrained to rows split over the active mesh's batch axes (no-op without one).

  With mesh.fsdp > 1 the weights are split by features, and XLA's propagation followed them: it
  split the residual stream by features too and every device computed on all rows (p1 dense at 8
  rows per device: 27 GB of temp buffer; a depth-8 t4 at fsdp=8: 1.29 GB against 0.27 GB at
  data=8). Pinning the rows makes XLA gather each layer's weights instead (ZeRO-3).
  """
  mesh = jax.sharding.get_abstract_mesh()
  if mesh.empty or mesh.size == 1:
    return x
  return jax.lax.with_sharding_constraint(x, P(parallel.batch_axes(mesh, x.shape[0]) or None))


class Block(nnx.Module):
  """x + attn(norm(x)), then x + ffn(norm(x)). The FFN gets modality ids for MoE routing."""

  def __init__(self, model, tower, ffn_kind, *, rngs, dtype):
    m = model
    scale = float(m.init_scale)
    # Residual-branch outputs scaled by 1/sqrt(2 depth) (GPT-2) so the residual stream's variance
    # at init does not grow with depth.
    out_scale = scale / (2 * tower.depth) ** 0.5
    self.ffn_kind = ffn_kind
    self.attn_norm = layers.RMSNorm(tower.width, eps=m.norm_eps, dtype=dtype)
    self.attn = attention.Attention(tower, rope_theta=float(m.rope_theta), eps=m.norm_eps,
                                    rngs=rngs, scale=scale, out_scale=out_scale, dtype=dtype,
                                    implementation=m.get("attention_impl", "") or None)
    self.ffn_norm = layers.RMSNorm(tower.width, eps=m.norm_eps, dtype=dtype)
    self.ffn = ffn_module(ffn_kind, model, tower, rngs=rngs, scale=scale, out_scale=out_scale,
                          dtype=dtype)

  def __call__(self, x, positions, mask, modality, valid):
    x = rows_split(x + checkpoint_name(self.attn(self.attn_norm(x), positions, mask), "attn_out"))
    h = self.ffn_norm(x)
    if self.ffn_kind == "dense":
      return rows_split(x + checkpoint_name(self.ffn(h), "ffn_out")), None
    y, aux = self.ffn(h, modality, valid)
    return rows_split(x + checkpoint_name(y.astype(x.dtype), "ffn_out")), aux


class Group(nnx.Module):
  """`n` consecutive blocks; only the last one has a MoE FFN when ffn == "moe"."""

  def __init__(self, model, tower, ffn_kind, n, *, rngs, dtype):
    kinds = ["dense"] * (n - 1) + [ffn_kind] if ffn_kind == "moe" else [ffn_kind] * n
    self.blocks = nnx.List([Block(model, tower, k, rngs=rngs, dtype=dtype) for k in kinds])

  def __call__(self, x, positions, mask, modality, valid):
    aux = {}
    for block in self.blocks:
      x, a = block(x, positions, mask, modality, valid)
      if a is not None and block.ffn_kind == "moe":
        aux = a
    return x, aux


class Stack(nnx.Module):
  """depth blocks as `depth // group` scanned groups (parameters carry a leading "layers" axis)."""

  def __init__(self, model, tower, ffn_kind, *, rngs, dtype, group=1, remat="none"):
    if remat not in REMAT_POLICIES:
      raise ValueError(f"unknown remat policy {remat!r}")
    self.remat = remat

    @nnx.split_rngs(splits=tower.depth // group)
    @nnx.vmap(in_axes=(0,), out_axes=0, transform_metadata={nnx.PARTITION_NAME: "layers"})
    def create(rngs):
      return Group(model, tower, ffn_kind, group, rngs=rngs, dtype=dtype)

    self.groups = create(rngs)

  def __call__(self, x, positions, mask, modality, valid):
    """Returns (x, aux) with aux leaves stacked over the MoE layers (empty dict when dense)."""
    graphdef, state = nnx.split(self.groups)

    def body(x, group_state):
      return nnx.merge(graphdef, group_state)(x, positions, mask, modality, valid)

    if self.remat != "none":
      # prevent_cse=False: inside scan the loop already keeps XLA from merging the recomputation.
      body = jax.checkpoint(body, prevent_cse=False, policy=REMAT_POLICIES[self.remat])
    x, aux = jax.lax.scan(body, x, state)
    return x, aux

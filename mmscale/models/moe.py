"""Sparse mixture-of-experts and modality-specific feed-forward layers, expert-parallel.

MoEFeedForward: E SwiGLU experts, a softmax router, top-k token choice (top-k weights renormalised
when k > 1, Switch-style raw probability when k = 1 so the router gets a gradient). Two modes:
  dropless  tokens sorted by expert and run as one grouped matmul: jax.lax.ragged_dot, or on CPU
            (model.moe.grouped_matmul) a loop over each expert's rows in blocks, since XLA:CPU's
            ragged_dot multiplies every row by every expert;
  capacity  each expert takes at most ceil(cf * L * k / E) assignments per sequence (priority: first
            choices, then position), the rest dropped and counted. Per sequence, so what is dropped
            does not depend on how the batch is sharded.
The layers live here; their parts each have a file: moe_routing.py (top-k choice, aux losses,
counts), moe_dispatch.py (expert parallelism: shard_map with all-to-all), moe_kernels.py (the
grouped matmul on one device), moe_config.py (the knobs and their checks).
Both layers take config.model (and never the run config): the compute dtype is an argument.
"""

import jax.numpy as jnp
from flax import nnx

from mmscale.contract import MODALITIES
from mmscale.models import layers
from mmscale.models import moe_config
from mmscale.models.layers import ffn_hidden
from mmscale.models.moe_dispatch import expert_ffn
from mmscale.models.moe_routing import ROUTINGS, route


def _expert_init(scale):
  # Fan-in over the contracted dim only; the leading expert dim is a batch of independent matrices.
  return nnx.initializers.variance_scaling(scale ** 2, "fan_in", "truncated_normal", in_axis=-2,
                                           out_axis=-1, batch_axis=(0,))


def _group_of_modality(model) -> tuple[int, ...]:
  """Routing group (index into moe_config.routing_groups) of each modality id; unlisted -> text."""
  groups = moe_config.routing_groups(model)
  return tuple(groups.index(m) if m in groups else 0 for m in MODALITIES)


class _Experts(nnx.Module):
  """Stacked SwiGLU weights [G, D, F], [G, D, F], [G, F, D] (G experts or modalities)."""

  def __init__(self, n, width, hidden, name, *, rngs, scale):
    init = _expert_init(scale)
    self.gate = layers.param(rngs, init, (n, width, hidden), (name, "embed", "mlp"))
    self.up = layers.param(rngs, init, (n, width, hidden), (name, "embed", "mlp"))
    self.down = layers.param(rngs, init, (n, hidden, width), (name, "mlp", "embed"))

  def weights(self, dtype):
    return tuple(w[...].astype(dtype) for w in (self.gate, self.up, self.down))


class MoEFeedForward(nnx.Module):
  """Routed SwiGLU experts (+ optional shared expert). __call__(x, modality, valid) -> (y, aux).
  model: config.model; dtype: the compute dtype (the router and weights stay float32)."""

  def __init__(self, model, rngs, *, width=None, hidden=None, dtype="float32"):
    m, c = model, model.moe
    width = int(width or m.width)
    hidden = int(hidden or c.expert_hidden or ffn_hidden(m.width, m.ffn_hidden, m.ffn_multiple))
    scale = float(m.get("init_scale", 1.0))
    self.dtype = jnp.dtype(dtype)
    self.n_experts, self.top_k = int(c.experts), int(c.top_k)
    self.mode, self.capacity_factor = str(c.mode), float(c.capacity_factor)
    self.grouped = dict(grouped=str(c.get("grouped_matmul", "auto")),
                        block=int(c.get("block_size", 0)))
    self.router = layers.param(rngs, layers.fan_in_init(scale, 1), (width, self.n_experts),
                               ("embed", None))
    self.experts = _Experts(self.n_experts, width, hidden, "expert", rngs=rngs, scale=scale)
    self.shared = (layers.SwiGLU(width, hidden, rngs=rngs, scale=scale, dtype=self.dtype)
                   if c.shared_expert else None)
    self.group_of_expert = ROUTINGS[c.routing](len(moe_config.routing_groups(m)), self.n_experts)
    self.aware = self.group_of_expert is not None
    if self.aware:
      self.group_of_modality = _group_of_modality(m)

  def router_logits(self, x, modality):
    logits = jnp.einsum("bld,de->ble", x.astype(jnp.float32), self.router[...])
    if self.aware:
      group = jnp.asarray(self.group_of_modality, jnp.int32)[modality]
      allowed = group[..., None] == jnp.asarray(self.group_of_expert, jnp.int32)
      logits = jnp.where(allowed, logits, -jnp.inf)
    return logits

  def __call__(self, x, modality, valid):
    idx, w, keep, pos, cap, aux = route(self.router_logits(x, modality), valid, modality,
                                        self.top_k, mode=self.mode,
                                        capacity_factor=self.capacity_factor)
    h = x.astype(self.dtype)
    y = expert_ffn(h, idx, w, keep, pos, self.experts.weights(self.dtype), mode=self.mode, cap=cap,
                   **self.grouped)
    if self.shared is not None:
      y = y + self.shared(h)
    return y, aux


class ModalityFeedForward(nnx.Module):
  """One SwiGLU FFN per modality group (text + model.modalities): hard routing by modality id.
  model: config.model; dtype: the compute dtype."""

  def __init__(self, model, rngs, *, width=None, hidden=None, dtype="float32"):
    m = model
    width = int(width or m.width)
    hidden = int(hidden or ffn_hidden(m.width, m.ffn_hidden, m.ffn_multiple))
    scale = float(m.get("init_scale", 1.0))
    self.dtype = jnp.dtype(dtype)
    self.group_of_modality = _group_of_modality(m)
    n = len(moe_config.routing_groups(m))
    c = m.get("moe", None) or {}
    self.grouped = dict(grouped=str(c.get("grouped_matmul", "auto")),
                        block=int(c.get("block_size", 0)))
    self.ffns = _Experts(n, width, hidden, None, rngs=rngs, scale=scale)

  def __call__(self, x, modality, valid):
    idx = jnp.asarray(self.group_of_modality, jnp.int32)[modality][..., None]
    w = jnp.ones(idx.shape, jnp.float32)
    keep = valid[..., None]
    y = expert_ffn(x.astype(self.dtype), idx, w, keep, jnp.zeros_like(idx),
                   self.ffns.weights(self.dtype), shard_experts=False, **self.grouped)
    return y, {}

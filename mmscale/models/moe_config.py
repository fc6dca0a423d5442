"""config.model.moe: the sparse-MoE and modality-routing knobs and their validation."""

import ml_collections

from mmscale import validation as check
from mmscale.errors import ConfigError
from mmscale.models import moe_dispatch, moe_kernels, moe_routing


def defaults() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.experts = 8
  c.top_k = 1
  c.expert_hidden = 0  # SwiGLU hidden size of each expert; 0 = the dense FFN's (model.ffn_hidden).
  c.mode = "dropless"  # dropless: grouped matmul, nothing dropped | capacity: fixed expert buffers.
  c.capacity_factor = 1.25  # capacity: slots per expert and sequence = ceil(cf * L * top_k / E).
  # Dropless grouped matmul. ragged_dot: jax.lax.ragged_dot (real grouped kernels on GPU/TPU, but
  # XLA:CPU computes every row with every expert, E x the FLOPs) | blocks: a loop over the experts
  # runs each one's sorted rows in blocks of block_size rows (the last in blocks of block_size / 8)
  # | auto: blocks on CPU, ragged_dot elsewhere. Same values and gradients either way.
  c.grouped_matmul = "auto"
  c.block_size = 0  # blocks: rows per block; 0 = a power of two in [16, 128] from tokens / experts.
  c.lb_weight = 0.01  # Switch load-balancing loss weight (Fedus et al. 2022).
  c.z_weight = 1e-3  # Router z-loss weight (Zoph et al. 2022).
  c.shared_expert = False  # A dense SwiGLU applied to every token next to the routed experts.
  c.every = 1  # MoE FFN in every n-th layer (the others dense).
  # agnostic: one learned router over all experts | aware: experts split evenly between text and
  # the media modalities of model.modalities, a token only routed within its modality's experts.
  c.routing = "agnostic"
  return c


def routing_groups(model) -> tuple[str, ...]:
  """Modalities owning a share of the experts (aware routing) or an FFN (ffn=modality).
  model: config.model."""
  return ("text",) + tuple(model.get("modalities", ()))


def validate(model) -> None:
  """Checks config.model.moe; model: config.model (routing groups read its modalities)."""
  c = model.moe
  check.integer("model.moe.experts", c.experts)
  check.integer("model.moe.top_k", c.top_k)
  if c.top_k > c.experts:
    raise ConfigError("model.moe.top_k", c.top_k, f"must be <= model.moe.experts ({c.experts})")
  check.integer("model.moe.expert_hidden", c.expert_hidden, 0)
  check.choice("model.moe.mode", c.mode, moe_dispatch.MODES)
  check.number("model.moe.capacity_factor", c.capacity_factor, 0)
  check.choice("model.moe.grouped_matmul", c.get("grouped_matmul", "auto"),
               moe_kernels.GROUPED_MATMULS)
  check.integer("model.moe.block_size", c.get("block_size", 0), 0)
  check.number("model.moe.lb_weight", c.lb_weight, 0, strict=False)
  check.number("model.moe.z_weight", c.z_weight, 0, strict=False)
  check.boolean("model.moe.shared_expert", c.shared_expert)
  check.integer("model.moe.every", c.every)
  check.choice("model.moe.routing", c.routing, moe_routing.ROUTINGS)
  if c.routing == "aware":
    groups = routing_groups(model)
    if c.experts % len(groups):
      raise ConfigError("model.moe.experts", c.experts,
                        f"must be divisible by the {len(groups)} routing groups {groups} "
                        "when model.moe.routing='aware'")
    if c.top_k > c.experts // len(groups):
      raise ConfigError("model.moe.top_k", c.top_k,
                        f"must be <= the {c.experts // len(groups)} experts of each modality "
                        "when model.moe.routing='aware'")

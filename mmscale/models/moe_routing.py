"""MoE routing: top-k token choice from router logits, and its auxiliary losses and counts.

Computed on the global (auto-sharded) arrays: the Switch load-balancing loss, the router z-loss,
the capacity positions and the per-expert, per-modality token counts that the records carry.
"""

import math

import jax
import jax.numpy as jnp

from mmscale.contract import MODALITIES

N_MODALITIES = len(MODALITIES)


def _every_expert(n_groups, n_experts):
  return None


def _experts_split_by_group(n_groups, n_experts):
  return tuple(i * n_groups // n_experts for i in range(n_experts))


# model.moe.routing -> (n routing groups, n experts) -> each expert's routing group, or None when
# any token may reach any expert; config.model.moe's validator reads the names from here.
ROUTINGS = {"agnostic": _every_expert, "aware": _experts_split_by_group}


def route(logits, valid, modality, top_k, *, mode="dropless", capacity_factor=1.0):
  """Top-k routing and its statistics from router logits [B, L, E] (masked logits = -inf).

  Returns (idx, w, keep, pos, cap, aux): aux has lb_loss (Switch: E * sum_e f_e P_e, f_e the share
  of valid assignments sent to e, P_e the mean router probability), z_loss (mean squared
  logsumexp), dropped (valid assignments over capacity) and counts [E, n_modalities].
  """
  b, l, e = logits.shape
  logits = logits.astype(jnp.float32)
  probs = jax.nn.softmax(logits, axis=-1)
  top_p, idx = jax.lax.top_k(probs, top_k)
  w = top_p / jnp.sum(top_p, axis=-1, keepdims=True) if top_k > 1 else top_p
  v = valid.astype(jnp.float32)
  n = jnp.maximum(jnp.sum(v), 1.0)
  onehot = jax.nn.one_hot(idx, e, dtype=jnp.float32) * v[..., None, None]  # [B, L, k, E]
  frac = jnp.sum(onehot, axis=(0, 1, 2)) / (n * top_k)
  mean_p = jnp.sum(probs * v[..., None], axis=(0, 1)) / n
  lb = e * jnp.sum(frac * mean_p)
  z = jnp.sum(jax.nn.logsumexp(logits, axis=-1) ** 2 * v) / n
  mod = jax.nn.one_hot(modality, N_MODALITIES, dtype=jnp.float32)
  counts = jnp.einsum("blke,blm->em", onehot, mod)
  keep = jnp.broadcast_to(valid[..., None], idx.shape)
  cap = 0
  if mode == "capacity":
    cap = max(1, math.ceil(capacity_factor * l * top_k / e))
    # Slot of each assignment in its expert's buffer, first choices before second ones.
    order = jnp.swapaxes(onehot, 1, 2).reshape(b, top_k * l, e)
    slot = jnp.cumsum(order, axis=1) - order
    pos = jnp.sum(slot * order, axis=-1).reshape(b, top_k, l).swapaxes(1, 2).astype(jnp.int32)
    keep = keep & (pos < cap)
  else:
    pos = jnp.zeros(idx.shape, jnp.int32)
  dropped = jnp.sum(valid[..., None] & ~keep, dtype=jnp.int32)
  aux = {"lb_loss": lb, "z_loss": z, "dropped": dropped, "counts": counts}
  return idx, w, keep, pos, cap, aux

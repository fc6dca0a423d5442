"""The jitted train and eval steps, as pure functions of (params, optimizer state, batch).

The model is split once into its graph definition, its trainable parameters and the rest of its
state (e.g. a fitted VQ codebook); the step merges them back, so params and optimizer state are
plain pytrees that Orbax checkpoints and XLA shards without any NNX object crossing the jit boundary.
"""

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from mmscale.contract import MODALITIES
from mmscale.models.loss import loss_fn


def _token_counts(batch) -> dict:
  """Non-pad positions and raw bytes per modality: the D of the scaling laws (tokens, or raw bytes
  for compression-normalised laws), counted on the global batch."""
  real = batch["segment_ids"] > 0
  counts = {"tokens": jnp.sum(real)}
  for i, m in enumerate(MODALITIES):
    here = real & (batch["modality"] == i)
    counts[f"tokens_{m}"] = jnp.sum(here)
    counts[f"raw_bytes_{m}"] = jnp.sum(jnp.where(here, batch["raw_bytes"], 0.0))
  return counts


def make_steps(graphdef, rest, tx: optax.GradientTransformation, model_cfg):
  """Returns (train_step, eval_step), both un-jitted pure functions. model_cfg: config.model (the
  loss's settings; mmscale/stages.py)."""

  def objective(params, batch, train):
    model = nnx.merge(graphdef, params, rest)
    return loss_fn(model, batch, model_cfg, train=train)

  def train_step(params, opt_state, batch, lr):
    """`lr`: this update's learning rate (a float32 scalar; `tx` ends at a unit rate, see
    mmscale/train/optimizer.py), an input so that one executable serves every schedule."""
    (loss, metrics), grads = jax.value_and_grad(objective, has_aux=True)(params, batch, True)
    updates, opt_state = tx.update(grads, opt_state, params)
    updates = jax.tree.map(lambda u: u * lr.astype(u.dtype), updates)
    params = optax.apply_updates(params, updates)
    metrics = dict(metrics, objective=loss, grad_norm=optax.tree.norm(grads), **_token_counts(batch))
    return params, opt_state, metrics

  def eval_step(params, batch):
    _, metrics = objective(params, batch, False)
    return metrics

  return train_step, eval_step

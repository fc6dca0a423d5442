"""The training objective and its per-modality sums.

Position i predicts position i+1 iff segment_ids[i] == segment_ids[i+1] > 0. The target's modality
decides the loss: text -> cross-entropy on tokens[i+1]; a media modality -> config.model.image_loss:
  none        no loss (text-only objective, the Shukor et al. default);
  next_patch  regression of the next patch, normalised per patch (zero mean, unit variance over its
              P values), scored as a unit-variance Gaussian negative log-likelihood in nats per
              patch: 0.5 * ||pred - target||^2 + 0.5 * P * log(2 pi) (a density, so its "bits per
              raw byte" is a differential code length: comparable across runs, not to text);
  vq          cross-entropy over the k-means code of the next patch, in nats per patch.
Metrics are sums (nll_m, count_m, bytes_m per modality m) so the trainer can add them over batches
and devices and divide: nats per target = nll_m / count_m;
bits per raw byte = nll_m / ln2 / bytes_m.
The optimised loss is the mean text nll plus image_loss_weight times each media modality's mean nll,
plus the MoE auxiliary losses (mean over MoE layers) times their weights.
"""

import math

import jax
import jax.numpy as jnp
import optax

from mmscale.contract import MODALITIES


def _normalise(patches, eps=1e-6):
  mean = jnp.mean(patches, -1, keepdims=True)
  var = jnp.var(patches, -1, keepdims=True)
  return (patches - mean) * jax.lax.rsqrt(var + eps)


def _next_patch_nll(model, modality, pred, target):
  err = pred - _normalise(target)
  return 0.5 * jnp.sum(err * err, -1) + 0.5 * target.shape[-1] * math.log(2 * math.pi)


def _vq_nll(model, modality, pred, target):
  codes = model.codebooks[modality].quantize(target)
  return optax.softmax_cross_entropy_with_integer_labels(pred, codes)


# config.model.image_loss -> the nll of a media position (None: no loss); its keys are the allowed
# image losses (see the module docstring).
IMAGE_LOSSES = {"none": None, "next_patch": _next_patch_nll, "vq": _vq_nll}


def media_nll(model, out, batch, modality: str, kind: str):
  """Per-position nll [B, L-1] of predicting position i+1's patch from position i."""
  pred = out["image_pred"][modality][:, :-1]
  target = batch["patches"][:, 1:].astype(jnp.float32)
  return IMAGE_LOSSES[kind](model, modality, pred, target)


def loss_fn(model, batch, model_cfg, *, train: bool = True):
  """-> (scalar loss incl. aux terms, metrics dict of sums). See the module docstring.
  model_cfg: config.model (its image loss, weights and MoE loss weights), not the run config."""
  m = model_cfg
  out = model(batch, train=train)
  seg, modality = batch["segment_ids"], batch["modality"]
  valid = (seg[:, :-1] == seg[:, 1:]) & (seg[:, 1:] > 0)
  tgt_mod = modality[:, 1:]
  raw = batch["raw_bytes"][:, 1:].astype(jnp.float32)
  metrics = {}
  text_nll = optax.softmax_cross_entropy_with_integer_labels(
      out["logits"][:, :-1], batch["tokens"][:, 1:])
  objective = 0.0
  for i, name in enumerate(MODALITIES):
    where = valid & (tgt_mod == i)
    if name == "text":
      nll = text_nll
      weight = 1.0
    elif name in model.dims.modalities and IMAGE_LOSSES[m.image_loss]:
      nll = media_nll(model, out, batch, name, m.image_loss)
      weight = float(m.image_loss_weight)
    else:
      nll, weight = None, 0.0
    count = jnp.sum(where)
    total = jnp.sum(jnp.where(where, nll, 0.0)) if nll is not None else jnp.zeros(())
    metrics[f"nll_{name}"] = total
    metrics[f"count_{name}"] = count
    metrics[f"bytes_{name}"] = jnp.sum(jnp.where(where, raw, 0.0))
    if weight:
      objective = objective + weight * total / jnp.maximum(count, 1)
  metrics["loss"] = objective
  aux = out["aux"]
  if aux:
    lb, z = jnp.mean(aux["moe_lb_loss"]), jnp.mean(aux["moe_z_loss"])
    total_loss = objective + float(m.moe.lb_weight) * lb + float(m.moe.z_weight) * z
    metrics["moe_lb_loss"], metrics["moe_z_loss"] = lb, z
    metrics["dropped_tokens"] = jnp.sum(aux["dropped"])
    metrics["route_counts"] = aux["routing"]["counts"]
  else:
    total_loss = objective
    metrics["moe_lb_loss"] = metrics["moe_z_loss"] = jnp.zeros(())
    metrics["dropped_tokens"] = jnp.zeros((), jnp.int32)
  return total_loss, metrics

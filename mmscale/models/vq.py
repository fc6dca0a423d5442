"""The VQ image objective's codebook: k-means over training patches, kept as non-trainable state.

The codebook is fitted once, when the model is built, on the media patches of `sample_batches`
(training batches the trainer passes to the model) with scipy's k-means++ (`kmeans2`); it lives in
a `Codebook` variable (not an nnx.Param: the optimizer skips it, the checkpoint keeps it). Without
sample batches (restoring from a checkpoint, or shape-only builds) it starts from random patches and
the checkpoint overwrites it.
"""

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from flax import nnx
from scipy.cluster import vq as scipy_vq

from mmscale.models import config as model_config


class CodebookVar(nnx.Variable):
  """Non-trainable state (checkpointed, excluded from the nnx.Param optimizer filter)."""


class Codebook(nnx.Module):

  def __init__(self, codes):
    self.codes = CodebookVar(jnp.asarray(codes, jnp.float32), out_sharding=(None, None),
                             eager_sharding=False)

  @classmethod
  def fit(cls, model, dims, seed: int, modality, sample_batches, *, rngs):
    """model: config.model; dims: the model's Dims (patch_dim); seed: the run's (k-means)."""
    k, p = int(model.vq_codebook_size), int(dims.patch_dim)
    mod_id = model_config.MODALITIES.index(modality)
    patches = _media_patches(sample_batches, mod_id) if sample_batches is not None else None
    if patches is None:
      if sample_batches is not None:
        logging.warning("vq: no %s patches in the sample batches; random codebook", modality)
      return cls(jax.random.normal(rngs.params(), (k, p), jnp.float32))
    if len(patches) < 4 * k:
      # Too few patches for k clusters: the codebook is the sample patches (drawn with
      # replacement, jittered so no two codes tie); pass more sample batches for a real fit.
      logging.warning("vq: %d %s patches for %d codes; want >= %d", len(patches), modality, k,
                      4 * k)
      rng = np.random.default_rng(seed)
      codes = patches[rng.choice(len(patches), k, replace=len(patches) < k)]
      return cls(codes + 1e-3 * patches.std() * rng.standard_normal(codes.shape))
    codes, _ = scipy_vq.kmeans2(patches.astype(np.float64), k, iter=int(model.vq_iters),
                                minit="++", seed=seed)
    return cls(codes)

  def quantize(self, patches):
    """[..., P] -> [...] int32 index of the nearest code (squared Euclidean distance)."""
    codes = self.codes[...]
    x = patches.astype(jnp.float32)
    dist = (jnp.sum(x * x, -1, keepdims=True) - 2 * x @ codes.T + jnp.sum(codes * codes, -1))
    return jnp.argmin(dist, axis=-1).astype(jnp.int32)


def _media_patches(sample_batches, mod_id):
  rows = [np.asarray(b["patches"])[np.asarray(b["modality"]) == mod_id] for b in sample_batches]
  rows = [r for r in rows if len(r)]
  return np.concatenate(rows) if rows else None

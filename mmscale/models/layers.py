"""Basic layers: bias-free dense maps, embeddings, RMSNorm, SwiGLU.

Every parameter carries logical axis names in its `out_sharding` metadata ("vocab", "embed", "mlp",
"heads", "kv", "patch", ...; "layers" is added by the layer stack). They are logical names, not
mesh axes, so eager sharding is off here: mmscale/parallel.py maps names to the mesh and shards.
"""

import math

import jax
import jax.numpy as jnp
from flax import nnx


def ffn_hidden(width: int, hidden: int, multiple: int) -> int:
  """SwiGLU hidden size: `hidden`, or 8/3 of the width rounded up to a multiple of `multiple`."""
  if hidden:
    return int(hidden)
  return multiple * math.ceil(8 * width / 3 / multiple)


def param(rngs: nnx.Rngs, init, shape, names) -> nnx.Param:
  return nnx.Param(init(rngs.params(), shape, jnp.float32), out_sharding=tuple(names),
                   eager_sharding=False)


def fan_in_init(scale: float, n_in: int):
  """Truncated normal, std = scale / sqrt(fan_in), fan_in = product of the `n_in` leading dims."""
  return nnx.initializers.variance_scaling(
      scale ** 2, "fan_in", "truncated_normal", in_axis=tuple(range(n_in)),
      out_axis=-1)


class Dense(nnx.Module):
  """y = x · W without bias. `shape_in` dims of x are contracted; W is [*shape_in, *shape_out]."""

  def __init__(self, shape_in, shape_out, names, *, rngs, scale=1.0, dtype=jnp.float32):
    shape_in, shape_out = tuple(shape_in), tuple(shape_out)
    self.n_in = len(shape_in)
    self.dtype = dtype
    self.kernel = param(rngs, fan_in_init(scale, self.n_in), shape_in + shape_out, names)

  def __call__(self, x):
    # One 2-D matmul over flattened leading dims: XLA:CPU's backward of a tensordot with several
    # batch-like dims is 1.4-2.7x slower than the same product on [tokens, features].
    kernel = self.kernel[...].astype(self.dtype)
    lead, k_in = x.shape[:x.ndim - self.n_in], kernel.shape[:self.n_in]
    k_out = kernel.shape[self.n_in:]
    x2 = x.astype(self.dtype).reshape(math.prod(lead), math.prod(k_in))
    y = x2 @ kernel.reshape(math.prod(k_in), math.prod(k_out))
    return y.reshape(*lead, *k_out)


class Embed(nnx.Module):
  def __init__(self, vocab, width, *, rngs, scale=1.0, dtype=jnp.float32):
    self.dtype = dtype
    self.embedding = param(rngs, nnx.initializers.normal(scale), (vocab, width), ("vocab", "embed"))

  def __call__(self, tokens):
    return jnp.take(self.embedding[...], tokens, axis=0).astype(self.dtype)


class RMSNorm(nnx.Module):
  def __init__(self, dim, names=("embed",), *, eps=1e-6, dtype=jnp.float32):
    self.eps, self.dtype = eps, dtype
    self.scale = nnx.Param(jnp.ones((dim,), jnp.float32), out_sharding=tuple(names),
                           eager_sharding=False)

  def __call__(self, x):
    # Statistics in float32 whatever the compute dtype.
    x32 = x.astype(jnp.float32)
    y = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
    return (y * self.scale[...]).astype(self.dtype)


class SwiGLU(nnx.Module):
  """Shazeer 2020: down(silu(x·W_gate) * (x·W_up))."""

  def __init__(self, width, hidden, *, rngs, scale=1.0, out_scale=None, dtype=jnp.float32):
    out_scale = scale if out_scale is None else out_scale
    self.gate = Dense((width,), (hidden,), ("embed", "mlp"), rngs=rngs, scale=scale, dtype=dtype)
    self.up = Dense((width,), (hidden,), ("embed", "mlp"), rngs=rngs, scale=scale, dtype=dtype)
    self.down = Dense((hidden,), (width,), ("mlp", "embed"), rngs=rngs, scale=out_scale,
                      dtype=dtype)

  def __call__(self, x):
    return self.down(jax.nn.silu(self.gate(x)) * self.up(x))

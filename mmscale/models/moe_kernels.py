"""Grouped SwiGLU on one device: each routed row through its own expert's FFN.

Rows arrive sorted by expert (group id `se`). Two implementations, chosen by
model.moe.grouped_matmul: jax.lax.ragged_dot, and a MegaBlocks-style block-sparse scan (rows cut
into fixed-size blocks of one expert each, several blocks per scan step as one batched matmul) for
XLA:CPU, whose ragged_dot multiplies every row by every expert.
"""

import math

import jax
import jax.numpy as jnp

from mmscale.errors import ConfigError
from mmscale.models import moe_config


def group_sizes(ids, n):
  return jnp.sum(ids[:, None] == jnp.arange(n, dtype=ids.dtype), axis=0, dtype=jnp.int32)


def _ragged_swiglu(x, rows, se, wg, wu, wd):
  xs = x[rows]
  sizes = group_sizes(se, wg.shape[0])
  g = jax.lax.ragged_dot(xs, wg, sizes)
  u = jax.lax.ragged_dot(xs, wu, sizes)
  return jax.lax.ragged_dot(jax.nn.silu(g) * u, wd, sizes)


def block_size(rows, groups, size=0):
  """Rows per block: `size`, or (0) a power of two in [16, 128] near rows / (4 * groups).

  Each group pads to a whole number of blocks (about groups * b / 2 wasted rows, an eighth of the
  rows under this rule) while larger blocks make more efficient matmuls: on 2 shared CPU cores,
  4096 rows and 8 experts, b = 128 was the fastest, b = 64 about 7 % and b = 32 about 30 % slower
  (benchmarks/bench_moe_layer.py --block-sizes=32,64,128).
  """
  if size:
    return int(size)
  return int(min(128, max(16, 2 ** int(math.log2(max(rows // (4 * groups), 1))))))


def _block_layout(se, n, b, multiple=1):
  """Sorted group ids se [R] (n = not routed, sorted last) -> MegaBlocks layout.

  Each group's rows start a fresh block of b rows; returns the padded slot of each row (nb * b
  for rows not routed), the group of each block, and the number of blocks in use. The static
  block count ceil(R / b) + n, rounded up to a multiple of `multiple`, bounds the padded total, so
  no row is ever dropped; blocks past the used ones get group n - 1 and no rows.
  """
  r = se.shape[0]
  nb = -(-(-(-r // b) + n) // multiple) * multiple
  sizes = group_sizes(se, n)
  padded = (sizes + b - 1) // b * b
  pend = jnp.cumsum(padded)
  shift = (pend - padded) - (jnp.cumsum(sizes) - sizes)  # Padded start - packed start, per group.
  routed = se < n
  slot = jnp.where(routed, jnp.arange(r) + shift[jnp.minimum(se, n - 1)], nb * b)
  bid = jnp.sum(jnp.arange(nb)[:, None] * b >= pend[None, :], axis=1, dtype=jnp.int32)
  return slot, jnp.minimum(bid, n - 1), pend[-1] // b


def _dsilu(g):
  s = jax.nn.sigmoid(g)
  return s * (1 + g * (1 - s))


def _zeros(shape, dtype, *refs):
  """Zeros that vary over the shard_map axes the refs vary over (cond branches must agree)."""
  z = jnp.zeros(shape, dtype)
  for r in refs:
    z = z + jnp.zeros_like(r, dtype=dtype).reshape(-1)[0]
  return z


BLOCKS_PER_STEP = 4  # Blocks per scan step, as one batched matmul: ~10 % faster than 1 on 2 CPU cores.


def _blocks_fwd(xb, bid, wg, wu, wd):
  """xb [S, P, b, D]: S scan steps of P blocks; bid [S, P] the expert of each block."""

  def body(_, inp):
    x, i = inp
    g = jnp.einsum("pbd,pdh->pbh", x, wg[i])
    u = jnp.einsum("pbd,pdh->pbh", x, wu[i])
    return None, (jnp.einsum("pbh,phd->pbd", jax.nn.silu(g) * u, wd[i]), g, u)

  _, (yb, g, u) = jax.lax.scan(body, None, (xb, bid))
  return yb, (xb, bid, g, u, wg, wu, wd)


def _blocks_bwd(res, dy):
  xb, bid, g, u, wg, wu, wd = res
  refs = res + (dy,)
  f32 = dict(preferred_element_type=jnp.float32)

  def body(acc, inp):
    x, i, g, u, dy = inp
    agg, agu, agd = acc
    s = jax.nn.silu(g)
    dh = jnp.einsum("pbd,phd->pbh", dy, wd[i])
    dg, du = (dh * u * _dsilu(g)).astype(x.dtype), (dh * s).astype(x.dtype)
    # Only these blocks' expert slices of the accumulators change (in place in the while loop).
    agd = agd.at[i].add(jnp.einsum("pbh,pbd->phd", s * u, dy, **f32))
    agg = agg.at[i].add(jnp.einsum("pbd,pbh->pdh", x, dg, **f32))
    agu = agu.at[i].add(jnp.einsum("pbd,pbh->pdh", x, du, **f32))
    dx = jnp.einsum("pbh,pdh->pbd", dg, wg[i]) + jnp.einsum("pbh,pdh->pbd", du, wu[i])
    return (agg, agu, agd), dx

  acc = tuple(_zeros(w.shape, jnp.float32, *refs) for w in (wg, wu, wd))
  (agg, agu, agd), dx = jax.lax.scan(body, acc, (xb, bid, g, u, dy))
  return dx, None, agg.astype(wg.dtype), agu.astype(wu.dtype), agd.astype(wd.dtype)


@jax.custom_vjp
def _blocks_swiglu_core(xb, bid, wg, wu, wd):
  return _blocks_fwd(xb, bid, wg, wu, wd)[0]


_blocks_swiglu_core.defvjp(_blocks_fwd, _blocks_bwd)


def _blocks_swiglu(x, rows, se, wg, wu, wd, *, block=0):
  """Block-sparse grouped SwiGLU: each b-row block runs only its own expert's weights.

  A scan over steps of BLOCKS_PER_STEP blocks with a hand-written backward: the automatic transpose
  of `w[i]` in a scan adds a full-size zero-padded gradient per step, while this one updates only
  the steps' expert slices. Blocks past the used ones hold only zero rows, so they add exact zeros.
  """
  n = wg.shape[0]
  b = block_size(rows.shape[0], n, block)
  p = BLOCKS_PER_STEP
  slot, bid, _ = _block_layout(se, n, b, p)
  nb = bid.shape[0]
  # Row of x behind each padded slot (x.shape[0] = padding: out of range, gathers zeros).
  src = jnp.full((nb * b,), x.shape[0], rows.dtype).at[slot].set(rows, mode="drop")
  xb = x.at[src].get(mode="fill", fill_value=0).reshape(nb // p, p, b, -1)
  # Under shard_map every float input must vary over the same mesh axes, so that each cotangent
  # from the hand-written backward has its primal's type; the automatic transpose of this add
  # then does the psum over the axes a weight was replicated on.
  vary = _zeros((), xb.dtype, xb, bid, wg, wu, wd)
  xb, wg, wu, wd = (t + vary for t in (xb, wg, wu, wd))
  yb = _blocks_swiglu_core(xb, bid.reshape(nb // p, p), wg, wu, wd).reshape(nb * b, -1)
  return yb.at[slot].get(mode="fill", fill_value=0)


def grouped_matmul(name="auto") -> str:
  """model.moe.grouped_matmul -> "blocks" | "ragged_dot"; auto picks by jax's default backend.

  XLA:CPU lowers ragged_dot to a dense product with every group (E x the expert FLOPs), so CPU
  gets the block-sparse scan. TPU has a grouped-matmul lowering. XLA:GPU uses cuDNN's grouped
  matmul for the shapes it supports and otherwise also pads to dense (openxla/xla#45999 describes
  the fallback), so check a GPU run with benchmarks/bench_moe_layer.py; the capacity-factor mode
  (model.moe.mode="capacity") is a plain batched matmul everywhere.
  """
  if name == "auto":
    return "blocks" if jax.default_backend() == "cpu" else "ragged_dot"
  if name not in moe_config.GROUPED_MATMULS[1:]:
    raise ConfigError("model.moe.grouped_matmul", name,
                      f"must be one of {', '.join(map(repr, moe_config.GROUPED_MATMULS))}")
  return name


def grouped_swiglu(x, rows, se, ws, grouped, block):
  """FFN_se[i](x[rows[i]]) for group ids se sorted ascending (ws[0].shape[0] = not routed: 0)."""
  if grouped == "blocks":
    return _blocks_swiglu(x, rows, se, *ws, block=block)
  return _ragged_swiglu(x, rows, se, *ws)

"""Grouped SwiGLU on one device: each routed row through its own expert's FFN.

Rows arrive sorted by expert (group id `se`). Two implementations, chosen by
model.moe.grouped_matmul: jax.lax.ragged_dot, and for XLA:CPU, whose ragged_dot multiplies every
row by every expert, "blocks": each expert's rows in blocks of b rows, a loop over the experts and
their blocks with run-time trip counts (so the matmuls cover the routed rows plus under one block
per expert) and each expert's weights sliced once.
"""

import functools
import math

import jax
import jax.numpy as jnp

from mmscale import validation as check


def group_sizes(ids, n):
  return jnp.sum(ids[:, None] == jnp.arange(n, dtype=ids.dtype), axis=0, dtype=jnp.int32)


def _ragged_swiglu(x, rows, se, wg, wu, wd, *, block=0):
  del block  # One ragged product per weight: no blocks.
  xs = x[rows]
  sizes = group_sizes(se, wg.shape[0])
  g = jax.lax.ragged_dot(xs, wg, sizes)
  u = jax.lax.ragged_dot(xs, wu, sizes)
  return jax.lax.ragged_dot(jax.nn.silu(g) * u, wd, sizes)


def block_size(rows, groups, size=0):
  """Rows per block: `size`, or (0) a power of two in [16, 128] near rows / (4 * groups).

  Each expert's last block runs past its rows (about groups * b / 2 wasted rows, an eighth of the
  rows under this rule) while larger blocks make more efficient matmuls and fewer loop steps: on 2
  shared CPU cores, 4096 rows and 8 experts, b = 64, 128 and 256 were within 1 % of each other and
  b = 32 about 30 % slower (fwd+bwd of the kernel alone).
  """
  if size:
    return int(size)
  return int(min(128, max(16, 2 ** int(math.log2(max(rows // (4 * groups), 1))))))


def _dsilu(g):
  s = jax.nn.sigmoid(g)
  return s * (1 + g * (1 - s))


def _zeros(shape, dtype, *refs):
  """Zeros that vary over the shard_map axes the refs vary over (loop carries must agree)."""
  z = jnp.zeros(shape, dtype)
  for r in refs:
    z = z + jnp.zeros_like(r, dtype=dtype).reshape(-1)[0]
  return z


def tail_size(b):
  """Rows per block for an expert's last rows: b / 8 (at least min(b, 8))."""
  return max(b // 8, min(b, 8))


def _each_block(starts, sizes, b, per_expert, block, carry):
  """For each expert e in order: state = per_expert(e); then for each block of its rows
  carry = block(state, start, rows, width, carry) (width: the block's static row count; rows: how
  many of them are e's, the rest belong to the next expert or are padding).

  Loops with run-time trip counts: an expert's rows take floor(size_e / b) blocks of b rows, then
  blocks of tail_size(b) rows, so the work is the routed rows plus under tail_size(b) rows per
  expert, not a static worst case.
  """
  t = tail_size(b)

  def expert(e, carry):
    state, s0, size = per_expert(e), starts[e], sizes[e]
    full = size // b
    carry = jax.lax.fori_loop(0, full, lambda j, c: block(state, s0 + j * b, b, b, c), carry)
    s1, rest = s0 + full * b, size - full * b
    return jax.lax.fori_loop(
        0, (rest + t - 1) // t, lambda j, c: block(state, s1 + j * t, rest - j * t, t, c), carry)

  return jax.lax.fori_loop(0, sizes.shape[0], expert, carry)


def _blocks_fwd(xs, starts, sizes, wg, wu, wd, b):
  """xs [R + b, D]: rows sorted by expert, then b zero rows so every block's slice is in range.

  A block that runs past its expert's rows computes the next rows with this expert's weights;
  experts run in order, so the next expert's blocks overwrite them (and the caller zeroes rows past
  the routed ones).
  """
  refs = (xs, wg, wu, wd)

  def per_expert(e):
    return wg[e], wu[e], wd[e]  # Sliced once per expert, not per block.

  def block(ws, s, _, width, carry):
    g_w, u_w, d_w = ws
    x = jax.lax.dynamic_slice_in_dim(xs, s, width)
    g, u = x @ g_w, x @ u_w
    y = (jax.nn.silu(g) * u) @ d_w
    return tuple(jax.lax.dynamic_update_slice_in_dim(buf, v, s, 0)
                 for buf, v in zip(carry, (y, g, u)))

  r, h = xs.shape[0], wg.shape[-1]
  init = tuple(_zeros((r, k), xs.dtype, *refs) for k in (xs.shape[1], h, h))
  y, g, u = _each_block(starts, sizes, b, per_expert, block, init)
  return y, (xs, starts, sizes, g, u, wg, wu, wd)


def _blocks_bwd(b, res, dy):
  xs, starts, sizes, gs, us, wg, wu, wd = res
  refs = (xs, wg, wu, wd, dy)
  f32 = dict(preferred_element_type=jnp.float32)

  def per_expert(e):
    return e, wg[e], wu[e], wd[e]

  def block(state, s, rows, width, carry):
    e, g_w, u_w, d_w = state
    dxs, agg, agu, agd = carry
    x, g, u, dyb = (jax.lax.dynamic_slice_in_dim(t, s, width) for t in (xs, gs, us, dy))
    # Rows past this expert's belong to the next one: no gradient from them here.
    dyb = jnp.where((jnp.arange(width) < rows)[:, None], dyb, 0)
    si = jax.nn.silu(g)
    dh = dyb @ d_w.T
    dg, du = (dh * u * _dsilu(g)).astype(x.dtype), (dh * si).astype(x.dtype)
    # Only expert e's slice of each accumulator changes (in place in the loop).
    agd = agd.at[e].add(jnp.einsum("bh,bd->hd", si * u, dyb, **f32))
    agg = agg.at[e].add(jnp.einsum("bd,bh->dh", x, dg, **f32))
    agu = agu.at[e].add(jnp.einsum("bd,bh->dh", x, du, **f32))
    dx = dg @ g_w.T + du @ u_w.T
    return jax.lax.dynamic_update_slice_in_dim(dxs, dx, s, 0), agg, agu, agd

  init = (_zeros(xs.shape, xs.dtype, *refs),) + tuple(
      _zeros(w.shape, jnp.float32, *refs) for w in (wg, wu, wd))
  dxs, agg, agu, agd = _each_block(starts, sizes, b, per_expert, block, init)
  return dxs, None, None, agg.astype(wg.dtype), agu.astype(wu.dtype), agd.astype(wd.dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(6,))
def _blocks_swiglu_core(xs, starts, sizes, wg, wu, wd, b):
  return _blocks_fwd(xs, starts, sizes, wg, wu, wd, b)[0]


_blocks_swiglu_core.defvjp(lambda *a: _blocks_fwd(*a), _blocks_bwd)


def _blocks_swiglu(x, rows, se, wg, wu, wd, *, block=0):
  """Grouped SwiGLU in blocks of b rows, each expert's blocks with that expert's weights.

  Loops over the experts, then each expert's blocks (run-time trip counts), and a hand-written
  backward: the automatic transpose of a loop would add a full-size zero-padded weight gradient
  per iteration, while this one updates only the expert's slice in place.
  """
  n, r = wg.shape[0], rows.shape[0]
  b = block_size(r, n, block)
  sizes = group_sizes(se, n)
  starts = jnp.cumsum(sizes) - sizes
  # b rows of padding (index x.shape[0]: out of range, gathers zeros) keep every block in range.
  src = jnp.concatenate([rows, jnp.full((b,), x.shape[0], rows.dtype)])
  xs = x.at[src].get(mode="fill", fill_value=0)
  # Under shard_map every float input must vary over the same mesh axes, so that each cotangent
  # from the hand-written backward has its primal's type; the automatic transpose of this add
  # then does the psum over the axes a weight was replicated on.
  vary = _zeros((), xs.dtype, xs, se, wg, wu, wd)
  xs, wg, wu, wd = (t + vary for t in (xs, wg, wu, wd))
  y = _blocks_swiglu_core(xs, starts, sizes, wg, wu, wd, b)[:r]
  return jnp.where((jnp.arange(r) < jnp.sum(sizes))[:, None], y, 0)  # Not routed: zero.


# model.moe.grouped_matmul -> the grouped SwiGLU it runs; "auto" resolves to one of the others by
# backend (grouped_matmul below), so config.model.moe's validator accepts exactly these names.
GROUPED_MATMULS = {"auto": None, "blocks": _blocks_swiglu, "ragged_dot": _ragged_swiglu}


def grouped_matmul(name="auto") -> str:
  """model.moe.grouped_matmul -> "blocks" | "ragged_dot"; auto picks by jax's default backend.

  XLA:CPU lowers ragged_dot to a dense product with every group (E x the expert FLOPs), so CPU
  gets the block-sparse scan. TPU has a grouped-matmul lowering. XLA:GPU uses cuDNN's grouped
  matmul for the shapes it supports and otherwise also pads to dense (openxla/xla#45999 describes
  the fallback), so check a GPU run with benchmarks/bench_moe_layer.py; the capacity-factor mode
  (model.moe.mode="capacity") is a plain batched matmul everywhere.
  """
  check.choice("model.moe.grouped_matmul", name, GROUPED_MATMULS)
  if name == "auto":
    return "blocks" if jax.default_backend() == "cpu" else "ragged_dot"
  return name


def grouped_swiglu(x, rows, se, ws, grouped, block):
  """FFN_se[i](x[rows[i]]) for group ids se sorted ascending (ws[0].shape[0] = not routed: 0)."""
  return GROUPED_MATMULS[grouped](x, rows, se, *ws, block=block)

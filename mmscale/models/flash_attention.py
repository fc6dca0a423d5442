"""Pallas flash attention for the native-multimodal mask, without materialising the [L, L] mask.

Both masks of mmscale.models.attention are an interval within a packed segment:
  allowed(q, k) = seg[q] == seg[k] > 0 and lo[q] <= k <= hi[q]
with per-query int32 bounds from `mask_intervals` (decoder: from the segment start to q, or to the
end of q's media block; encoder: q's media block, empty for text and padding). The kernels follow
the structure of jax.experimental.pallas.ops.gpu.attention (Triton backend): a forward with online
softmax that saves the base-2 logsumexp, a delta = rowsum(o * do) preprocess, and backward kernels
for dk/dv (one program per kv block) and dq (one program per q block). The interval drives block
skipping: each program only loops over the blocks its rows' intervals can reach. Rows without an
allowed key (padding; text rows of the encoder) give output 0 and zero gradient.

On CPU the kernels run with `interpret=True` (tests); elsewhere they compile with Triton.
"""

import functools
import math

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as plgpu

# Finite fill for masked logits: exp2(NEG - m) underflows to 0 and NEG - NEG stays finite (no NaN).
NEG = -0.7 * float(jnp.finfo(jnp.float32).max)


def _boundary(x, first):
  """[B, L] bool: x changes between position q and its neighbour (q-1 if first else q+1)."""
  if first:
    return jnp.concatenate([jnp.ones_like(x[:, :1], bool), x[:, 1:] != x[:, :-1]], axis=1)
  return jnp.concatenate([x[:, 1:] != x[:, :-1], jnp.ones_like(x[:, :1], bool)], axis=1)


def mask_intervals(segment_ids, block_ids, kind: str):
  """[B, L] ids -> (lo, hi) int32 [B, L] such that the decoder/encoder mask of attention.py is
  allowed(q, k) = seg[q] == seg[k] > 0 and lo[q] <= k <= hi[q].

  Media blocks are maximal runs of equal block id > 0 inside one segment (the packer gives every
  media item its own contiguous id and never cuts one across segments). Decoder lo is the segment
  start rather than 0: same mask, but the kernel then skips kv blocks of earlier packed segments.
  Rows with no allowed key get the empty interval lo = 1, hi = 0.
  """
  if kind not in ("decoder", "encoder"):
    raise ValueError(f"kind must be 'decoder' or 'encoder', got {kind!r}")
  segment_ids = jnp.asarray(segment_ids, jnp.int32)
  block_ids = jnp.asarray(block_ids, jnp.int32)
  if segment_ids.ndim != 2 or segment_ids.shape != block_ids.shape:
    raise ValueError(f"segment_ids and block_ids must both be [B, L], got {segment_ids.shape} "
                     f"and {block_ids.shape}")
  n = segment_ids.shape[1]
  pos = jnp.broadcast_to(jnp.arange(n, dtype=jnp.int32), segment_ids.shape)
  seg_start = lax.cummax(jnp.where(_boundary(segment_ids, True), pos, 0), axis=1)
  # A segment change also ends a block, so equal ids in adjacent segments stay apart.
  starts = _boundary(block_ids, True) | _boundary(segment_ids, True)
  ends = _boundary(block_ids, False) | _boundary(segment_ids, False)
  blk_start = lax.cummax(jnp.where(starts, pos, 0), axis=1)
  blk_end = lax.cummin(jnp.where(ends, pos, n - 1), axis=1, reverse=True)
  media = block_ids > 0
  if kind == "decoder":
    live = segment_ids > 0
    lo, hi = seg_start, jnp.where(media, blk_end, pos)
  else:
    live = (segment_ids > 0) & media
    lo, hi = blk_start, blk_end
  return jnp.where(live, lo, 1), jnp.where(live, hi, 0)


def _row_mask(q_seg, q_lo, q_hi, k_seg, k_pos):
  """[bq, bk] allowed(q, k) from the q block's ids/bounds and the kv block's ids/positions."""
  same = (q_seg[:, None] == k_seg[None, :]) & (q_seg[:, None] > 0)
  inside = (q_lo[:, None] <= k_pos[None, :]) & (k_pos[None, :] <= q_hi[:, None])
  return same & inside


def _kv_block_range(q_seg, q_lo, q_hi, seq_len, block_k):
  """[first, end) kv blocks that the live rows of a q block can reach (empty if none is live)."""
  live = (q_seg > 0) & (q_lo <= q_hi)
  first = jnp.min(jnp.where(live, jnp.maximum(q_lo, 0), seq_len))
  last = jnp.max(jnp.where(live, jnp.minimum(q_hi, seq_len - 1), -1))
  return lax.div(first, block_k), lax.div(last + block_k, block_k)


def _fwd_kernel(q_ref, k_ref, v_ref, seg_ref, lo_ref, hi_ref, o_ref, lse_ref, *, sm_scale,
                block_q, block_k):
  seq_len, head_dim = k_ref.shape
  start_q = pl.program_id(0)
  q_slice = pl.ds(start_q * block_q, block_q)
  q = q_ref[...]
  q_seg, q_lo, q_hi = seg_ref[q_slice], lo_ref[q_slice], hi_ref[q_slice]
  qk_scale = sm_scale * math.log2(math.e)  # Base-2 logits: exp2 is the cheap instruction.

  def body(start_k, carry):
    o_prev, m_prev, l_prev = carry
    k_slice = pl.ds(start_k * block_k, block_k)
    k = k_ref[k_slice, :]
    s = plgpu.dot(q, k.T) * qk_scale  # [block_q, block_k] f32
    mask = _row_mask(q_seg, q_lo, q_hi, seg_ref[k_slice], start_k * block_k + jnp.arange(block_k))
    s = jnp.where(mask, s, NEG)
    m_next = jnp.maximum(m_prev, jnp.max(s, axis=-1))
    # Explicit zero for masked keys, so a row whose keys are all masked so far keeps l = 0.
    p = jnp.where(mask, jnp.exp2(s - m_next[:, None]), 0.0)
    corr = jnp.exp2(m_prev - m_next)
    v = v_ref[k_slice, :]
    o_next = corr[:, None] * o_prev + plgpu.dot(p.astype(v.dtype), v)
    return o_next, m_next, corr * l_prev + jnp.sum(p, axis=-1)

  o = jnp.zeros((block_q, head_dim), jnp.float32)
  m = jnp.full((block_q,), NEG, jnp.float32)
  l = jnp.zeros((block_q,), jnp.float32)
  lower, upper = _kv_block_range(q_seg, q_lo, q_hi, seq_len, block_k)
  o, m, l = lax.fori_loop(lower, upper, body, (o, m, l))
  l_safe = jnp.where(l > 0, l, 1.0)  # l == 0 exactly for rows without an allowed key: output 0.
  o_ref[...] = (o / l_safe[:, None]).astype(o_ref.dtype)
  lse_ref[...] = m + jnp.log2(l_safe)


def _delta_kernel(o_ref, do_ref, delta_ref):
  o = o_ref[...].astype(jnp.float32)
  do = do_ref[...].astype(jnp.float32)
  delta_ref[...] = jnp.sum(o * do, axis=1)


def _dkv_kernel(q_ref, k_ref, v_ref, seg_ref, lo_ref, hi_ref, blo_ref, bhi_ref, do_ref, lse_ref,
                delta_ref, dk_ref, dv_ref, *, sm_scale, block_q, block_k, num_q_blocks):
  block_kv, head_dim = k_ref.shape
  start_k = pl.program_id(0)
  k0 = start_k * block_k
  k_slice = pl.ds(k0, block_k)
  k, v = k_ref[...], v_ref[...]
  k_seg, k_pos = seg_ref[k_slice], k0 + jnp.arange(block_k)
  qk_scale = sm_scale * math.log2(math.e)

  # Loop bounds: first and last q block whose [min lo, max hi] (precomputed) meets this kv block.
  blo, bhi = blo_ref[...], bhi_ref[...]
  idx = jnp.arange(blo.shape[0])
  touch = (blo <= k0 + block_k - 1) & (bhi >= k0)
  lower = jnp.min(jnp.where(touch, idx, num_q_blocks))
  upper = jnp.max(jnp.where(touch, idx, -1)) + 1

  def block(start_q, q_seg, q_lo, q_hi, carry):
    dk, dv = carry
    q_slice = pl.ds(start_q * block_q, block_q)
    q, do = q_ref[q_slice, :], do_ref[q_slice, :]
    mask = _row_mask(q_seg, q_lo, q_hi, k_seg, k_pos)
    s = plgpu.dot(q, k.T) * qk_scale
    p = jnp.where(mask, jnp.exp2(s - lse_ref[q_slice][:, None]), 0.0)
    dv = dv + plgpu.dot(p.astype(do.dtype).T, do)
    dp = plgpu.dot(do, v.T) - delta_ref[q_slice][:, None]
    ds = p * dp * sm_scale
    return dk + plgpu.dot(ds.astype(q.dtype).T, q), dv

  def body(start_q, carry):
    # Between the bounds, skip q blocks that miss this kv block (non-monotone intervals).
    q_slice = pl.ds(start_q * block_q, block_q)
    q_seg, q_lo, q_hi = seg_ref[q_slice], lo_ref[q_slice], hi_ref[q_slice]
    live = (q_seg > 0) & (q_lo <= q_hi)
    hit = ((jnp.min(jnp.where(live, q_lo, k0 + block_k)) <= k0 + block_k - 1)
           & (jnp.max(jnp.where(live, q_hi, -1)) >= k0))
    return lax.cond(hit, functools.partial(block, start_q, q_seg, q_lo, q_hi), lambda c: c, carry)

  dk = jnp.zeros((block_kv, head_dim), jnp.float32)
  dv = jnp.zeros((block_kv, head_dim), jnp.float32)
  dk, dv = lax.fori_loop(lower, upper, body, (dk, dv))
  dk_ref[...] = dk.astype(dk_ref.dtype)
  dv_ref[...] = dv.astype(dv_ref.dtype)


def _dq_kernel(q_ref, k_ref, v_ref, seg_ref, lo_ref, hi_ref, do_ref, lse_ref, delta_ref, dq_ref,
               *, sm_scale, block_q, block_k):
  seq_len, head_dim = k_ref.shape
  start_q = pl.program_id(0)
  q_slice = pl.ds(start_q * block_q, block_q)
  q, do = q_ref[...], do_ref[...]
  q_seg, q_lo, q_hi = seg_ref[q_slice], lo_ref[q_slice], hi_ref[q_slice]
  lse, delta = lse_ref[...], delta_ref[...]
  qk_scale = sm_scale * math.log2(math.e)

  def body(start_k, dq):
    k_slice = pl.ds(start_k * block_k, block_k)
    k, v = k_ref[k_slice, :], v_ref[k_slice, :]
    mask = _row_mask(q_seg, q_lo, q_hi, seg_ref[k_slice], start_k * block_k + jnp.arange(block_k))
    s = plgpu.dot(q, k.T) * qk_scale
    p = jnp.where(mask, jnp.exp2(s - lse[:, None]), 0.0)
    dp = plgpu.dot(do, v.T) - delta[:, None]
    ds = p * dp * sm_scale
    return dq + plgpu.dot(ds.astype(k.dtype), k)

  lower, upper = _kv_block_range(q_seg, q_lo, q_hi, seq_len, block_k)
  dq = lax.fori_loop(lower, upper, body, jnp.zeros((block_q, head_dim), jnp.float32))
  dq_ref[...] = dq.astype(dq_ref.dtype)


def _params(head_dim, block_a, block_b, num_stages=2):
  warps = 4 if head_dim <= 64 and block_a * block_b <= 64 * 64 else 8
  return plgpu.CompilerParams(num_warps=warps, num_stages=num_stages)


def _specs(seq_len, head_dim, block):
  """BlockSpecs on a (blocks, B, H) grid: one [block, D] tile, a whole [L, D] row, a whole [L]
  id row, a whole [L] per-head stat row and one [block] per-head stat tile."""
  tile = pl.BlockSpec((None, block, None, head_dim), lambda i, b, h: (b, i, h, 0))
  full = pl.BlockSpec((None, seq_len, None, head_dim), lambda i, b, h: (b, 0, h, 0))
  ids = pl.BlockSpec((None, seq_len), lambda i, b, h: (b, 0))
  stat = pl.BlockSpec((None, None, seq_len), lambda i, b, h: (b, h, 0))
  stat_tile = pl.BlockSpec((None, None, block), lambda i, b, h: (b, h, i))
  return tile, full, ids, stat, stat_tile


def _forward(q, k, v, seg, lo, hi, sm_scale, block_q, block_k, interpret):
  batch, seq_len, heads, head_dim = q.shape
  tile, full, ids, _, stat_tile = _specs(seq_len, head_dim, block_q)
  return pl.pallas_call(
      functools.partial(_fwd_kernel, sm_scale=sm_scale, block_q=block_q, block_k=block_k),
      grid=(seq_len // block_q, batch, heads),
      in_specs=[tile, full, full, ids, ids, ids],
      out_specs=[tile, stat_tile],
      out_shape=[jax.ShapeDtypeStruct(q.shape, q.dtype),
                 jax.ShapeDtypeStruct((batch, heads, seq_len), jnp.float32)],
      compiler_params=_params(head_dim, block_q, block_k),
      interpret=interpret,
      name="mm_flash_forward",
  )(q, k, v, seg, lo, hi)


def _q_block_bounds(seg, lo, hi, block_q):
  """[B, P] min lo / max hi over the live rows of each q block; P = q blocks padded to a power of
  two (Triton tiles) with empty entries (L, -1)."""
  batch, seq_len = seg.shape
  nq = seq_len // block_q
  live = (seg > 0) & (lo <= hi)
  blo = jnp.where(live, lo, seq_len).reshape(batch, nq, block_q).min(-1)
  bhi = jnp.where(live, hi, -1).reshape(batch, nq, block_q).max(-1)
  pad = max(16, pl.next_power_of_2(nq)) - nq
  blo = jnp.pad(blo, ((0, 0), (0, pad)), constant_values=seq_len)
  bhi = jnp.pad(bhi, ((0, 0), (0, pad)), constant_values=-1)
  return blo, bhi


def _backward(q, k, v, seg, lo, hi, o, lse, do, sm_scale, block_q, block_k, interpret):
  batch, seq_len, heads, head_dim = q.shape
  q_tile, full, ids, stat, q_stat = _specs(seq_len, head_dim, block_q)
  k_tile = _specs(seq_len, head_dim, block_k)[0]
  grid_q, grid_k = (seq_len // block_q, batch, heads), (seq_len // block_k, batch, heads)
  delta = pl.pallas_call(
      _delta_kernel,
      grid=grid_q,
      in_specs=[q_tile, q_tile],
      out_specs=q_stat,
      out_shape=jax.ShapeDtypeStruct(lse.shape, jnp.float32),
      compiler_params=plgpu.CompilerParams(num_warps=4, num_stages=3),
      interpret=interpret,
      name="mm_flash_delta",
  )(o, do)
  blo, bhi = _q_block_bounds(seg, lo, hi, block_q)
  bounds = pl.BlockSpec((None, blo.shape[1]), lambda i, b, h: (b, 0))
  dk, dv = pl.pallas_call(
      functools.partial(_dkv_kernel, sm_scale=sm_scale, block_q=block_q, block_k=block_k,
                        num_q_blocks=seq_len // block_q),
      grid=grid_k,
      in_specs=[full, k_tile, k_tile, ids, ids, ids, bounds, bounds, full, stat, stat],
      out_specs=[k_tile, k_tile],
      out_shape=[jax.ShapeDtypeStruct(k.shape, k.dtype), jax.ShapeDtypeStruct(v.shape, v.dtype)],
      compiler_params=_params(head_dim, block_q, block_k),
      interpret=interpret,
      name="mm_flash_dkv",
  )(q, k, v, seg, lo, hi, blo, bhi, do, lse, delta)
  dq = pl.pallas_call(
      functools.partial(_dq_kernel, sm_scale=sm_scale, block_q=block_q, block_k=block_k),
      grid=grid_q,
      in_specs=[q_tile, full, full, ids, ids, ids, q_tile, q_stat, q_stat],
      out_specs=q_tile,
      out_shape=jax.ShapeDtypeStruct(q.shape, q.dtype),
      compiler_params=_params(head_dim, block_q, block_k),
      interpret=interpret,
      name="mm_flash_dq",
  )(q, k, v, seg, lo, hi, do, lse, delta)
  return dq, dk, dv


@functools.partial(jax.custom_vjp, nondiff_argnums=(6, 7, 8))
def _flash(q, k, v, seg, lo, hi, sm_scale, blocks, interpret):
  return _forward(q, k, v, seg, lo, hi, sm_scale, *blocks[:2], interpret)[0]


def _flash_fwd(q, k, v, seg, lo, hi, sm_scale, blocks, interpret):
  o, lse = _forward(q, k, v, seg, lo, hi, sm_scale, *blocks[:2], interpret)
  return o, (q, k, v, seg, lo, hi, o, lse)


def _flash_bwd(sm_scale, blocks, interpret, res, do):
  q, k, v, seg, lo, hi, o, lse = res
  dq, dk, dv = _backward(q, k, v, seg, lo, hi, o, lse, do.astype(q.dtype), sm_scale, *blocks[2:],
                         interpret)
  return dq, dk, dv, None, None, None


_flash.defvjp(_flash_fwd, _flash_bwd)


def _is_pow2(n):
  return n > 0 and n & (n - 1) == 0


BLOCK = 64  # Default q and kv tile: Triton-friendly for head_dim 64-128 on an H100.


def _tile_problem(name: str, block: int, seq_len: int) -> str | None:
  """Why a `block`-row tile (clamped to L) cannot cover `seq_len`; None when it can."""
  b = min(int(block), seq_len)
  if not (_is_pow2(b) and b >= 16):
    return f"{name} (clamped to L) must be a power of two >= 16, got {b}"
  if seq_len % b:
    return f"sequence length {seq_len} must be a multiple of {name}={b}"
  return None


def seq_len_problem(seq_len: int, block: int = BLOCK) -> str | None:
  """Why the default tiles cannot cover `seq_len` (None when they can), for config validation."""
  if _tile_problem("block", block, seq_len):
    return f"must be a multiple of {block} (or 16 or 32) for the flash kernel's {block}-row tiles"
  return None


def flash_attention(q, k, v, segment_ids, lo, hi, *, sm_scale=None, block_q=BLOCK, block_k=BLOCK,
                    block_q_bwd=None, block_k_bwd=None, interpret=None):
  """Attention with allowed(q, k) = seg[q] == seg[k] > 0 and lo[q] <= k <= hi[q].

  q, k, v: [B, L, H, D] (jax.nn.dot_product_attention's layout); segment_ids, lo, hi: [B, L] ints
  (lo, hi from `mask_intervals`). Returns [B, L, H, D] in q's dtype; rows without an allowed key
  are 0. Differentiable in q, k, v (Pallas backward). sm_scale defaults to 1/sqrt(D). block_q and
  block_k tile the forward; the backward kernels use block_q_bwd/block_k_bwd (default: the same).
  Blocks are clamped to L, must be powers of two >= 16 (Triton dot tiles) and divide L. Any
  head_dim up to 256 works (padded with zeros to the next power of two >= 16 inside).
  interpret=None runs the kernels in the Pallas interpreter on CPU and compiles them (Triton)
  elsewhere.
  """
  if q.ndim != 4:
    raise ValueError(f"q must be [B, L, H, D], got shape {q.shape}")
  if k.shape != q.shape or v.shape != q.shape:
    raise ValueError(f"q, k and v must have the same [B, L, H, D] shape, got {q.shape}, "
                     f"{k.shape}, {v.shape}")
  batch, seq_len, _, head_dim = q.shape
  for name, x in (("segment_ids", segment_ids), ("lo", lo), ("hi", hi)):
    if jnp.shape(x) != (batch, seq_len):
      raise ValueError(f"{name} must be [B, L] = {(batch, seq_len)}, got {jnp.shape(x)}")
    if not jnp.issubdtype(jnp.result_type(x), jnp.integer):
      raise ValueError(f"{name} must be integer, got {jnp.result_type(x)}")
  if not 1 <= head_dim <= 256:
    raise ValueError(f"head_dim must be in [1, 256], got {head_dim}")
  blocks = (block_q, block_k, block_q if block_q_bwd is None else block_q_bwd,
            block_k if block_k_bwd is None else block_k_bwd)
  for name, b in zip(("block_q", "block_k", "block_q_bwd", "block_k_bwd"), blocks):
    problem = _tile_problem(name, b, seq_len)
    if problem:
      raise ValueError(problem)
  blocks = tuple(min(int(b), seq_len) for b in blocks)
  if sm_scale is None:
    sm_scale = 1.0 / math.sqrt(head_dim)
  backend = jax.default_backend()
  if interpret is None:
    interpret = backend == "cpu"
  if not interpret and backend not in ("gpu", "cpu"):  # cpu: lowering for a GPU target (tests).
    raise ValueError(f"the flash kernel is written for Triton (GPU); on {backend!r} use "
                     "model.attention_impl='xla' (or interpret=True)")
  as_i32 = lambda x: jnp.asarray(x, jnp.int32)
  # Triton's dot tiles want a power-of-two head_dim (>= 16): zero columns change no q.k product
  # and give zero output columns, cut off again below (the paper's 1.63B has head_dim 92).
  padded = max(16, pl.next_power_of_2(head_dim))
  if padded != head_dim:
    q, k, v = (jnp.pad(x, ((0, 0), (0, 0), (0, 0), (0, padded - head_dim))) for x in (q, k, v))
  out = _flash(q, k, v, as_i32(segment_ids), as_i32(lo), as_i32(hi), float(sm_scale), blocks,
               bool(interpret))
  return out[..., :head_dim]

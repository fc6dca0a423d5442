"""Flash attention (Pallas, interpret mode on CPU) against attention.py's dense-mask reference."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmscale.models import attention
from mmscale.models import flash_attention as fa

DENSE = {"decoder": attention.decoder_mask, "encoder": attention.encoder_mask}


def packed_ids(rng, b, n, per_row_blocks=True):
  """Random packed rows: segments of random length, each a random mix of text runs and contiguous
  media blocks, then trailing padding. Block ids are unique per row (as the packer makes them) or,
  if not per_row_blocks, restart in each segment (so equal ids can meet at a segment boundary)."""
  seg = np.zeros((b, n), np.int32)
  blk = np.zeros((b, n), np.int32)
  for r in range(b):
    end = n - int(rng.integers(0, n // 4))  # Trailing padding.
    pos, s, bid = 0, 0, 0
    while pos < end:
      s += 1
      seg_end = min(end, pos + int(rng.integers(1, n // 2)))
      seg[r, pos:seg_end] = s
      if not per_row_blocks:
        bid = 0
      while pos < seg_end:
        run = min(seg_end - pos, int(rng.integers(1, 9)))
        if rng.random() < 0.5:
          bid += 1
          blk[r, pos:pos + run] = bid
        pos += run
  return seg, blk


def interval_mask(seg, lo, hi):
  n = seg.shape[1]
  k = jnp.arange(n)[None, None, :]
  same = (seg[:, :, None] == seg[:, None, :]) & (seg[:, :, None] > 0)
  return same & (lo[:, :, None] <= k) & (k <= hi[:, :, None])


@pytest.mark.parametrize("kind", ["decoder", "encoder"])
@pytest.mark.parametrize("seed", range(4))
def test_mask_intervals_equal_dense_masks(kind, seed):
  rng = np.random.default_rng(seed)
  seg, blk = packed_ids(rng, 8, 96, per_row_blocks=seed % 2 == 0)
  lo, hi = fa.mask_intervals(seg, blk, kind)
  assert lo.dtype == hi.dtype == jnp.int32
  np.testing.assert_array_equal(interval_mask(seg, lo, hi), DENSE[kind](seg, blk)[:, 0])
  # hi is non-decreasing over live decoder rows: keeps the kernel's block ranges tight (correctness
  # does not depend on it).
  if kind == "decoder":
    live = np.asarray(seg) > 0
    for r in range(seg.shape[0]):
      assert np.all(np.diff(np.asarray(hi)[r][live[r]]) >= 0)


def test_mask_intervals_fixed_batch():
  seg = np.array([[1, 1, 1, 1, 1, 2, 2, 2, 0, 0]])
  blk = np.array([[0, 3, 3, 0, 4, 4, 4, 0, 0, 0]])  # Block 4 would cross segments: it is cut.
  lo, hi = fa.mask_intervals(seg, blk, "decoder")
  np.testing.assert_array_equal(lo, [[0, 0, 0, 0, 0, 5, 5, 5, 1, 1]])
  np.testing.assert_array_equal(hi, [[0, 2, 2, 3, 4, 6, 6, 7, 0, 0]])
  lo, hi = fa.mask_intervals(seg, blk, "encoder")
  np.testing.assert_array_equal(lo, [[1, 1, 1, 1, 4, 5, 5, 1, 1, 1]])
  np.testing.assert_array_equal(hi, [[0, 2, 2, 0, 4, 6, 6, 0, 0, 0]])
  with pytest.raises(ValueError, match="kind"):
    fa.mask_intervals(seg, blk, "causal")


def qkv(rng, b, n, h, d, dtype=jnp.float32):
  return [jnp.asarray(rng.normal(size=(b, n, h, d)), dtype) for _ in range(3)]


def reference(q, k, v, mask):
  f32 = [x.astype(jnp.float32) for x in (q, k, v)]
  return jax.nn.dot_product_attention(*f32, mask=mask)


def valid_rows(mask):
  """[B, L, 1, 1] bool: rows with at least one allowed key."""
  return jnp.any(mask[:, 0], axis=-1)[:, :, None, None]


CASES = [  # kind, L, H, D, block_q, block_k, seed
    ("decoder", 64, 2, 16, 16, 16, 0),
    ("decoder", 128, 2, 32, 32, 16, 1),
    ("encoder", 64, 2, 32, 16, 32, 2),
    ("encoder", 128, 1, 16, 32, 32, 3),
    ("decoder", 64, 2, 24, 32, 16, 4),  # head_dim 24: zero-padded to 32 inside.
]


@pytest.mark.parametrize("kind,n,h,d,bq,bk,seed", CASES)
def test_forward_matches_dense(kind, n, h, d, bq, bk, seed):
  rng = np.random.default_rng(seed)
  seg, blk = packed_ids(rng, 2, n)
  q, k, v = qkv(rng, 2, n, h, d)
  lo, hi = fa.mask_intervals(seg, blk, kind)
  out = fa.flash_attention(q, k, v, seg, lo, hi, block_q=bq, block_k=bk)
  mask = DENSE[kind](seg, blk)
  valid = valid_rows(mask)
  assert out.shape == q.shape and out.dtype == q.dtype
  assert not bool(jnp.all(valid)) and bool(jnp.any(valid))  # Both kinds of row are exercised.
  np.testing.assert_allclose(jnp.where(valid, out, 0),
                             jnp.where(valid, reference(q, k, v, mask), 0),
                             atol=1e-5, rtol=1e-5)
  np.testing.assert_array_equal(jnp.where(valid, 0, out), 0)


# Jitted, as in a train step: one compiled program per attention function instead of the
# interpreted kernels' ops dispatched one by one (about 40 % of this file's CPU seconds); `fn` is
# static, so the same kernel's gradients at another cotangent reuse the compiled program.
@functools.partial(jax.jit, static_argnums=0)
def grads(fn, q, k, v, ct):
  return jax.grad(lambda q, k, v: jnp.sum(fn(q, k, v).astype(jnp.float32) * ct), (0, 1, 2))(q, k, v)


@pytest.mark.parametrize("kind,n,h,d,bq,bk,seed", CASES)
def test_gradients_match_dense(kind, n, h, d, bq, bk, seed):
  rng = np.random.default_rng(100 + seed)
  seg, blk = packed_ids(rng, 2, n)
  q, k, v = qkv(rng, 2, n, h, d)
  lo, hi = fa.mask_intervals(seg, blk, kind)
  mask = DENSE[kind](seg, blk)
  valid = valid_rows(mask)
  ct = jnp.asarray(rng.normal(size=q.shape), jnp.float32)
  flash = lambda q, k, v: fa.flash_attention(q, k, v, seg, lo, hi, block_q=bq, block_k=bk)
  got = grads(flash, q, k, v, ct * valid)
  want = grads(lambda q, k, v: reference(q, k, v, mask), q, k, v, ct * valid)
  for g, w in zip(got, want):
    np.testing.assert_allclose(g, w, atol=1e-4, rtol=1e-4)
  # Rows without an allowed key contribute nothing: the full cotangent gives the same gradients.
  full = grads(flash, q, k, v, ct)
  for g, f in zip(got, full):
    assert bool(jnp.all(jnp.isfinite(f)))
    np.testing.assert_allclose(f, g, atol=1e-6)


def test_block_skipping_with_poisoned_blocks():
  """Encoder mask whose media blocks are aligned to 16-blocks: [0, 16) and [32, 48) are media,
  [16, 32) text, [48, 64) padding. A q block's interval then touches only its own kv block, so
  NaNs in q, k, v and the cotangent at the other positions are never read: any visit of a block
  outside the intervals would turn outputs or gradients into NaN."""
  n, bq = 64, 16
  seg = np.ones((2, n), np.int32)
  seg[:, 48:] = 0
  seg[1, 24:] = 2  # Row 1: a second packed segment starting inside the text block.
  blk = np.zeros((2, n), np.int32)
  blk[:, 0:16], blk[:, 32:48] = 1, 2
  rng = np.random.default_rng(7)
  q, k, v = qkv(rng, 2, n, 2, 16)
  ct = jnp.asarray(rng.normal(size=q.shape), jnp.float32)
  lo, hi = fa.mask_intervals(seg, blk, "encoder")
  mask = DENSE["encoder"](seg, blk)
  live = jnp.asarray(blk > 0)[:, :, None, None]
  poison = lambda x: jnp.where(live, x, jnp.nan)
  flash = lambda q, k, v: fa.flash_attention(q, k, v, seg, lo, hi, block_q=bq, block_k=bq)
  out = flash(poison(q), poison(k), poison(v))
  np.testing.assert_allclose(out, jnp.where(live, reference(q, k, v, mask), 0), atol=1e-5)
  got = grads(flash, poison(q), poison(k), poison(v), poison(ct))
  want = grads(lambda q, k, v: reference(q, k, v, mask), q, k, v, ct * live)
  for g, w in zip(got, want):
    np.testing.assert_allclose(g, jnp.where(live, w, 0), atol=1e-4)


def test_arbitrary_intervals_and_non_monotone_skip():
  """The kernel takes any per-row [lo, hi] (incl. empty and out-of-range ones), not only those of
  mask_intervals. Row intervals here are non-monotone: q blocks 0 and 2 read kv block 1, q block 1
  only kv block 3; q block 1 and the cotangent are poisoned outside kv block 3's readers, so the
  dk/dv program of kv block 1 must skip q block 1 inside its loop bounds."""
  n, b = 64, 16
  rng = np.random.default_rng(11)
  seg = np.ones((1, n), np.int32)
  lo = np.full((1, n), 16, np.int32)
  hi = np.full((1, n), 31, np.int32)
  lo[:, 16:32], hi[:, 16:32] = 48, 70  # hi beyond L is clipped by the mask itself.
  lo[:, 5], hi[:, 5] = 9, 3  # Empty.
  lo[:, 40:44], hi[:, 40:44] = -5, 20  # Reaches kv blocks 0 and 1.
  q, k, v = qkv(rng, 1, n, 2, 16)
  ct = jnp.asarray(rng.normal(size=q.shape), jnp.float32)
  mask = interval_mask(seg, lo, hi)[:, None]
  valid = valid_rows(mask)
  flash = lambda q, k, v: fa.flash_attention(q, k, v, seg, lo, hi, block_q=b, block_k=b)
  np.testing.assert_allclose(jnp.where(valid, flash(q, k, v), 0),
                             jnp.where(valid, reference(q, k, v, mask), 0), atol=1e-5)
  got = grads(flash, q, k, v, ct)
  want = grads(lambda q, k, v: reference(q, k, v, mask), q, k, v, ct * valid)
  for g, w in zip(got, want):
    np.testing.assert_allclose(g, w, atol=1e-4)
  # Poison q block 1 (rows 16..31) except in what kv block 3 (its only reader) computes: its dk/dv
  # go NaN, every other gradient must stay exact.
  blk1 = (jnp.arange(n) // b == 1)[None, :, None, None]
  got = grads(flash, jnp.where(blk1, jnp.nan, q), k, v, jnp.where(blk1, jnp.nan, ct))
  kv3 = (jnp.arange(n) // b == 3)[None, :, None, None]
  np.testing.assert_allclose(jnp.where(blk1, 0, got[0]), jnp.where(blk1, 0, want[0]), atol=1e-4)
  for g, w in zip(got[1:], want[1:]):
    np.testing.assert_allclose(jnp.where(kv3, 0, g), jnp.where(kv3, 0, w), atol=1e-4)


def test_decoder_skips_earlier_segments_and_padding():
  """Two packed segments on block boundaries plus padding: q blocks of the second segment never
  read the first segment's kv blocks, and nothing reads the padding (both poisoned)."""
  n = 64
  seg = np.zeros((1, n), np.int32)
  seg[:, :16], seg[:, 16:48] = 1, 2
  blk = np.zeros((1, n), np.int32)
  blk[:, 20:28] = 5
  rng = np.random.default_rng(8)
  q, k, v = qkv(rng, 1, n, 2, 32)
  lo, hi = fa.mask_intervals(seg, blk, "decoder")
  mask = DENSE["decoder"](seg, blk)
  out_ref = reference(q, k, v, mask)
  # Poisoning segment 1's keys and values changes nothing for segment 2 and the padding rows.
  first, pad = (seg == 1)[:, :, None, None], (seg == 0)[:, :, None, None]
  k2 = jnp.where(first | pad, jnp.nan, k)
  v2 = jnp.where(first | pad, jnp.nan, v)
  q2 = jnp.where(pad, jnp.nan, q)
  out = fa.flash_attention(q2, k2, v2, seg, lo, hi, block_q=16, block_k=16)
  second = (seg == 2)[:, :, None, None]
  np.testing.assert_allclose(jnp.where(second, out, 0), jnp.where(second, out_ref, 0), atol=1e-5)
  np.testing.assert_array_equal(jnp.where(pad, out, 0), 0)


def test_bf16_matches_f32_reference():
  rng = np.random.default_rng(9)
  seg, blk = packed_ids(rng, 2, 64)
  q, k, v = qkv(rng, 2, 64, 2, 32, jnp.bfloat16)
  lo, hi = fa.mask_intervals(seg, blk, "decoder")
  mask = DENSE["decoder"](seg, blk)
  valid = valid_rows(mask)
  flash = lambda q, k, v: fa.flash_attention(q, k, v, seg, lo, hi, block_q=16, block_k=32,
                                             block_q_bwd=32, block_k_bwd=16)
  out = flash(q, k, v)
  assert out.dtype == jnp.bfloat16
  np.testing.assert_allclose(jnp.where(valid, out.astype(jnp.float32), 0),
                             jnp.where(valid, reference(q, k, v, mask), 0), atol=2e-2, rtol=2e-2)
  ct = jnp.asarray(rng.normal(size=q.shape), jnp.float32) * valid
  got = grads(flash, q, k, v, ct)
  want = grads(lambda q, k, v: reference(q, k, v, mask), q, k, v, ct)
  for g, w in zip(got, want):
    assert g.dtype == jnp.bfloat16
    np.testing.assert_allclose(g.astype(jnp.float32), w, atol=5e-2, rtol=5e-2)


def test_jit_and_default_blocks():
  rng = np.random.default_rng(10)
  seg, blk = packed_ids(rng, 1, 128)
  q, k, v = qkv(rng, 1, 128, 1, 64)
  lo, hi = fa.mask_intervals(seg, blk, "decoder")
  mask = DENSE["decoder"](seg, blk)
  valid = valid_rows(mask)
  out = jax.jit(fa.flash_attention)(q, k, v, seg, lo, hi)
  np.testing.assert_allclose(jnp.where(valid, out, 0),
                             jnp.where(valid, reference(q, k, v, mask), 0),
                             atol=1e-5, rtol=1e-5)


def test_bad_inputs_raise_clear_errors():
  seg = np.ones((2, 64), np.int32)
  lo, hi = np.zeros_like(seg), np.arange(64)[None].repeat(2, 0)
  q = jnp.zeros((2, 64, 2, 16))
  call = lambda *a, **kw: fa.flash_attention(*a, **kw)
  with pytest.raises(ValueError, match="multiple of block_q"):
    call(*[jnp.zeros((2, 48, 2, 16))] * 3, seg[:, :48], lo[:, :48], hi[:, :48], block_q=32)
  with pytest.raises(ValueError, match="head_dim"):
    call(*[jnp.zeros((2, 64, 2, 300))] * 3, seg, lo, hi)
  with pytest.raises(ValueError, match="same"):
    call(q, q, jnp.zeros((2, 64, 1, 16)), seg, lo, hi)
  with pytest.raises(ValueError, match=r"\[B, L, H, D\]"):
    call(q[0], q[0], q[0], seg, lo, hi)
  with pytest.raises(ValueError, match="segment_ids"):
    call(q, q, q, seg[:, :32], lo, hi)
  with pytest.raises(ValueError, match="integer"):
    call(q, q, q, seg, lo.astype(np.float32), hi)
  with pytest.raises(ValueError, match="power of two"):
    call(q, q, q, seg, lo, hi, block_k=24)
  with pytest.raises(ValueError, match="block_k_bwd"):
    call(q, q, q, seg, lo, hi, block_k_bwd=8)


def test_other_accelerators_get_a_clear_error(monkeypatch):
  seg = jnp.ones((1, 64), jnp.int32)
  lo, hi = fa.mask_intervals(seg, jnp.zeros_like(seg), "decoder")
  q = jnp.zeros((1, 64, 1, 16))
  monkeypatch.setattr(jax, "default_backend", lambda: "tpu")
  with pytest.raises(ValueError, match="written for Triton.*on 'tpu' use model.attention_impl='xla'"):
    fa.flash_attention(q, q, q, seg, lo, hi)


@pytest.mark.parametrize("dtype,d,bq,bk", [(jnp.bfloat16, 64, 64, 64), (jnp.float32, 128, 128, 64)])
def test_kernels_lower_to_valid_triton_ir(monkeypatch, dtype, d, bq, bk):
  """No GPU here, but lowering for the "cuda" platform runs Pallas' Triton lowering on CPU: every
  kernel (forward, delta, dk/dv, dq) must produce a Triton module that passes the MLIR verifier,
  with the kv/q loops as scf.for (Triton's pattern for fori_loop) and the q-block skip as scf.if."""
  from jax._src.pallas.triton import lowering
  modules = []
  original = lowering.lower_jaxpr_to_triton_module

  def checked(*args, **kwargs):
    result = original(*args, **kwargs)
    assert result.module.operation.verify()
    modules.append(result.module.operation.get_asm())
    return result

  monkeypatch.setattr(lowering, "lower_jaxpr_to_triton_module", checked)
  seg = jnp.ones((2, 256), jnp.int32)
  lo, hi = fa.mask_intervals(seg, jnp.zeros_like(seg), "decoder")
  q = jnp.zeros((2, 256, 2, d), dtype)
  loss = lambda q, k, v: jnp.sum(fa.flash_attention(
      q, k, v, seg, lo, hi, block_q=bq, block_k=bk, interpret=False).astype(jnp.float32))
  text = jax.jit(jax.grad(loss, (0, 1, 2))).trace(q, q, q).lower(
      lowering_platforms=("cuda",)).as_text()
  assert text.count("xla.gpu.triton") == 4 and len(modules) == 4
  fwd, delta, dkv, dq = modules
  for m in (fwd, dkv, dq):
    assert m.count("scf.for") == 1 and "scf.while" not in m and "tt.dot" in m
  assert "scf.if" in dkv

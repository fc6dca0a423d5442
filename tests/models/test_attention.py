import jax.numpy as jnp
import numpy as np

from mmscale.models import attention
from tests.models.conftest import make_batch


def brute_force_mask(seg, blk):
  b, n = seg.shape
  out = np.zeros((b, 1, n, n), bool)
  for r in range(b):
    for q in range(n):
      for k in range(n):
        same_seg = seg[r, q] == seg[r, k] and seg[r, q] > 0
        same_block = blk[r, q] == blk[r, k] and blk[r, q] > 0
        out[r, 0, q, k] = same_seg and (k <= q or same_block)
  return out


def test_decoder_mask_matches_brute_force():
  rng = np.random.default_rng(0)
  seg = np.sort(rng.integers(0, 4, (3, 12)), axis=1)[:, ::-1].copy()  # Packed segments, pad last.
  blk = np.where(rng.random((3, 12)) < 0.5, rng.integers(1, 3, (3, 12)), 0)
  got = np.asarray(attention.decoder_mask(jnp.asarray(seg), jnp.asarray(blk)))
  np.testing.assert_array_equal(got, brute_force_mask(seg, blk))
  b = make_batch()
  got = np.asarray(attention.decoder_mask(b["segment_ids"], b["block_ids"]))
  np.testing.assert_array_equal(got, brute_force_mask(b["segment_ids"], b["block_ids"]))
  assert got[0, 0, 3, 6] and not got[0, 0, 2, 3] and not got[0, 0, 12, 5]


def test_encoder_mask_only_within_a_block():
  b = make_batch()
  m = np.asarray(attention.encoder_mask(b["segment_ids"], b["block_ids"]))[0, 0]
  assert m[3:7, 3:7].all()
  assert m.sum() == 16


def test_rotary_is_relative():
  rng = np.random.default_rng(0)
  q = jnp.asarray(rng.normal(size=(1, 1, 1, 8)), jnp.float32)
  k = jnp.asarray(rng.normal(size=(1, 1, 1, 8)), jnp.float32)

  def score(pq, pk):
    rq = attention.rotary(q, jnp.array([[pq]]), 10000.0)
    rk = attention.rotary(k, jnp.array([[pk]]), 10000.0)
    return float(jnp.sum(rq * rk))

  assert abs(score(5, 3) - score(12, 10)) < 1e-5
  assert abs(score(5, 3) - score(5, 4)) > 1e-4
  np.testing.assert_allclose(attention.rotary(q, jnp.array([[0]]), 1e4), q)

"""The block-sparse grouped matmul (CPU dropless path) against jax.lax.ragged_dot."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from mmscale.errors import ConfigError
from mmscale.models import config as model_config
from mmscale.models import moe, moe_config, moe_dispatch, moe_kernels

E, D, F = 4, 8, 12


def weights(seed=0):
  ks = jax.random.split(jax.random.key(seed), 3)
  return (jax.random.normal(ks[0], (E, D, F)) / D ** 0.5,
          jax.random.normal(ks[1], (E, D, F)) / D ** 0.5,
          jax.random.normal(ks[2], (E, F, D)) / F ** 0.5)


def routing(kind, b, l, k, seed):
  """idx, w, keep [b, l, k]: random, with empty experts, or every token to one expert."""
  rng = np.random.default_rng(seed)
  if kind == "random":
    idx = np.stack([rng.permutation(E)[:k] for _ in range(b * l)]).reshape(b, l, k)
  elif kind == "empty":  # Experts 1 and 3 get nothing.
    idx = np.stack([rng.permutation([0, 2])[:k] for _ in range(b * l)]).reshape(b, l, k)
  else:  # Expert 2 is every token's first choice.
    idx = np.stack([[2] + list(rng.permutation([0, 1, 3])[:k - 1]) for _ in range(b * l)])
    idx = idx.reshape(b, l, k)
  w = rng.uniform(0.1, 1.0, (b, l, k)).astype(np.float32)
  keep = np.ones((b, l, k), bool)
  keep[-1, -3:] = False  # Padding tokens: not routed.
  return jnp.asarray(idx, jnp.int32), jnp.asarray(w), jnp.asarray(keep)


def value_and_grads(grouped, block, x, idx, w, keep, ws):
  r = jnp.sin(jnp.arange(x.size, dtype=jnp.float32)).reshape(x.shape)

  def f(x, w, ws):
    y = moe_dispatch.expert_ffn(x, idx, w, keep, jnp.zeros_like(idx), ws, grouped=grouped, block=block)
    return jnp.sum(y * r)

  return jax.jit(jax.value_and_grad(f, argnums=(0, 1, 2)))(x, w, ws)


@pytest.mark.parametrize("kind,k,block", [
    ("random", 1, 4), ("random", 2, 16), ("empty", 2, 4), ("empty", 1, 0), ("one_expert", 1, 4),
    ("one_expert", 2, 64),
])
def test_blocks_equal_ragged_dot_values_and_gradients(kind, k, block):
  b, l = 3, 10  # 30 tokens: blocks of 4 split every expert's group; 64 exceeds all rows.
  x = jax.random.normal(jax.random.key(1), (b, l, D))
  idx, w, keep = routing(kind, b, l, k, seed=k + block)
  ws = weights()
  got = value_and_grads("blocks", block, x, idx, w, keep, ws)
  want = value_and_grads("ragged_dot", 0, x, idx, w, keep, ws)
  jax.tree.map(lambda a, c: np.testing.assert_allclose(a, c, atol=1e-5, rtol=1e-5), got, want)
  # Experts that got no token get exactly zero gradient; padding tokens too.
  used = np.unique(np.asarray(idx)[np.asarray(keep)])
  unused = np.setdiff1d(np.arange(E), used)
  for gw in got[1][2]:
    assert not np.asarray(gw)[unused].any()
    assert np.asarray(gw)[used].any()
  assert not np.asarray(got[1][0])[-1, -3:].any()


def test_blocks_cover_each_experts_rows_in_full_blocks_then_tail_blocks():
  """Expert e's rows [start_e, start_e + size_e) in floor(size_e / b) blocks of b rows, then blocks
  of tail_size(b) rows: the routed rows plus under tail_size(b) rows per expert are computed,
  whatever the static row count."""
  sizes = jnp.asarray([21, 0, 8, 3, 16], jnp.int32)
  starts = jnp.cumsum(sizes) - sizes
  b = 16
  assert moe_kernels.tail_size(b) == 8 and moe_kernels.tail_size(128) == 16
  assert moe_kernels.tail_size(4) == 4

  def block(e, start, rows, width, carry):
    n, log = carry
    return n + 1, log.at[n].set(jnp.stack([e, start, rows, width]))

  n, log = jax.jit(lambda s, c: moe_kernels._each_block(s, sizes, b, lambda e: e, block, c))(
      starts, (0, jnp.full((10, 4), -1, jnp.int32)))
  # (expert, start, rows of the expert, static width)
  np.testing.assert_array_equal(np.asarray(log)[:int(n)], [
      [0, 0, 16, 16], [0, 16, 5, 8],  # 21 rows: one full block, 5 rows in a tail block.
      [2, 21, 8, 8],  # 8 rows: one tail block exactly.
      [3, 29, 3, 8],
      [4, 32, 16, 16]])


def test_block_size_rule():
  assert moe_kernels.block_size(4096, 8) == 128
  assert moe_kernels.block_size(1024, 8) == 32
  assert moe_kernels.block_size(10, 4) == 16
  assert moe_kernels.block_size(10 ** 6, 2) == 128
  assert moe_kernels.block_size(4096, 8, 48) == 48


def test_grouped_matmul_choice():
  assert moe_kernels.grouped_matmul("auto") == ("blocks" if jax.default_backend() == "cpu"
                                        else "ragged_dot")
  assert moe_kernels.grouped_matmul("ragged_dot") == "ragged_dot"
  with pytest.raises(ConfigError, match="config.model.moe.grouped_matmul='dense'"):
    moe_kernels.grouped_matmul("dense")


@pytest.mark.parametrize("kw,key", [
    (dict(grouped_matmul="megablocks"), "model.moe.grouped_matmul"),
    (dict(block_size=-8), "model.moe.block_size"),
])
def test_validate_rejects_grouped_knobs(kw, key):
  with pytest.raises(ConfigError, match=f"config.{key}="):
    c = ml_collections.ConfigDict({"model": model_config.defaults()})
    c.model.moe.update(kw)
    moe_config.validate(c.model)

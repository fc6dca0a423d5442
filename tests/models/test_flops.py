import jax
import numpy as np
import pytest
from flax import nnx

from mmscale import flops
from mmscale.stages import build_model
from tests.models.conftest import tiny_config


def real_counts(c):
  """Sums of the real parameter leaves, from shapes only (nnx.eval_shape allocates nothing)."""
  model = nnx.eval_shape(lambda: build_model(c, nnx.Rngs(0)))
  params = nnx.state(model, nnx.Param)
  total = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params))
  flat = nnx.to_flat_state(params)
  def under(prefix):
    return sum(int(np.prod(v.shape)) for path, v in flat if path[:len(prefix)] == prefix)
  vision = under(("encoders",))
  embedding = under(("embed",)) + under(("head",))
  return total, vision, embedding


@pytest.mark.parametrize("fusion", ["early", "late"])
@pytest.mark.parametrize("image_loss", ["none", "next_patch", "vq"])
@pytest.mark.parametrize("modalities", [("image",), ("image", "audio")])
def test_param_counts_equal_the_real_leaves(fusion, image_loss, modalities):
  c = tiny_config(fusion=fusion, image_loss=image_loss, modalities=modalities, qk_norm=False)
  counts = flops.param_counts(c)
  total, vision, embedding = real_counts(c)
  assert counts["params"] == total
  assert counts["vision_params"] == vision and (vision > 0) == (fusion == "late")
  assert counts["embedding_params"] == embedding
  assert counts["non_embedding_params"] == total - embedding
  assert counts["active_params"] == total


def test_dense_param_formula_by_hand():
  # d=32, L=2, V=64, F=128 (8/3*32 = 85.3 rounded up to a multiple of 64), P=12, head_dim 8.
  c = tiny_config()
  block = 4 * 32 * 32 + 2 * 8 + 2 * 32 + 3 * 32 * 128
  expected = 64 * 32 + 12 * 32 + 2 * block + 32 + 32 * 64
  assert flops.param_counts(c)["params"] == expected == real_counts(c)[0]


def test_flops_per_token_and_training_flops():
  c = tiny_config()
  n = flops.param_counts(c)["params"]
  per = flops.flops_per_token(c)
  assert per["6N"] == 6 * n
  assert per["6N+attn"] == 6 * n + 12 * 2 * 16 * 32
  assert flops.training_flops(c, 1000) == (6.0 * n * 1000, "C=6ND")
  late = tiny_config(fusion="late")
  counts = flops.param_counts(late)
  f, formula = flops.training_flops(late, 1000, {"text": 600, "image": 400})
  n_dec = counts["params"] - counts["vision_params"]
  assert formula == "C=6(N_v*D_v+N*D)"
  assert f == 6.0 * (counts["vision_params"] * 400 + n_dec * 1000)


@pytest.mark.parametrize("ffn,moe", [
    ("moe", dict(experts=4, top_k=2)),
    ("moe", dict(experts=4, top_k=1, shared_expert=True, every=2, expert_hidden=32)),
    ("modality", {}),
])
@pytest.mark.parametrize("fusion", ["early", "late"])
def test_sparse_param_counts(ffn, moe, fusion):
  c = tiny_config(ffn=ffn, fusion=fusion, modalities=("image", "audio"))
  c.model.moe.update(moe)
  counts = flops.param_counts(c)
  total, vision, _ = real_counts(c)
  assert counts["params"] == total and counts["vision_params"] == vision
  dense = flops.param_counts(tiny_config(fusion=fusion, modalities=("image", "audio")))
  f = 3 * 32 * 128  # One SwiGLU of the decoder.
  if ffn == "modality":  # text + image + audio FFNs, one of them active per token.
    assert counts["params"] - dense["params"] == 2 * 2 * f
    assert counts["active_params"] == dense["params"]
  else:
    fe = 3 * 32 * moe.get("expert_hidden", 128)
    n_moe = 2 // moe.get("every", 1)
    shared = fe if moe.get("shared_expert") else 0
    expected_active = dense["params"] + n_moe * (moe["top_k"] * fe + 32 * 4 + shared - f)
    assert counts["active_params"] == expected_active
    assert counts["params"] - counts["active_params"] == n_moe * (4 - moe["top_k"]) * fe

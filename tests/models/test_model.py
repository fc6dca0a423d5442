import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from mmscale.errors import ConfigError
from mmscale.stages import build_model
from mmscale.models.blocks import REMAT_POLICIES
from mmscale.models.config import validate
from mmscale.models.loss import loss_fn
from tests.models.conftest import make_batch, tiny_config


@functools.lru_cache(maxsize=None)
def _model(fusion, image_loss):
  """Shared across tests (building compiles every initializer; nothing here mutates a model)."""
  c = tiny_config(fusion=fusion, image_loss=image_loss)
  return c, build_model(c, nnx.Rngs(0), sample_batches=[make_batch()])


@nnx.jit
def _jit_forward(model, batch):
  return model(batch)


def _forward(model, batch):
  return _jit_forward(model, {k: jnp.asarray(v) for k, v in batch.items()})


@pytest.mark.parametrize("fusion", ["early", "late"])
def test_causal_over_text_bidirectional_within_image(fusion):
  _, model = _model(fusion, "next_patch")
  b = make_batch()
  out = _forward(model, b)
  # A later text token (position 8, segment 1) does not change earlier outputs.
  b2 = {k: v.copy() for k, v in b.items()}
  b2["tokens"][:, 8] = (b2["tokens"][:, 8] + 1) % 64
  out2 = _forward(model, b2)
  np.testing.assert_array_equal(out["logits"][:, :8], out2["logits"][:, :8])
  assert not np.allclose(out["logits"][:, 8:10], out2["logits"][:, 8:10])
  # Nor does anything in segment 2 change segment 1.
  b3 = {k: v.copy() for k, v in b.items()}
  b3["tokens"][:, 11] = (b3["tokens"][:, 11] + 1) % 64
  np.testing.assert_array_equal(out["logits"][:, :10], _forward(model, b3)["logits"][:, :10])
  # A later patch of the same image (position 6) changes the earlier patch outputs (3..5)...
  b4 = {k: v.copy() for k, v in b.items()}
  b4["patches"][:, 6] += 1.0
  out4 = _forward(model, b4)
  assert not np.allclose(out["image_pred"]["image"][:, 3:6], out4["image_pred"]["image"][:, 3:6])
  # ...but not the text before the image.
  np.testing.assert_array_equal(out["logits"][:, :3], out4["logits"][:, :3])


@pytest.mark.parametrize("fusion,image_loss", [
    ("early", "none"), ("early", "next_patch"), ("late", "vq"), ("late", "next_patch")])
def test_loss_sums_and_gradients(fusion, image_loss):
  c, model = _model(fusion, image_loss)
  b = make_batch()
  grad_fn = nnx.jit(nnx.value_and_grad(lambda mod: loss_fn(mod, b, c.model), has_aux=True))
  (loss, m), grads = grad_fn(model)
  # Targets: i -> i+1 inside a segment. Per row: text 1,2,7,8,9 (seg 1) and 11,12,13 (seg 2);
  # image 3..6. Text positions carry 1 raw byte, patches 3.
  assert int(m["count_text"]) == 2 * 8 and int(m["count_image"]) == 2 * 4
  assert float(m["bytes_text"]) == 16.0 and float(m["bytes_image"]) == 24.0
  assert int(m["count_audio"]) == 0 and float(m["nll_audio"]) == 0.0
  text_mean = float(m["nll_text"]) / 16
  if image_loss == "none":
    assert float(m["nll_image"]) == 0.0
    np.testing.assert_allclose(float(loss), text_mean, rtol=1e-6)
  else:
    np.testing.assert_allclose(float(loss), text_mean + float(m["nll_image"]) / 8, rtol=1e-6)
  if image_loss == "vq":
    assert 0 < float(m["nll_image"]) / 8 < 3 * np.log(4)
  norms = jax.tree.leaves(jax.tree.map(lambda g: float(jnp.abs(g).sum()), grads))
  assert all(np.isfinite(norms)) and sum(n > 0 for n in norms) > 0.8 * len(norms)


def test_text_loss_matches_manual_cross_entropy():
  c, model = _model("early", "none")
  b = make_batch()
  _, m = loss_fn(model, b, c.model)
  logits = np.asarray(_forward(model, b)["logits"], np.float64)
  total = 0.0
  for r in range(2):
    for i in range(15):
      s = b["segment_ids"][r]
      if s[i] == s[i + 1] > 0 and b["modality"][r, i + 1] == 0:
        lp = logits[r, i] - np.log(np.exp(logits[r, i]).sum())
        total -= lp[b["tokens"][r, i + 1]]
  np.testing.assert_allclose(float(m["nll_text"]), total, rtol=1e-5)


def test_vq_codebook_is_fitted_on_sample_patches():
  c = tiny_config(image_loss="vq")
  b = make_batch()
  model = build_model(c, nnx.Rngs(0), sample_batches=[b, make_batch(seed=1)])
  codes = np.asarray(model.codebooks["image"].codes[...])
  patches = np.concatenate([x["patches"][x["modality"] == 1] for x in (b, make_batch(seed=1))])
  # k-means centroids are means of their assigned patches: every code is within the data's hull.
  assert codes.shape == (4, 12)
  idx = np.asarray(model.codebooks["image"].quantize(jnp.asarray(patches)))
  for k in set(idx.tolist()):
    np.testing.assert_allclose(codes[k], patches[idx == k].mean(0), atol=1e-4)
  assert not any(isinstance(v, nnx.Param) for v in jax.tree.leaves(
      nnx.state(model.codebooks), is_leaf=lambda x: isinstance(x, nnx.Variable)))


def test_scan_keeps_program_size_independent_of_depth():
  b = make_batch()

  def n_eqns(depth):
    c = tiny_config(depth=depth)
    model = nnx.eval_shape(lambda: build_model(c, nnx.Rngs(0)))  # Shapes suffice for a jaxpr.
    graphdef, state = nnx.split(model)
    fn = lambda st: loss_fn(nnx.merge(graphdef, st), b, c.model)[0]
    return len(jax.make_jaxpr(fn)(state).jaxpr.eqns)

  assert n_eqns(2) == n_eqns(6)


def test_bfloat16_compute():
  c = tiny_config()
  c.train.dtype = "bfloat16"
  model = build_model(c, nnx.Rngs(0))
  out = _forward(model, make_batch())
  assert out["logits"].dtype == jnp.float32 and np.isfinite(np.asarray(out["logits"])).all()


@pytest.mark.parametrize("ffn,every", [("moe", 1), ("moe", 2), ("modality", 1)])
def test_sparse_ffn_losses_and_routing_counts(ffn, every):
  c = tiny_config(ffn=ffn, depth=2)
  c.model.moe.update(dict(experts=4, top_k=2, every=every))
  b = make_batch()
  model = build_model(c, nnx.Rngs(0))
  grad_fn = nnx.value_and_grad(lambda mod: loss_fn(mod, b, c.model), has_aux=True)
  (loss, m), grads = nnx.jit(grad_fn)(model)
  if ffn == "modality":
    assert "route_counts" not in m and float(m["moe_lb_loss"]) == 0.0
    np.testing.assert_allclose(float(loss), float(m["loss"]), rtol=1e-6)
    return
  assert m["route_counts"].shape == (2 // every, 4, 3)
  # Every valid (non-pad) position routed top_k times in each MoE layer, counted by modality.
  real = b["segment_ids"] > 0
  per_modality = [2 * (real & (b["modality"] == i)).sum() for i in (0, 1)]
  np.testing.assert_allclose(np.asarray(m["route_counts"]).sum(axis=1)[:, :2],
                             [per_modality] * (2 // every))
  assert float(m["moe_lb_loss"]) > 0
  expected = float(m["loss"]) + 0.01 * float(m["moe_lb_loss"]) + 1e-3 * float(m["moe_z_loss"])
  np.testing.assert_allclose(float(loss), expected, rtol=1e-6)
  router = grads.decoder.groups.blocks[every - 1].ffn.router[...]
  assert np.abs(np.asarray(router)).sum() > 0


@pytest.mark.parametrize("ffn", ["dense", "moe"])
def test_every_remat_policy_gives_the_same_loss_and_gradients(ffn):
  b = make_batch()
  results = []
  for remat in REMAT_POLICIES if ffn == "dense" else ("none", "full"):  # MoE: compile time.
    c = tiny_config(remat=remat, ffn=ffn)
    model = build_model(c, nnx.Rngs(0))
    grad_fn = nnx.value_and_grad(lambda mod, c=c: loss_fn(mod, b, c.model), has_aux=True)
    (loss, _), grads = nnx.jit(grad_fn)(model)
    results.append((float(loss), jax.tree.leaves(grads)))
  for loss, grads in results[1:]:
    assert loss == pytest.approx(results[0][0], rel=1e-6)
    for g0, g1 in zip(results[0][1], grads):
      np.testing.assert_allclose(np.asarray(g0), np.asarray(g1), rtol=1e-4, atol=1e-6)


def test_unknown_remat_is_a_config_error():
  with pytest.raises(ConfigError, match=r"model\.remat.*'full'"):
    validate(tiny_config(remat="yes", vocab_size=0).model)  # 0: no tokenizer check.


def test_init_scales():
  _, model = _model("early", "none")
  ffn = model.decoder.groups.blocks[0].ffn
  # Fan-in std; residual-branch outputs also divided by sqrt(2 * depth) = 2.
  assert np.std(np.asarray(ffn.gate.kernel[...])) == pytest.approx(32 ** -0.5, rel=0.1)
  assert np.std(np.asarray(ffn.down.kernel[...])) == pytest.approx(128 ** -0.5 / 2, rel=0.1)
  assert np.std(np.asarray(model.embed.embedding[...])) == pytest.approx(1.0, rel=0.1)


@pytest.mark.parametrize("fusion", ["early", "late"])
def test_pallas_attention_gives_the_xla_loss_and_gradients(fusion):
  """model.attention_impl="pallas" (flash kernel on the mask's intervals, interpreted on CPU)
  trains the same model as the dense-mask XLA path: same parameters, loss and gradients."""
  b = make_batch()
  results = []
  for impl in ("xla", "pallas"):
    c = tiny_config(fusion=fusion, image_loss="next_patch", attention_impl=impl)
    model = build_model(c, nnx.Rngs(0))
    grad_fn = nnx.jit(nnx.value_and_grad(lambda mod, c=c: loss_fn(mod, b, c.model), has_aux=True))
    (loss, _), grads = grad_fn(model)
    results.append((float(loss), nnx.state(model, nnx.Param), grads))
  (loss_x, params_x, grads_x), (loss_p, params_p, grads_p) = results
  jax.tree.map(np.testing.assert_array_equal, params_x, params_p)
  np.testing.assert_allclose(loss_p, loss_x, rtol=1e-5)
  jax.tree.map(lambda g, h: np.testing.assert_allclose(g, h, rtol=2e-4, atol=1e-6), grads_p, grads_x)


def test_pallas_attention_under_a_mesh_runs_per_device_rows():
  """On 8 devices (batch split 8 ways) the flash path runs inside shard_map and gives the
  single-device loss and gradients."""
  b = make_batch(b=8)
  c = tiny_config(fusion="early", image_loss="next_patch", attention_impl="pallas")
  model = build_model(c, nnx.Rngs(0))
  grad_fn = nnx.jit(nnx.value_and_grad(lambda mod: loss_fn(mod, b, c.model), has_aux=True))
  (loss1, _), grads1 = grad_fn(model)
  mesh = jax.make_mesh((8, 1, 1), ("data", "fsdp", "expert"),
                       axis_types=(jax.sharding.AxisType.Auto,) * 3)
  with jax.set_mesh(mesh):
    jaxpr = jax.make_jaxpr(lambda mod: loss_fn(mod, b, c.model))(model)
    (loss8, _), grads8 = grad_fn(model)
  assert "shard_map" in str(jaxpr)
  np.testing.assert_allclose(float(loss8), float(loss1), rtol=1e-6)
  jax.tree.map(lambda g, h: np.testing.assert_allclose(g, h, rtol=1e-4, atol=1e-6), grads8, grads1)

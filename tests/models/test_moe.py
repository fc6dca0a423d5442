"""MoE layer against a naive per-token loop; routing, capacity, losses and routing statistics."""

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

from mmscale import contract
from mmscale.errors import ConfigError
from mmscale.models import config as model_config
from mmscale.models import moe, moe_config, moe_routing


def moe_config_dict(**moe_kw):
  c = ml_collections.ConfigDict()
  c.model = model_config.defaults()
  c.model.width, c.model.ffn_hidden, c.model.ffn = 16, 24, "moe"
  c.model.moe.update(dict(experts=4, top_k=2, z_weight=1e-3))
  c.model.moe.update(moe_kw)
  c.train = ml_collections.ConfigDict({"dtype": "float32"})
  return c


def inputs(b=2, l=8, d=16, seed=0):
  k1, k2 = jax.random.split(jax.random.key(seed))
  x = jax.random.normal(k1, (b, l, d))
  modality = jax.random.randint(k2, (b, l), 0, 2)
  valid = jnp.ones((b, l), bool).at[-1, -2:].set(False)
  return x, modality, valid


def swiglu(x, wg, wu, wd):
  g = x @ wg
  return (g / (1 + np.exp(-g)) * (x @ wu)) @ wd


def naive_moe(layer, x, modality, valid):
  """Per token: softmax router, top-k, weighted sum of the chosen experts' SwiGLU outputs."""
  wg, wu, wd = (np.asarray(w) for w in layer.experts.weights(jnp.float32))
  logits = np.asarray(layer.router_logits(x, modality))
  valid = np.asarray(valid)
  shared = np.asarray(layer.shared(x)) if layer.shared is not None else None
  x = np.asarray(x)
  y = np.zeros_like(x)
  for b in range(x.shape[0]):
    for t in range(x.shape[1]):
      if bool(valid[b, t]):
        p = np.exp(logits[b, t] - logits[b, t].max())
        p /= p.sum()
        top = np.argsort(-p, kind="stable")[:layer.top_k]
        w = p[top] / p[top].sum() if layer.top_k > 1 else p[top]
        for e, we in zip(top, w):
          y[b, t] += we * swiglu(x[b, t], wg[e], wu[e], wd[e])
  if shared is not None:
    y += shared
  return y


@pytest.mark.parametrize("kw", [
    dict(top_k=1), dict(top_k=2), dict(top_k=2, shared_expert=True),
    dict(top_k=2, mode="capacity", capacity_factor=8.0),  # Capacity large enough to drop nothing.
    dict(top_k=1, routing="aware"),
])
def test_moe_equals_naive_loop(kw):
  layer = moe.MoEFeedForward(moe_config_dict(**kw).model, nnx.Rngs(0))
  x, modality, valid = inputs()
  y, aux = layer(x, modality, valid)
  np.testing.assert_allclose(y, naive_moe(layer, x, modality, valid), atol=1e-5, rtol=1e-5)
  assert int(aux["dropped"]) == 0
  assert aux["counts"].shape == (4, 3)
  assert float(aux["counts"].sum()) == float(valid.sum()) * layer.top_k


def _force_expert(layer, e):
  """Router that sends every (positive) input to expert e first and e+1 second."""
  r = np.zeros(layer.router.shape, np.float32)
  r[:, e], r[:, (e + 1) % r.shape[1]] = 1.0, 0.5
  layer.router[...] = jnp.asarray(r)


def test_forced_routing_dropless_drops_nothing_capacity_counts_drops():
  x, modality, valid = inputs(b=2, l=8)
  x = jnp.abs(x) + 0.1
  valid = jnp.ones_like(valid)
  outs = {}
  for mode in ("dropless", "capacity"):
    layer = moe.MoEFeedForward(moe_config_dict(top_k=1, mode=mode, capacity_factor=1.0).model,
                               nnx.Rngs(0))
    _force_expert(layer, 2)
    outs[mode] = layer(x, modality, valid)
  (y_free, aux_free), (y_cap, aux_cap) = outs["dropless"], outs["capacity"]
  assert int(aux_free["dropped"]) == 0
  np.testing.assert_array_equal(aux_free["counts"].sum(-1), [0, 0, 16, 0])
  np.testing.assert_allclose(y_free, naive_moe(layer, x, modality, valid), atol=1e-5, rtol=1e-5)
  cap = math.ceil(1.0 * 8 * 1 / 4)  # 2 slots per expert and sequence.
  assert int(aux_cap["dropped"]) == 2 * (8 - cap)
  # The first `cap` positions of each sequence are served, the rest pass through as zero.
  np.testing.assert_allclose(y_cap[:, :cap], y_free[:, :cap], atol=1e-6)
  np.testing.assert_array_equal(y_cap[:, cap:], 0.0)


def test_capacity_prefers_first_choices():
  # 1 sequence, 2 tokens, 2 experts, top-2, capacity 1 slot: both first choices fit, no second.
  logits = jnp.log(jnp.array([[[0.9, 0.1], [0.2, 0.8]]]))
  valid = jnp.ones((1, 2), bool)
  idx, w, keep, pos, cap, aux = moe_routing.route(logits, valid, jnp.zeros((1, 2), jnp.int32), 2,
                                          mode="capacity", capacity_factor=0.5)
  assert cap == 1
  np.testing.assert_array_equal(idx, [[[0, 1], [1, 0]]])
  np.testing.assert_array_equal(keep, [[[True, False], [True, False]]])
  assert int(aux["dropped"]) == 2


def test_load_balancing_and_z_loss_formulas():
  probs = np.array([[0.8, 0.2], [0.6, 0.4], [0.3, 0.7], [0.9, 0.1], [0.1, 0.9]])
  shift = np.array([0.5, -1.0, 2.0, 0.0, 7.0])  # logsumexp of each row's logits.
  logits = jnp.asarray(np.log(probs) + shift[:, None])[None]
  valid = jnp.array([[True, True, True, True, False]])  # The last token is padding.
  modality = jnp.array([[0, 1, 1, 0, 1]])
  *_, aux = moe_routing.route(logits, valid, modality, 1)
  f = np.array([3, 1]) / 4  # Top-1 choices of the valid tokens: 0, 0, 1, 0.
  p_mean = probs[:4].mean(0)
  np.testing.assert_allclose(aux["lb_loss"], 2 * np.sum(f * p_mean), rtol=1e-6)
  np.testing.assert_allclose(aux["lb_loss"], 1.15, rtol=1e-6)
  np.testing.assert_allclose(aux["z_loss"], np.mean(shift[:4] ** 2), rtol=1e-5)
  np.testing.assert_array_equal(aux["counts"], [[2, 1, 0], [0, 1, 0]])
  # A perfectly balanced routing reaches the minimum 1.
  tie_break = jnp.array([[[0.0, 1e-6], [1e-6, 0.0]]])  # Token 0 -> expert 1, token 1 -> expert 0.
  *_, bal = moe_routing.route(jnp.log(jnp.full((1, 2, 2), 0.5)) + tie_break, jnp.ones((1, 2), bool),
                      jnp.zeros((1, 2), jnp.int32), 1)
  np.testing.assert_allclose(bal["lb_loss"], 1.0, rtol=1e-5)


def test_aware_routing_keeps_modalities_apart():
  c = moe_config_dict(experts=4, top_k=2, routing="aware")
  layer = moe.MoEFeedForward(c.model, nnx.Rngs(1))
  x, modality, valid = inputs(b=4, l=16, seed=3)
  idx, *_, aux = moe_routing.route(layer.router_logits(x, modality), valid, modality, 2)
  text = np.asarray(modality) == 0
  assert (np.asarray(idx)[text] < 2).all() and (np.asarray(idx)[~text] >= 2).all()
  counts = np.asarray(aux["counts"])
  assert counts[:2, 1].sum() == 0 and counts[2:, 0].sum() == 0
  assert contract.specialization_score(counts) == pytest.approx(1.0)


def test_modality_feedforward_uses_each_modalitys_ffn():
  c = moe_config_dict()
  c.model.modalities = ("image", "audio")
  layer = moe.ModalityFeedForward(c.model, nnx.Rngs(0))
  x, _, valid = inputs(b=2, l=9)
  modality = jnp.tile(jnp.arange(3), (2, 3))
  y, aux = layer(x, modality, valid)
  x, y, modality, valid = map(np.asarray, (x, y, modality, valid))
  assert aux == {}
  ws = [np.asarray(w) for w in layer.ffns.weights(jnp.float32)]
  for b in range(2):
    for t in range(9):
      m = int(modality[b, t])
      want = swiglu(x[b, t], ws[0][m], ws[1][m], ws[2][m]) if valid[b, t] else 0.0
      np.testing.assert_allclose(y[b, t], want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("routing", ["agnostic", "aware"])
def test_gradients_reach_router_and_experts(routing):
  layer = moe.MoEFeedForward(moe_config_dict(top_k=1, routing=routing).model, nnx.Rngs(0))
  x, modality, valid = inputs()

  def loss(layer):
    y, aux = layer(x, modality, valid)
    return jnp.sum(y ** 2) + aux["lb_loss"] + aux["z_loss"]

  grads = nnx.grad(loss)(layer)
  assert all(np.isfinite(g).all() for g in jax.tree.leaves(grads))  # -inf masked logits included.
  assert float(jnp.abs(grads.router[...]).sum()) > 0
  assert float(jnp.abs(grads.experts.gate[...]).sum()) > 0


def test_bfloat16_compute():
  c = moe_config_dict(top_k=2)
  x, modality, valid = inputs()
  y32, _ = moe.MoEFeedForward(c.model, nnx.Rngs(0))(x, modality, valid)
  layer = moe.MoEFeedForward(c.model, nnx.Rngs(0), dtype="bfloat16")
  y16, aux = layer(x, modality, valid)
  assert y16.dtype == jnp.bfloat16 and layer.router.dtype == jnp.float32
  assert aux["lb_loss"].dtype == jnp.float32
  np.testing.assert_allclose(np.asarray(y16, np.float32), y32, atol=0.1, rtol=0.05)


def test_specialization_score_hand_made():
  counts = np.array([[10, 0, 0], [5, 5, 0], [0, 0, 3], [3, 1, 0]])
  h = -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25))
  assert contract.specialization_score(counts) == pytest.approx((1 + 0 + (1 - h)) / 3)
  assert math.isnan(contract.specialization_score(np.zeros((2, 3))))
  summary = contract.routing_record(np.stack([counts, counts[::-1]]))
  assert summary["modalities"] == ["text", "image", "audio"]
  assert summary["specialization"][0] == pytest.approx(summary["specialization"][1])


@pytest.mark.parametrize("kw,key", [
    (dict(experts=0), "model.moe.experts"), (dict(top_k=5), "model.moe.top_k"),
    (dict(mode="drop"), "model.moe.mode"), (dict(capacity_factor=0.0), "model.moe.capacity_factor"),
    (dict(routing="aware", experts=3), "model.moe.experts"),
    (dict(routing="aware", experts=4, top_k=3), "model.moe.top_k"),
    (dict(lb_weight=-1.0), "model.moe.lb_weight"), (dict(every=0), "model.moe.every"),
])
def test_validate_rejects(kw, key):
  with pytest.raises(ConfigError, match=f"config.{key}="):
    moe_config.validate(moe_config_dict(**kw).model)


def test_defaults_validate():
  moe_config.validate(moe_config_dict().model)
  assert moe_config.defaults().lb_weight == 0.01


def test_dropless_gradients_equal_capacity_gradients_without_drops():
  # Two independent implementations (ragged_dot vs dense expert buffers) of the same function.
  x, modality, valid = inputs()

  def loss(layer, x):
    y, aux = layer(x, modality, valid)
    return jnp.sum(jnp.sin(y)) + aux["lb_loss"] + aux["z_loss"]

  grads = {}
  for mode in ("dropless", "capacity"):
    layer = moe.MoEFeedForward(moe_config_dict(top_k=2, mode=mode, capacity_factor=8.0).model,
                               nnx.Rngs(0))
    grads[mode] = jax.jit(nnx.grad(loss, argnums=(0, 1)))(layer, x)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5),
               grads["dropless"], grads["capacity"])

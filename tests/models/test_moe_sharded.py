"""Expert parallelism on 8 forced CPU devices gives the single-device values and gradients."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx
from jax.sharding import PartitionSpec as P

from mmscale import parallel
from mmscale.models import config as model_config
from mmscale.models import moe
from tests.models.conftest import make_batch, moe_mesh_config

TOL = dict(atol=1e-5, rtol=1e-5)


def layer_config(mesh, **moe_kw):
  c = ml_collections.ConfigDict()
  c.model = model_config.defaults()
  c.model.width, c.model.ffn_hidden, c.model.ffn = 16, 24, "moe"
  c.model.moe.update(dict(experts=8, top_k=2))
  c.model.moe.update(moe_kw)
  c.train = ml_collections.ConfigDict({"dtype": "float32"})
  c.mesh = parallel.defaults()
  c.mesh.update(mesh)
  c.data = ml_collections.ConfigDict({"batch_size": 8})
  return c


def layer_loss(layer, x, modality, valid):
  y, aux = layer(x, modality, valid)
  r = jnp.cos(jnp.arange(y.size, dtype=jnp.float32)).reshape(y.shape)  # Fixed projection.
  return jnp.sum(y * r) + aux["lb_loss"] + aux["z_loss"], aux


def loss_and_grads(layer, *args):
  (loss, aux), grads = nnx.value_and_grad(layer_loss, argnums=(0, 1), has_aux=True)(layer, *args)
  return loss, aux, grads


def compare(a, b):
  jax.tree.map(lambda u, v: np.testing.assert_allclose(np.asarray(u), np.asarray(v), **TOL), a, b)


@pytest.mark.parametrize("mesh,kw,batch", [
    (dict(data=2, expert=4), dict(), 8),
    (dict(data=1, expert=8), dict(top_k=1), 8),
    (dict(fsdp=2, expert=4), dict(mode="capacity", capacity_factor=1.0), 8),
    (dict(data=4, expert=2), dict(mode="capacity", capacity_factor=1.0), 2),  # Tokens replicated.
])
def test_sharded_layer_equals_single_device(mesh, kw, batch):
  config = layer_config(mesh, **kw)
  layer = moe.MoEFeedForward(config.model, nnx.Rngs(0))
  k1, k2 = jax.random.split(jax.random.key(1))
  x = jax.random.normal(k1, (batch, 8, 16))
  modality = jax.random.randint(k2, (batch, 8), 0, 2)
  valid = jnp.ones((batch, 8), bool).at[0, -3:].set(False)
  want = jax.jit(loss_and_grads)(layer, x, modality, valid)

  m = parallel.make_mesh(config.mesh, config.data.batch_size)
  with jax.set_mesh(m):
    parallel.shard_model(layer, m)
    e_loc = 8 // mesh["expert"]
    assert layer.experts.gate[...].sharding.spec[0] == "expert"
    assert {s.data.shape[0] for s in layer.experts.gate[...].addressable_shards} == {e_loc}
    fn = jax.jit(loss_and_grads)
    got = fn(layer, x, modality, valid)
    hlo = fn.lower(layer, x, modality, valid).compile().as_text()
  if batch == 8:  # Real expert parallelism: tokens travel to the experts' devices and back.
    assert "all-to-all" in hlo
  compare(want, got)
  if kw.get("mode") == "capacity":
    assert int(got[1]["dropped"]) > 0  # The comparison covered dropping too.


def test_modality_feedforward_sharded():
  config = layer_config(dict(data=2, expert=4))
  layer = moe.ModalityFeedForward(config.model, nnx.Rngs(0))
  x = jax.random.normal(jax.random.key(0), (8, 8, 16))
  modality = jnp.tile(jnp.array([0, 1]), (8, 4))
  valid = jnp.ones((8, 8), bool)
  f = jax.jit(lambda l, x: jnp.sum(l(x, modality, valid)[0] ** 2))
  want = jax.value_and_grad(f, argnums=1)(layer, x)
  m = parallel.make_mesh(config.mesh, config.data.batch_size)
  with jax.set_mesh(m):
    parallel.shard_model(layer, m)
    got = jax.value_and_grad(f, argnums=1)(layer, x)
  compare(want, got)


def model_loss_and_grads(config):
  """(loss, grads) of the whole model, single device and under the config's mesh."""
  from mmscale.stages import build_model
  from mmscale.models.loss import loss_fn

  model = build_model(config, nnx.Rngs(0))
  batch = make_batch(b=8)
  step = jax.jit(nnx.value_and_grad(lambda mdl, b: loss_fn(mdl, b, config.model)[0]))
  want = step(model, batch)
  mesh = parallel.make_mesh(config.mesh, config.data.batch_size)
  with jax.set_mesh(mesh):
    parallel.shard_model(model, mesh)
    sharded = {k: jax.device_put(v, parallel.batch_sharding(mesh)) for k, v in batch.items()}
    got = step(model, sharded)
  return want, got


def test_whole_model_sharded_equals_single_device():
  want, got = model_loss_and_grads(moe_mesh_config(4, dict(data=2, expert=4)))
  compare(want, got)
  assert np.isfinite(float(want[0]))

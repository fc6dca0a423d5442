"""Mesh construction, sharding rules, model placement and distributed start-up from the env."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx
from jax.sharding import PartitionSpec as P

from mmscale import parallel
from mmscale.errors import ConfigError, UserError


def _config(batch=8, **mesh):
  c = ml_collections.ConfigDict()
  c.mesh = parallel.defaults()
  c.mesh.update(mesh)
  c.data = ml_collections.ConfigDict({"batch_size": batch})
  return c


def _mesh(batch=8, **mesh):
  """The mesh stage's inputs: its own section and the global batch size."""
  c = _config(batch, **mesh)
  return parallel.make_mesh(c.mesh, c.data.batch_size)


def test_defaults_fill_remaining_devices():
  mesh = _mesh()
  assert mesh.axis_names == ("data", "fsdp", "expert")
  assert dict(mesh.shape) == {"data": 8, "fsdp": 1, "expert": 1}
  mesh = _mesh(fsdp=2, expert=2)
  assert dict(mesh.shape) == {"data": 2, "fsdp": 2, "expert": 2}


@pytest.mark.parametrize("mesh,msg", [
    ({"data": 3}, "multiply to 3 but there are 8 devices"),
    ({"expert": 3}, "do not divide the 8 available devices"),
])
def test_make_mesh_rejects_wrong_sizes(mesh, msg):
  with pytest.raises(UserError, match=msg):
    _mesh(**mesh)


def test_make_mesh_rejects_indivisible_batch():
  with pytest.raises(UserError, match="batch_size=4: must be divisible by the 8 devices"):
    _mesh(batch=4)


@pytest.mark.parametrize("mesh,key", [
    ({"data": 0}, "mesh.data"), ({"fsdp": -1}, "mesh"), ({"expert": -2}, "mesh.expert"),
])
def test_validate_rejects(mesh, key):
  with pytest.raises(ConfigError, match=f"config.{key}="):
    parallel.validate(_config(**mesh).mesh)


def test_validate_batch_and_experts():
  parallel.validate(_config(expert=4).mesh, experts=None)  # Only MoE models have experts.
  with pytest.raises(ConfigError, match="data.batch_size=6: must be divisible by the mesh size 4"):
    parallel.validate(_config(fsdp=2, expert=2).mesh, batch_size=6)
  with pytest.raises(ConfigError, match="config.mesh.expert=4: must divide"):
    parallel.validate(_config(expert=4).mesh, batch_size=8, experts=6)
  parallel.validate(_config(fsdp=2, expert=2).mesh, batch_size=8, experts=6)


def test_param_spec_rules():
  mesh = _mesh(data=2, fsdp=2, expert=2)
  spec = parallel.param_spec(("expert", "embed", "mlp"), (4, 8, 32), mesh)
  assert spec == P("expert", None, "fsdp")
  assert parallel.param_spec(("vocab", "embed"), (100, 16), mesh) == P(None, "fsdp")
  assert parallel.param_spec(("embed", "mlp"), (16, 3), mesh) == P("fsdp", None)  # 3 indivisible
  assert parallel.param_spec(("expert", "embed"), (3, 5), mesh) == P(None, None)
  assert parallel.param_spec(None, (4,), mesh) == P()


class _Tiny(nnx.Module):

  def __init__(self, rngs):
    # Logical names, not mesh axes: no eager placement (as in mmscale/models/layers.py).
    def param(shape, names):
      return nnx.Param(jax.random.normal(rngs.params(), shape), out_sharding=names,
                       eager_sharding=False)

    self.w = param((4, 16), ("embed", "mlp"))
    self.experts = param((4, 4, 8), ("expert", "embed", "mlp"))
    self.b = nnx.Param(jnp.zeros((16,)))

  def __call__(self, x):
    return jnp.sum((x @ self.w + self.b) ** 2) + jnp.sum(self.experts ** 2)


def test_shard_model_places_params_and_keeps_values():
  mesh = _mesh(data=2, fsdp=2, expert=2)
  with jax.set_mesh(mesh):
    model = _Tiny(nnx.Rngs(0))
  before = jax.tree.map(np.asarray, nnx.state(model, nnx.Param))
  out = parallel.shard_model(model, mesh)
  assert out is model
  assert model.w.get_value().sharding.spec == P(None, "fsdp")
  assert model.experts.get_value().sharding.spec == P("expert", None, "fsdp")
  assert model.b.get_value().sharding.spec == P()
  after = jax.tree.map(np.asarray, nnx.state(model, nnx.Param))
  jax.tree.map(np.testing.assert_array_equal, before, after)
  x = jax.device_put(jnp.ones((8, 4)), parallel.batch_sharding(mesh))
  assert x.sharding.spec == P(("data", "fsdp", "expert"))
  want = model(np.ones((8, 4)))
  np.testing.assert_allclose(jax.jit(lambda m, x: m(x))(model, x), want, rtol=1e-6)


def test_batch_axes_fall_back_for_small_batches():
  mesh = _mesh(data=2, fsdp=2, expert=2)
  assert parallel.batch_axes(mesh, 8) == ("data", "fsdp", "expert")
  assert parallel.batch_axes(mesh, 2) == ("data",)
  assert parallel.batch_axes(mesh, 1) == ()


def test_initialize_distributed_single_process_is_noop(monkeypatch):
  for k in ("MMSCALE_COORDINATOR", "SLURM_NTASKS", "SLURM_NPROCS", "SLURM_JOB_ID"):
    monkeypatch.delenv(k, raising=False)
  assert parallel.initialize_distributed_from_env() is False
  monkeypatch.setenv("MMSCALE_COORDINATOR", "127.0.0.1:1234")
  monkeypatch.setenv("MMSCALE_NUM_PROCESSES", "1")
  monkeypatch.setenv("MMSCALE_PROCESS_ID", "0")
  assert parallel.initialize_distributed_from_env() is False
  monkeypatch.setenv("MMSCALE_PROCESS_ID", "2")
  with pytest.raises(UserError, match="MMSCALE_PROCESS_ID=2"):
    parallel.initialize_distributed_from_env()
  monkeypatch.setenv("MMSCALE_NUM_PROCESSES", "two")
  with pytest.raises(UserError, match="must be integers"):
    parallel.initialize_distributed_from_env()

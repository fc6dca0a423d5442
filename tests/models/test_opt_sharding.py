"""Adam's moments are split over the mesh like the parameters they belong to (ZeRO-3 needs all of
the training state split, not a third of it), and the donated step then aliases all of it."""

import jax
import pytest

from experiments import nmm
from mmscale import config as config_lib
from mmscale import parallel
from mmscale.train import aot


def _fsdp_leaves(tree) -> int:
  return sum("fsdp" in tuple(x.sharding.spec) for x in jax.tree.leaves(tree))


@pytest.mark.parametrize("fusion", ["early", "late"])  # late: multi_transform's masked states.
def test_moments_are_sharded_like_params_and_the_step_aliases_them(fusion):
  c = nmm.get_config(f"fusion={fusion},size=t1")
  c.mesh.update(dict(data=1, fsdp=8, expert=1))
  c = config_lib.resolve(c)
  mesh = parallel.make_mesh(c.mesh, c.data.batch_size)
  step, (params, opt_state, batch, lr) = aot.train_step(c, mesh)
  assert _fsdp_leaves(params) > 0
  assert _fsdp_leaves(opt_state) == 2 * _fsdp_leaves(params)  # mu and nu.
  counts = [x for x in jax.tree.leaves(opt_state) if x.ndim == 0]
  assert counts and all(x.sharding.is_fully_replicated for x in counts)
  with jax.set_mesh(mesh):
    m = step.trace(params, opt_state, batch, lr).lower().compile().memory_analysis()
  state_bytes = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves((params, opt_state)))
  # Every donated byte is reused for the output (per device: about 1/8 of the state + replicas).
  assert m.alias_size_in_bytes >= 0.99 * (m.output_size_in_bytes - 4096)
  assert m.alias_size_in_bytes < state_bytes / 4


def test_trainer_keeps_moments_sharded_through_a_step(tmp_path):
  from mmscale.train.loop import Trainer  # pylint: disable=g-import-not-at-top
  c = nmm.get_config("size=t1")
  c.mesh.update(dict(data=1, fsdp=8, expert=1))
  t = Trainer(config_lib.resolve(c), str(tmp_path))
  assert _fsdp_leaves(t.opt_state) == 2 * _fsdp_leaves(t.params) > 0
  with jax.set_mesh(t.mesh):
    params, opt_state, _ = t.train_step(t.params, t.opt_state, t.device_batch(next(t.data)), t.lr_input(1))
  assert _fsdp_leaves(opt_state) == 2 * _fsdp_leaves(params) == 2 * _fsdp_leaves(t.params)


def _temp_bytes(mesh_axis):
  c = nmm.get_config("size=t1")
  c.mesh.update(dict(data=1, fsdp=1, expert=1))
  c.mesh[mesh_axis] = 8
  c.data.batch_size = 64
  c = config_lib.resolve(c)
  mesh = parallel.make_mesh(c.mesh, c.data.batch_size)
  step, args = aot.train_step(c, mesh)
  with jax.set_mesh(mesh):
    return step.trace(*args).lower().compile().memory_analysis().temp_size_in_bytes


def test_fsdp_keeps_activations_split_by_rows():
  # Unpinned, XLA split the residual stream by features like the FSDP weights and every device
  # computed on all 64 rows (temp ~5x data parallelism's); blocks.rows_split pins the rows.
  assert _temp_bytes("fsdp") < 1.3 * _temp_bytes("data")

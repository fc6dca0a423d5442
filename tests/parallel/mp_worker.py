"""One process of the 2-process x 4-device run (launched by test_multiprocess.py).

Computes the whole MoE model's loss and gradients with experts sharded over devices of both
processes and writes them (process 0) to the .npz named by argv[1]. Also importable: the test uses
`config()` and `loss_and_grads()` for the single-process reference.
"""

import sys

import jax
import numpy as np
from flax import nnx

from mmscale import parallel
from tests.models.conftest import make_batch, moe_mesh_config


def config():
  return moe_mesh_config(8, dict(data=1, expert=8))  # The all-to-all crosses the two processes.


def loss_and_grads(cfg, mesh=None):
  """(loss, {param path: grad}) as numpy, under `mesh` when given."""
  from mmscale.stages import build_model
  from mmscale.models.loss import loss_fn

  model = build_model(cfg, nnx.Rngs(0))
  data = make_batch(b=8)
  step = jax.jit(nnx.value_and_grad(lambda mdl, b: loss_fn(mdl, b, cfg.model)[0]))
  if mesh is None:
    loss, grads = step(model, data)
  else:
    with jax.set_mesh(mesh):
      parallel.shard_model(model, mesh)
      sh = parallel.batch_sharding(mesh)
      data = {k: jax.make_array_from_callback(v.shape, sh, lambda i, v=v: v[i])
              for k, v in data.items()}
      loss, grads = step(model, data)
      # Gather every (sharded) gradient to all processes before reading it on the host.
      rep = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
      loss, grads = jax.jit(lambda t: t, out_shardings=rep)((loss, grads))
  leaves = jax.tree_util.tree_leaves_with_path(grads)
  flat = {jax.tree_util.keystr(p): np.asarray(g) for p, g in leaves}
  return float(loss), flat


def main(out_path):
  assert parallel.initialize_distributed_from_env()
  assert (jax.process_count(), jax.device_count()) == (2, 8)
  cfg = config()
  loss, grads = loss_and_grads(cfg, parallel.make_mesh(cfg.mesh, cfg.data.batch_size))
  if jax.process_index() == 0:
    np.savez(out_path, loss=loss, **grads)
  jax.distributed.shutdown()


if __name__ == "__main__":
  main(sys.argv[1])

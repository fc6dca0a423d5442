"""A config's train step on abstract inputs: traced, lowered and compiled ahead of time with no
parameter ever allocated.

Shapes come from `nnx.eval_shape` of the model and `jax.eval_shape` of the optimizer; shardings
from mmscale.parallel's rules on the given mesh (the optimizer state's from compiling its init,
mmscale.parallel.opt_state_shardings, as the Trainer's). That lets a CPU machine size a paper-scale
step with `compiled.memory_analysis()` (benchmarks/bench_paper_memory.py) and lower the step for
GPU and TPU without one (tests/models/test_lower_platforms.py).
"""

import jax
import jax.numpy as jnp
from flax import nnx

from mmscale import models
from mmscale import parallel
from mmscale import stages
from mmscale.data import pipeline
from mmscale.train.optimizer import make_optimizer
from mmscale.train.step import make_steps


def _sharded(tree, shardings):
  return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                      tree, shardings)


def batch_spec(config, mesh, rows: int | None = None) -> dict:
  """The train batch as sharded ShapeDtypeStructs: one eval batch's fields with `rows` rows
  (default config.data.batch_size)."""
  stream = pipeline.stream_names(config.data)[0]
  host = pipeline.eval_batches(stages.Frozen(config.data), stream, num_batches=1)[0]
  rows = int(config.data.batch_size) if rows is None else int(rows)
  sharding = parallel.batch_sharding(mesh)
  return {k: jax.ShapeDtypeStruct((rows,) + v.shape[1:], v.dtype, sharding=sharding)
          for k, v in host.items()}


def train_step(config, mesh, rows: int | None = None):
  """(jitted train step, (params, opt_state, batch, lr) as sharded ShapeDtypeStructs).

  Call it outside any mesh context (nnx.eval_shape would turn the logical axis names into
  shardings on that mesh and fail); lower the step under `jax.set_mesh(mesh)`: the MoE layer reads
  the mesh there.
  """
  model_cfg, inputs = stages.model_stage(config)
  model = nnx.eval_shape(lambda: models.NMM(model_cfg, inputs, nnx.Rngs(config.seed)))
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)
  params = _sharded(params, parallel.model_shardings(params, mesh))
  tx = make_optimizer(stages.Frozen(config.train), stages.param_labels(model_cfg, params),
                      model_cfg.encoder.lr_factor)
  opt_state = _sharded(jax.eval_shape(tx.init, params),
                       parallel.opt_state_shardings(tx, params, mesh))
  step, _ = make_steps(graphdef, rest, tx, model_cfg)
  lr = jax.ShapeDtypeStruct((), jnp.float32)
  return jax.jit(step, donate_argnums=(0, 1)), (params, opt_state, batch_spec(config, mesh, rows), lr)

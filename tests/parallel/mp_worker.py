"""One process of the 2-process x 4-device run (launched by test_multiprocess.py).

Computes the whole MoE model's loss and gradients with experts sharded over devices of both
processes and writes them (process 0) to the .npz named by argv[1]. Also importable: the test uses
`config()`, `batch()` and `loss_and_grads()` for the single-process reference.
"""

import os
import sys

import jax
import ml_collections
import numpy as np
from flax import nnx

from mmscale import parallel


def config():
  from mmscale.models import config as model_config

  c = ml_collections.ConfigDict()
  c.seed = 0
  c.model = model_config.defaults()
  c.model.update(dict(width=32, depth=2, heads=4, vocab_size=64, ffn="moe"))
  c.model.moe.update(dict(experts=8, top_k=2, every=1))
  c.data = ml_collections.ConfigDict(
      dict(seq_len=16, patch_dim=12, patch_size=2, image_size=4, batch_size=8))
  c.train = ml_collections.ConfigDict(dict(dtype="float32"))
  c.mesh = parallel.defaults()
  c.mesh.update(dict(data=1, expert=8))  # The all-to-all crosses the two processes.
  return c


def batch(b=8, n=16, p=12, vocab=64):
  rng = np.random.default_rng(0)
  modality = np.zeros((b, n), np.int32)
  modality[:, 3:7] = 1
  seg = np.ones((b, n), np.int32)
  seg[:, 10:] = 2
  seg[:, -2:] = 0
  pos = np.concatenate([np.arange(10), np.arange(n - 10)])[None].repeat(b, 0).astype(np.int32)
  tokens = np.where(modality == 0, rng.integers(1, vocab, (b, n)), 0).astype(np.int32)
  patches = np.where((modality > 0)[..., None], rng.normal(size=(b, n, p)), 0).astype(np.float32)
  raw = np.where(modality == 0, 1.0, 3.0).astype(np.float32) * (seg > 0)
  return dict(tokens=tokens, patches=patches, modality=modality, segment_ids=seg, positions=pos,
              block_ids=modality.copy(), raw_bytes=raw, stream=np.zeros((b, n), np.int32))


def loss_and_grads(cfg, mesh=None):
  """(loss, {param path: grad}) as numpy, under `mesh` when given."""
  from mmscale.models import build_model
  from mmscale.models.loss import loss_fn

  model = build_model(cfg, nnx.Rngs(0))
  data = batch()
  step = jax.jit(nnx.value_and_grad(lambda mdl, b: loss_fn(mdl, b, cfg)[0]))
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
  loss, grads = loss_and_grads(cfg, parallel.make_mesh(cfg))
  if jax.process_index() == 0:
    np.savez(out_path, loss=loss, **grads)
  jax.distributed.shutdown()


if __name__ == "__main__":
  main(sys.argv[1])

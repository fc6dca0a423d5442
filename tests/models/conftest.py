"""Tiny configs and hand-made batches for the model tests (independent of the data pipeline)."""

import ml_collections
import numpy as np
import pytest

from mmscale import parallel
from mmscale.models import config as model_config


def tiny_config(**model):
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.model = model_config.defaults()
  c.model.width, c.model.depth, c.model.heads, c.model.vocab_size = 32, 2, 4, 64
  c.model.encoder.width, c.model.encoder.depth, c.model.encoder.heads = 16, 2, 2
  c.model.vq_codebook_size = 4
  c.model.update(model)
  c.data = ml_collections.ConfigDict(
      dict(seq_len=16, patch_dim=12, patch_size=2, image_size=4, batch_size=2))
  c.train = ml_collections.ConfigDict(dict(dtype="float32"))
  return c


def moe_mesh_config(experts: int, mesh: dict, top_k: int = 2):
  """tiny_config with a MoE FFN in every layer, 8 batch rows and a mesh (sharded and
  multi-process equality tests)."""
  c = tiny_config(ffn="moe")
  c.model.moe.update(dict(experts=experts, top_k=top_k, every=1))
  c.data.batch_size = 8
  c.mesh = parallel.defaults()
  c.mesh.update(mesh)
  return c


def make_batch(b=2, n=16, p=12, seed=0, vocab=64):
  """Two packed segments per row: text, an image block of 4 patches, text | text, audio-free."""
  rng = np.random.default_rng(seed)
  modality = np.zeros((b, n), np.int32)
  block = np.zeros((b, n), np.int32)
  modality[:, 3:7] = 1
  block[:, 3:7] = 1
  seg = np.ones((b, n), np.int32)
  seg[:, 10:] = 2
  seg[:, -2:] = 0  # Padding.
  pos = np.concatenate([np.arange(10), np.arange(n - 10)])[None].repeat(b, 0).astype(np.int32)
  tokens = np.where(modality == 0, rng.integers(1, vocab, (b, n)), 0).astype(np.int32)
  patches = np.where((modality > 0)[..., None], rng.normal(size=(b, n, p)), 0).astype(np.float32)
  raw = np.where(modality == 0, 1.0, 3.0).astype(np.float32) * (seg > 0)
  return dict(tokens=tokens, patches=patches, modality=modality, segment_ids=seg, positions=pos,
              block_ids=block, raw_bytes=raw, stream=np.zeros((b, n), np.int32))


@pytest.fixture
def batch():
  return make_batch()

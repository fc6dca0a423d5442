"""Fixtures for the data tests: small configs and ArrayRecord shards written on the fly."""

import fcntl
import os
import warnings

import ml_collections
import numpy as np
import pytest

from mmscale.data import config as data_config
from mmscale.data import records


def make_config(**data_overrides) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict({"seed": 0, "data": data_config.defaults(),
                                 "train": {"eval_batches": 2}})
  c.data.batch_size = 4
  c.data.seq_len = 128
  c.data.procedural_size = 2000
  c.data.estimate_examples = 300  # Start-up of mix_by=tokens stays fast in tests.
  for k, v in data_overrides.items():
    c.data[k] = v
  return c


@pytest.fixture
def config():
  return make_config()


def doc_parts(i: int):
  """A document whose first text names its id (so tests can recover which example they saw)."""
  rng = np.random.default_rng(i)
  parts = [("text", f"doc{i:04d} ")]
  if i % 3 == 0:
    parts.append(("image", rng.integers(0, 255, (20, 12, 3), dtype=np.uint8)))
  parts.append(("text", "word " * int(rng.integers(1, 40))))
  return parts


@pytest.fixture
def shard_dir(tmp_path):
  """train: 60 docs in 2 shards; validation: 10 docs."""
  out = tmp_path / "shards"
  records.write_shards(out, "train", [records.encode(doc_parts(i), f"d{i}") for i in range(60)], 2)
  records.write_shards(out, "validation",
                       [records.encode(doc_parts(1000 + i), f"v{i}") for i in range(10)], 1)
  return out


# The shipped corpora's Debian packages, fetched once per machine (mmscale/packages.py)
# and kept across sessions; MMSCALE_TEST_PACKAGES moves the cache.
PACKAGES = os.environ.get("MMSCALE_TEST_PACKAGES",
                          os.path.join(os.path.expanduser("~"), ".cache", "mmscale-tests", "_packages"))
SHIPPED = ("fashion_mnist", "tuxpaint", "gimp")


@pytest.fixture(scope="session")
def shipped():
  """{corpus: {split: [(id, parts)]}}: 60 train / 6 validation documents of Fashion-MNIST, the Tux
  Paint stamps and the GIMP manual, converted from their Debian packages. Without a package
  registry, the procedural stand-in of `mmscale data prepare` takes a corpus's place (warned)."""
  from mmscale import packages  # pylint: disable=g-import-not-at-top
  from mmscale.data.corpora import CORPORA, prepare  # pylint: disable=g-import-not-at-top
  os.makedirs(PACKAGES, exist_ok=True)
  out = {}
  with open(os.path.join(PACKAGES, ".lock"), "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)  # xdist workers share the cache: one unpacks, others wait.
    for name in SHIPPED:
      mod = CORPORA[name]
      try:
        out[name] = mod.convert(mod.fetch(PACKAGES), 60)
      except (packages.InstallError, OSError, ValueError) as e:
        warnings.warn(f"{name}: {e}; procedural stand-in used")
        out[name] = {k: v[:60] for k, v in prepare.stand_in(mod.TASK).items()}
  return out

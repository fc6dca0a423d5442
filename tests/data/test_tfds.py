"""TFDS streams through tfds.data_source (tensorflow-datasets is optional: faked here)."""

import sys
import types

import numpy as np
import pytest

from mmscale.data import config as data_config
from mmscale.data import pipeline
from mmscale.errors import UserError
from tests.data.conftest import make_config


class _Label:
  names = ("cat", "dog")

  def int2str(self, i):
    return self.names[i]


class _Source(list):
  dataset_info = types.SimpleNamespace(features={"label": _Label()})


def _fake_tfds(calls):
  def data_source(name, split):
    calls.append((name, split))
    n = 20 if split == "train" else 4
    return _Source({"image": np.full((8, 8, 3), i, np.uint8), "label": np.int64(i % 2)}
                   for i in range(n))
  return types.SimpleNamespace(data_source=data_source)


def test_tfds_stream(monkeypatch):
  calls = []
  monkeypatch.setitem(sys.modules, "tensorflow_datasets", _fake_tfds(calls))
  c = make_config()
  c.data.streams = {"pets": data_config.stream("tfds", "pets_ds", fields="image=image,text=label")}
  b = next(pipeline.make_train_iterator(c))
  assert ("pets_ds", "train") in calls
  text = bytes(int(t) - 8 for t in b["tokens"][0] if t >= 8).decode()
  assert "cat" in text or "dog" in text
  assert (b["modality"] == 1).sum() % 16 == 0 and (b["modality"] == 1).any()
  assert pipeline.make_eval_batches(c, "pets", num_batches=1)
  assert ("pets_ds", "validation") in calls


def test_tfds_missing_is_a_clear_error(monkeypatch):
  monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # import raises ImportError
  c = make_config()
  c.data.streams = {"pets": data_config.stream("tfds", "pets_ds")}
  with pytest.raises(UserError, match="needs tensorflow-datasets"):
    pipeline.make_train_iterator(c)

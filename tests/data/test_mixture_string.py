"""A `data.mixture` string is the whole mixture: unnamed streams get 0, and the targets are shown."""

import numpy as np
import pytest

from mmscale.data import config as data_config
from mmscale.data import pipeline
from mmscale.errors import ConfigError
from tests.data.conftest import make_config


def test_a_mixture_string_is_the_whole_mixture():
  c = make_config(mixture="caption=50,text=60")
  data_config.validate(c)
  assert data_config.stream_weights(c) == pytest.approx(
      {"caption": 50 / 110, "interleaved": 0.0, "text": 60 / 110})
  assert data_config.describe_mixture(c) == (
      "mixture targets (by examples): caption 45.5%, interleaved 0.0%, text 54.5%")
  c.data.mixture = ""  # Without a string the streams' own weights hold.
  assert data_config.describe_mixture(c) == (
      "mixture targets (by examples): caption 45.0%, interleaved 45.0%, text 10.0%")


def test_an_all_zero_mixture_string_is_refused_in_one_line():
  with pytest.raises(ConfigError) as e:
    data_config.validate(make_config(mixture="caption=0,text=0"))
  assert str(e.value) == "config.data.mixture='caption=0,text=0': weights must not all be zero"


def test_an_unnamed_stream_is_never_drawn():
  it = pipeline.make_train_iterator(make_config(mixture="caption=50,text=60", batch_size=8))
  for _ in range(10):
    next(it)
  got = it.realised()["sequences"]
  assert got.get("interleaved", 0.0) == 0.0
  assert got["caption"] + got["text"] == pytest.approx(1.0)
  assert abs(got["caption"] - 50 / 110) < 0.1

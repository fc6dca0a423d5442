import pytest

from mmscale.data import config as data_config
from mmscale.errors import ConfigError
from tests.data.conftest import make_config


def check(config, message):
  with pytest.raises(ConfigError) as e:
    data_config.validate(config)
  assert message in str(e.value)
  assert "\n" not in str(e.value)


def test_defaults_validate_and_mixture():
  c = make_config()
  data_config.validate(c)
  assert data_config.stream_weights(c) == pytest.approx({"caption": .45, "interleaved": .45, "text": .1})
  c.data.mixture = "caption=1,interleaved=0,text=1"
  assert data_config.stream_weights(c) == pytest.approx({"caption": .5, "interleaved": 0, "text": .5})


def test_weights():
  c = make_config()
  c.data.streams.text.weight = -0.1
  check(c, "config.data.streams.text.weight=-0.1: must be a finite number >= 0")
  c = make_config()
  for s in c.data.streams.values():
    s.weight = 0.0
  check(c, "weights must not all be zero")
  c = make_config(mixture="caption=0,interleaved=0,text=0")
  check(c, "weights must not all be zero")


def test_unknown_stream_source_modality():
  check(make_config(mixture="caption=1,video=2"), "unknown stream 'video'")
  c = make_config()
  c.data.streams.text.source = "hub"
  check(c, "config.data.streams.text.source='hub': must be one of 'array_record', 'corpus', "
           "'hf', 'obelics', 'parquet', 'procedural', 'tfds', 'webdataset'")
  c = make_config()
  c.data.streams.text.name = "poems"
  check(c, "config.data.streams.text.name='poems'")
  check(make_config(modalities=("text", "smell")), "config.data.modalities='smell'")
  check(make_config(modalities=("text",)), "produces image, which is not in data.modalities")


def test_missing_shards(tmp_path):
  c = make_config()
  c.data.streams.text = data_config.stream("array_record", path=str(tmp_path / "nowhere"))
  check(c, f"config.data.streams.text.path='{tmp_path / 'nowhere'}': no ArrayRecord shards for split 'train'")
  c = make_config(data_dir=str(tmp_path))
  c.data.streams.text = data_config.stream("corpus", "brown")
  check(c, "config.data.streams.text.name='brown': no ArrayRecord shards")


def test_shapes_and_choices():
  check(make_config(patch_size=5), "config.data.patch_size=5: must divide data.image_size (16)")
  check(make_config(seq_len=10), "config.data.seq_len=10: must hold one image")
  check(make_config(patch_dim=10), "config.data.patch_dim=10: must be >= 48")
  check(make_config(mix_by="bytes"), "config.data.mix_by='bytes'")
  check(make_config(tokenizer="words"), "config.data.tokenizer='words'")
  check(make_config(batch_size=0), "config.data.batch_size=0: must be a positive integer")
  check(make_config(tokenizer="bpe", data_dir="/nonexistent"), "no BPE tokenizer at")

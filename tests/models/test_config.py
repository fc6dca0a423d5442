import pytest

from mmscale import config as config_lib
from mmscale import stages
from mmscale.errors import ConfigError
from mmscale.models import config as model_config
from tests.models.conftest import tiny_config


def test_defaults_validate():
  model_config.validate(tiny_config().model)


@pytest.mark.parametrize("key,value,message", [
    ("width", -1, "config.model.width=-1: must be a positive integer"),
    ("heads", 5, "config.model.heads=5: must divide model.width (32)"),
    ("fusion", "middle", "config.model.fusion='middle': must be one of 'early', 'late'"),
    ("ffn", "sparse", "config.model.ffn='sparse': must be one of"),
    ("modalities", ("image", "video"), "config.model.modalities='video': must be one of"),
    ("image_loss", "mse", "config.model.image_loss='mse'"),
    ("rope_theta", 0.0, "config.model.rope_theta=0.0: must be a finite number > 0"),
    ("depth", 0, "config.model.depth=0: must be a positive integer"),
])
def test_bad_values_name_the_key(key, value, message):
  c = tiny_config(**{key: value})
  with pytest.raises(ConfigError) as e:
    model_config.validate(c.model)
  assert str(e.value).startswith(message)
  assert "\n" not in str(e.value)


def test_bad_encoder_value():
  c = tiny_config()
  c.model.encoder.heads = 3
  with pytest.raises(ConfigError, match=r"config.model.encoder.heads=3: must divide"):
    model_config.validate(c.model)


def test_derived_dims():
  c = tiny_config(width=96, heads=3, fusion="late")
  d = stages.model_dims(c)
  assert d.decoder.head_dim == 32
  assert d.decoder.ffn_hidden == 256  # 8/3 * 96 = 256, already a multiple of 64.
  assert model_config.ffn_hidden(800, 0, 64) == 2176  # 2133.3 rounded up.
  assert model_config.ffn_hidden(800, 1000, 64) == 1000
  assert d.encoder.width == 16 and d.patches_per_image == 4


def test_modality_ids_match_data_pipeline():
  from mmscale.data import modalities
  assert tuple(modalities.MODALITIES) == model_config.MODALITIES
  assert [modalities.MODALITY_ID[m] for m in model_config.MODALITIES] == [0, 1, 2]


def test_streams_need_an_input_projection_for_their_media():
  # A check between two stages: it lives where the stages' configs are put together.
  from mmscale import config as config_lib
  c = config_lib.base_config()
  c.data.tokenizer = "byte"
  config_lib.validate(c)  # Default: caption/interleaved/text streams, image projection.
  c.data.streams.speech = {"source": "procedural", "name": "audio", "weight": 0.0}
  with pytest.raises(ConfigError, match=r"config.model.modalities=\('image',\): must include "
                     r"'audio': stream data.streams.speech produces it"):
    config_lib.validate(c)
  c.model.modalities = ("image", "audio")
  config_lib.validate(c)


def test_the_model_takes_its_vocabulary_as_an_input():
  """No file is read for the model's dimensions: a BPE config with no prepared data still has
  them (the trained BPE has at most data.bpe_vocab_size ids), so a sweep's plan needs no data."""
  from mmscale import config as config_lib
  c = config_lib.base_config()
  c.data.tokenizer, c.data.data_dir, c.data.bpe_vocab_size = "bpe", "/nonexistent", 777
  assert config_lib.vocab_size(c) == 777
  assert stages.model_dims(c).vocab_size == 777
  c.data.tokenizer = "byte"
  assert config_lib.vocab_size(c) == 264
  c.model.vocab_size = 300
  assert config_lib.vocab_size(c) == 300 == stages.model_dims(c, vocab_size=0).vocab_size
  c.model.vocab_size = 0
  with pytest.raises(ConfigError, match="no vocabulary size was passed"):
    stages.model_dims(c, vocab_size=0)


@pytest.mark.parametrize("seq_len,ok", [(16, True), (32, True), (128, True), (1024, True),
                                        (48, False), (100, False), (8, False)])
def test_pallas_attention_needs_a_tileable_seq_len(seq_len, ok):
  c = config_lib.base_config()
  c.model.attention_impl, c.data.seq_len = "pallas", seq_len
  # A check between two sections is run-level; the model's validator sees config.model alone.
  model_config.validate(c.model)
  if ok:
    config_lib.check_model_fits_data(c)
  else:
    with pytest.raises(ConfigError, match=rf"^config.data.seq_len={seq_len}: with "
                                          r"model.attention_impl='pallas' must be a multiple of 64"):
      config_lib.check_model_fits_data(c)
  c.model.attention_impl = "xla"
  config_lib.check_model_fits_data(c)  # The dense path takes any length.

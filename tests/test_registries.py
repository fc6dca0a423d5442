"""Every config choice is a registry whose keys are the allowed names: the validator accepts each key
and nothing else, and an unknown name is one line listing the keys sorted."""

import pytest

import launch
from mmscale import config as config_lib
from mmscale.data import config as data_config
from mmscale.data import feeding, sources, tokenizers
from mmscale.errors import ConfigError, UserError
from mmscale.laws import fit as fit_lib
from mmscale.laws import names as law_names
from mmscale.models import attention, blocks, fusion
from mmscale.models import config as model_config
from mmscale.models import loss, moe_config, moe_dispatch, moe_kernels, moe_routing
from mmscale.train import schedule


def _listing(registry):
  return ", ".join(map(repr, sorted(registry)))


def _validate_model(c):
  model_config.validate(c.model)


def _validate_moe(c):
  moe_config.validate(c.model)


def _validate_data(c):
  data_config.validate(c)


def _set(c, key, value):
  *path, leaf = key.split(".")
  for name in path:
    c = c[name]
  c[leaf] = value


# (registry, config key, the stage validator that checks it)
CONFIG_CHOICES = [
    (schedule.SCHEDULES, "train.schedule", config_lib.validate_train),
    (schedule.COOLDOWNS, "train.cooldown_shape", config_lib.validate_train),
    (loss.IMAGE_LOSSES, "model.image_loss", _validate_model),
    (blocks.FFNS, "model.ffn", _validate_model),
    (blocks.REMAT_POLICIES, "model.remat", _validate_model),
    (attention.ATTENTION_IMPLS, "model.attention_impl", _validate_model),
    (fusion.FUSIONS, "model.fusion", _validate_model),
    (moe_dispatch.MODES, "model.moe.mode", _validate_moe),
    (moe_routing.ROUTINGS, "model.moe.routing", _validate_moe),
    (moe_kernels.GROUPED_MATMULS, "model.moe.grouped_matmul", _validate_moe),
    (feeding.MIX_BY, "data.mix_by", _validate_data),
    (feeding.HOST_SPLITS, "data.host_split", _validate_data),
    (sources.ON_CORRUPT, "data.on_corrupt", _validate_data),
]


@pytest.mark.parametrize("registry,key,validate", CONFIG_CHOICES, ids=[k for _, k, _ in CONFIG_CHOICES])
def test_config_choice_accepts_exactly_the_registry_keys(registry, key, validate):
  for name in registry:
    c = config_lib.base_config()
    _set(c, key, name)
    validate(c)  # Raises on a name the validator does not accept.
  c = config_lib.base_config()
  _set(c, key, "nope")
  with pytest.raises(ConfigError) as e:
    validate(c)
  assert str(e.value) == f"config.{key}='nope': must be one of {_listing(registry)}"
  assert "\n" not in str(e.value)


def test_registry_entries_are_implementations():
  assert all(callable(f) for f in schedule.SCHEDULES.values())
  assert all(callable(f) for f in schedule.COOLDOWNS.values())
  assert all(callable(f) for f in blocks.FFNS.values())
  # "none" is the one image loss without an nll: loss_fn skips media positions for it.
  assert [k for k, f in loss.IMAGE_LOSSES.items() if f is None] == ["none"]
  assert all(callable(f) for k, f in loss.IMAGE_LOSSES.items() if k != "none")


def test_cooldown_shapes_decay_from_peak_to_zero():
  for name, make in schedule.COOLDOWNS.items():
    f = make(2.0, 10)
    assert float(f(0)) == pytest.approx(2.0), name
    assert float(f(10)) == pytest.approx(0.0, abs=1e-6), name


def test_laws_registry_is_the_fit_flag_and_the_fitter():
  from mmscale.laws import cli as laws_cli
  assert laws_cli.FLAGS["law"].parser.enum_values == sorted(law_names.LAWS)
  for law in law_names.LAWS:
    assert callable(law_names.fitter(law)), law
  with pytest.raises(UserError) as e:
    fit_lib.fit_all({}, law="kaplan")
  assert str(e.value) == "--law='kaplan': must be one of " + ", ".join(sorted(law_names.LAWS))


def test_launchers_registry_is_the_sweep_flag_and_the_modules():
  import importlib

  from mmscale.sweep import cli as sweep_cli
  assert sweep_cli.FLAGS["launcher"].parser.enum_values == sorted(launch.LAUNCHERS)
  for name, module in launch.LAUNCHERS.items():
    assert callable(importlib.import_module(module).launch), name


def test_data_sources_registry_is_what_the_stream_validator_accepts():
  from mmscale.data import procedural
  for name in sources.SOURCES:
    c = config_lib.base_config()
    c.data.streams.text.source = name
    try:
      data_config.validate(c)
    except ConfigError as e:  # Other keys of the stream may not suit the source; the name does.
      assert not str(e).startswith("config.data.streams.text.source="), str(e)
  for task in procedural.GENERATORS:  # A procedural stream's name picks its generator.
    c = config_lib.base_config()
    c.data.streams.text.name = task
    try:
      data_config.validate(c)
    except ConfigError as e:
      assert "must be one of" not in str(e), str(e)
  c = config_lib.base_config()
  c.data.streams.text.source = "hub"
  with pytest.raises(ConfigError) as e:
    data_config.validate(c)
  assert str(e.value) == ("config.data.streams.text.source='hub': must be one of "
                          + _listing(sources.SOURCES))


def test_model_choices_dispatch_through_their_registries():
  import jax.numpy as jnp
  seg = jnp.array([[1, 1, 1, 0]])
  blk = jnp.array([[0, 1, 1, 0]])
  dense = attention.make_mask(seg, blk, "decoder", "")
  assert dense.shape == (1, 1, 4, 4) and bool(dense[0, 0, 1, 2])  # Bidirectional in the image.
  assert all(attention.ATTENTION_IMPLS[k] is attention.ATTENTION_IMPLS[""] for k in ("xla", "cudnn"))
  assert isinstance(attention.make_mask(seg, blk, "decoder", "pallas"), attention.Intervals)
  # Fusion modules live where checkpoints and the optimizer's "encoder" group look for them.
  assert {k: f.attr for k, f in fusion.FUSIONS.items()} == {"early": "media_in", "late": "encoders"}
  assert moe_routing.ROUTINGS["agnostic"](2, 8) is None
  assert moe_routing.ROUTINGS["aware"](2, 8) == (0, 0, 0, 0, 1, 1, 1, 1)
  assert all(callable(f) for f in moe_dispatch.MODES.values())
  # "auto" is resolved by backend to one of the kernels before anything runs.
  assert moe_kernels.grouped_matmul("auto") in moe_kernels.GROUPED_MATMULS
  assert [k for k, f in moe_kernels.GROUPED_MATMULS.items() if f is None] == ["auto"]


def test_tokenizer_names_are_the_registry_and_files_go_by_suffix(tmp_path):
  c = config_lib.base_config()
  c.data.tokenizer = "byte"
  data_config.validate(c)
  assert tokenizers.get_tokenizer(c).name == "byte"
  c.data.tokenizer, c.data.data_dir = "bpe", str(tmp_path)  # Named, but not trained yet here.
  with pytest.raises(ConfigError) as e:
    data_config.validate(c)
  assert str(e.value).startswith("config.data.tokenizer='bpe': no BPE tokenizer at ")
  c.data.tokenizer = str(tmp_path / "lab.model")  # A user's file: accepted by suffix, then read.
  with pytest.raises(ConfigError) as e:
    data_config.validate(c)
  assert str(e.value).endswith("lab.model': no such file; use 'byte', 'bpe', a SentencePiece "
                               ".model file or a Hugging Face tokenizer.json")
  c.data.tokenizer = "words"
  with pytest.raises(ConfigError) as e:
    data_config.validate(c)
  assert str(e.value) == ("config.data.tokenizer='words': must be one of 'bpe', 'byte', "
                          "'PATH.json (tokenizer.json)', 'PATH.model (SentencePiece)'")


def test_data_choices_dispatch_through_their_registries():
  import numpy as np
  w = np.array([1.0, 3.0])
  assert list(feeding.MIX_BY["examples"](w, lambda: 1 / 0)) == [1.0, 3.0]  # Lengths never read.
  assert list(feeding.MIX_BY["tokens"](w, lambda: [2.0, 6.0])) == [0.5, 0.5]
  # Process 1 of 2, global batch 8, 4 rows each: the same global batch, its second half of rows.
  assert feeding.HOST_SPLITS["rows"](1, 2, 8, 4) == ((0, 1), 8, slice(4, 8))
  assert feeding.HOST_SPLITS["examples"](1, 2, 8, 4) == ((1, 2), 4, slice(None))

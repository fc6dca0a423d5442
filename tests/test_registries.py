"""Every config choice is a registry whose keys are the allowed names: the validator accepts each key
and nothing else, and an unknown name is one line listing the keys sorted."""

import pytest

import launch
from mmscale import config as config_lib
from mmscale.errors import ConfigError, UserError
from mmscale.laws import fit as fit_lib
from mmscale.laws import names as law_names
from mmscale.models import blocks
from mmscale.models import config as model_config
from mmscale.models import loss
from mmscale.train import schedule


def _listing(registry):
  return ", ".join(map(repr, sorted(registry)))


def _validate_model(c):
  model_config.validate(c)


# (registry, config key, the stage validator that checks it)
CONFIG_CHOICES = [
    (schedule.SCHEDULES, "train.schedule", config_lib.validate_train),
    (schedule.COOLDOWNS, "train.cooldown_shape", config_lib.validate_train),
    (loss.IMAGE_LOSSES, "model.image_loss", _validate_model),
    (blocks.FFNS, "model.ffn", _validate_model),
    (blocks.REMAT_POLICIES, "model.remat", _validate_model),
]


@pytest.mark.parametrize("registry,key,validate", CONFIG_CHOICES, ids=[k for _, k, _ in CONFIG_CHOICES])
def test_config_choice_accepts_exactly_the_registry_keys(registry, key, validate):
  section, leaf = key.split(".")
  for name in registry:
    c = config_lib.base_config()
    c[section][leaf] = name
    validate(c)  # Raises on a name the validator does not accept.
  c = config_lib.base_config()
  c[section][leaf] = "nope"
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
  from mmscale.data import config as data_config
  from mmscale.data import procedural, sources
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

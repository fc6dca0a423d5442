"""Run ids depend only on what changes the trained model or its evaluation (mmscale/config.py)."""

import json
import os
import re
import shutil

import ml_collections
import pytest

from mmscale import config as config_lib
from mmscale.errors import UserError
from mmscale.train.workdir import prepare_workdir

from sweep_helpers import REPO, run, starts, sweep_cmd


def _base():
  c = config_lib.base_config()
  c.model.vocab_size = 256
  return c


def _readme_not_hashed() -> list[str]:
  with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
    text = f.read()
  section = text.split("Keys that do not change a run id", 1)[1].split("\n\n", 1)[0]
  return re.findall(r"`([a-z_.*]+)`", section)


def test_readme_lists_exactly_the_keys_left_out_of_the_hash():
  assert _readme_not_hashed() == list(config_lib.NOT_HASHED)


def test_the_hashed_and_unhashed_keys_are_pinned():
  keys = {config_lib.pattern(k) for k in config_lib.flatten(config_lib.base_config().to_dict())}
  assert set(config_lib.HASHED) <= keys  # A key dropped from the base config is a visible change.
  assert not [k for k in config_lib.HASHED if not config_lib.is_hashed(k)]
  assert config_lib.NOT_HASHED == (
      "run.*", "train.log_every", "train.checkpoint_every", "train.keep_checkpoints",
      "train.save_steps", "data.data_dir", "data.num_threads", "data.prefetch",
      "data.cache_examples", "mesh.*", "model.remat", "model.attention_impl",
      "model.moe.grouped_matmul", "model.moe.block_size")


@pytest.mark.parametrize("key,value", [
    ("train.log_every", 3), ("train.checkpoint_every", 7), ("train.keep_checkpoints", 5),
    ("train.save_steps", (4, 8)), ("data.data_dir", "/elsewhere"), ("data.prefetch", 0),
    ("data.num_threads", 4), ("data.cache_examples", 0), ("mesh.fsdp", 2), ("mesh.data", 4),
    ("model.attention_impl", "xla"), ("model.moe.grouped_matmul", "dense"),
    ("model.moe.block_size", 32), ("run.tags.budget", 1e9)])
def test_presentation_and_implementation_keys_keep_the_id(key, value):
  a = _base()
  b = _base()
  node = b
  *path, leaf = key.split(".")
  for p in path:
    node = node[p]
  with node.ignore_type():
    node[leaf] = value
  assert config_lib.run_id(a) == config_lib.run_id(b)


@pytest.mark.parametrize("key,value", [
    ("seed", 1), ("train.lr", 1e-3), ("train.steps", 99), ("model.width", 32),
    ("model.moe.experts", 4), ("data.seq_len", 128), ("data.streams.text.weight", 0.2),
    ("data.mixture", "caption=1,interleaved=1,text=1"), ("train.eval_points", 5),
    ("train.eval_batches", 2)])
def test_model_data_and_evaluation_keys_change_the_id(key, value):
  a, b = _base(), _base()
  *path, leaf = key.split(".")
  node = b
  for p in path:
    node = node[p]
  node[leaf] = value
  assert config_lib.run_id(a) != config_lib.run_id(b)


def test_a_key_the_base_config_gains_later_keeps_old_ids(monkeypatch):
  old = _base()
  before = config_lib.run_id(old)
  real = config_lib.base_config

  def upgraded():
    c = real()
    c.train.new_feature = "off"  # The code gained a key whose default keeps the old behaviour.
    return c

  monkeypatch.setattr(config_lib, "base_config", upgraded)
  config_lib.hash_defaults.cache_clear()
  try:
    new = _base()
    assert new.train.new_feature == "off"
    assert config_lib.run_id(new) == before  # At its default: the same run.
    new.train.new_feature = "on"
    assert config_lib.run_id(new) != before  # Set to something else: a different run.
  finally:
    config_lib.hash_defaults.cache_clear()


def test_an_older_config_lacking_a_key_hashes_as_its_default():
  d = _base().to_dict()
  del d["model"]["qk_norm"]
  assert config_lib.run_id(ml_collections.ConfigDict(d)) == config_lib.run_id(_base())


def test_a_branch_names_its_trunk_by_name_not_by_directory():
  a, b = _base(), _base()
  a.train.init_from, a.train.init_step = "fake_s16_trunk-0123456789", 5
  b.train.init_from, b.train.init_step = "/mnt/other/root/fake_s16_trunk-abcdef0123", 5
  assert config_lib.run_id(a) == config_lib.run_id(b)
  b.train.init_from = "fake_s32_trunk-0123456789"
  assert config_lib.run_id(a) != config_lib.run_id(b)


def test_workdir_resumes_across_presentation_changes_and_an_upgrade(tmp_path):
  old = _base().to_dict()
  del old["train"]["dtype"]  # Written by an mmscale that did not have this key yet.
  (tmp_path / "config.json").write_text(json.dumps(old))
  c = _base()
  c.train.log_every = 1
  prepare_workdir(c, tmp_path)  # Not refused: the same run.
  with open(tmp_path / "config.json") as f:
    assert json.load(f)["train"]["log_every"] == 1
  other = _base()
  other.train.lr = 1.0
  with pytest.raises(UserError, match="holds a run with a different config.json"):
    prepare_workdir(other, tmp_path)


def test_a_finished_sweep_rerun_with_a_presentation_change_starts_nothing(tmp_path):
  root = str(tmp_path / "root")
  r = run(sweep_cmd(root, "two"))
  assert r.returncode == 0, r.stderr
  first = starts(root)
  assert len(first) == 2
  r = run(sweep_cmd(root, "two", 1, "--config.train.log_every=3",
                    "--config.train.keep_checkpoints=5", "--config.data.prefetch=0"))
  assert r.returncode == 0, r.stderr
  assert starts(root) == first


def _legacy_id(spec: dict) -> str:
  """The id as mmscale wrote it before the run-identity rules: a hash of every key."""
  import hashlib
  d = json.loads(json.dumps(spec["config"]))
  if d["train"].get("init_from"):
    d["train"]["init_from"] = os.path.basename(d["train"]["init_from"])
  h = hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:10]
  return f"{d['run']['name']}-{h}"


def test_runs_under_old_ids_are_migrated_with_a_note_and_not_rerun(tmp_path, fake_cooldown_sweep):
  root = tmp_path / "root"
  shutil.copytree(fake_cooldown_sweep[0], root)  # A finished cool-down sweep (conftest.py).
  first = starts(str(root))
  old_of = {}
  for d in sorted(p for p in root.iterdir() if (p / "run.json").exists()):
    spec = json.loads((d / "run.json").read_text())
    old_of[d.name] = _legacy_id(spec)
  assert all(old != new for new, old in old_of.items())
  for d in sorted(p for p in root.iterdir() if (p / "run.json").exists()):  # Rewrite as of old.
    spec = json.loads((d / "run.json").read_text())
    spec["run_id"] = old_of[d.name]
    if spec["depends_on"]:
      spec["depends_on"] = spec["config"]["train"]["init_from"] = old_of[spec["depends_on"]]
    (d / "run.json").write_text(json.dumps(spec))
    d.rename(root / old_of[d.name])
  r = run(sweep_cmd(str(root), "cooldown"))
  assert r.returncode == 0, r.stderr
  assert starts(str(root)) == first  # Nothing trained again.
  assert r.stdout.count("migrated ") == len(old_of) == 8
  for new, old in old_of.items():
    spec = json.loads((root / new / "run.json").read_text())
    assert spec["run_id"] == new and not (root / old).exists()
    assert json.loads((root / new / "migrated.json").read_text())["from"] == old
    if spec["depends_on"]:
      assert spec["depends_on"] in old_of and spec["config"]["train"]["init_from"] == spec["depends_on"]


def test_a_constant_lr_run_keeps_its_id_when_it_grows():
  a, b = _base(), _base()
  a.train.schedule = b.train.schedule = "constant"
  b.train.steps = 400
  assert config_lib.run_id(a) == config_lib.run_id(b)
  a.train.schedule = b.train.schedule = "wsd"  # A cool-down's shape depends on the length.
  assert config_lib.run_id(a) != config_lib.run_id(b)


def test_filling_new_defaults_into_an_old_spec_keeps_its_id():
  from mmscale.sweep import runner
  d = _base().to_dict()
  del d["model"]["qk_norm"], d["train"]["dtype"]  # A spec written before these keys existed.
  old = ml_collections.ConfigDict(d)
  added, filled = runner.fill_new_defaults(old)
  assert sorted(added) == ["model.qk_norm", "train.dtype"]
  assert config_lib.run_id(filled) == config_lib.run_id(old)

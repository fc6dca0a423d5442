"""The runner: a spec written by an older checkout still runs; exit codes follow the summary."""

import json
import os
import subprocess
import sys

import ml_collections

from mmscale import config as config_lib
from mmscale.sweep import runner
from sweep_helpers import FAKE_TRAIN, REPO, env


def test_fill_new_defaults_adds_only_missing_keys():
  c = config_lib.base_config()
  c.model.vocab_size = 300
  d = c.to_dict()
  del d["model"]["qk_norm"]  # As if the code gained this key after the spec was written.
  del d["train"]["dtype"]
  d["data"]["streams"] = {"text": d["data"]["streams"]["text"]}  # A study's own streams.
  del d["data"]["streams"]["text"]["weight"]
  added, out = runner.fill_new_defaults(ml_collections.ConfigDict(d))
  assert sorted(added) == ["data.streams.text.weight", "model.qk_norm", "train.dtype"]
  assert out.model.vocab_size == 300 and list(out.data.streams) == ["text"]
  assert out.model.qk_norm == c.model.qk_norm and out.train.dtype == c.train.dtype


def test_exit_codes(tmp_path):
  d = tmp_path / "run"
  d.mkdir()
  c = config_lib.base_config()
  c.train.steps = 3
  (d / "run.json").write_text(json.dumps({"config": c.to_dict()}, default=str))
  for fail, code in (("", 0), ("run", 1)):
    (d / "summary.json").unlink(missing_ok=True)
    r = subprocess.run([sys.executable, "-m", "mmscale.sweep.runner", f"--train_fn={FAKE_TRAIN}",
                        str(d)], cwd=REPO, env=env(FAKE_FAIL=fail), capture_output=True, text=True)
    assert r.returncode == code, r.stderr
  assert os.path.exists(tmp_path / "starts.log")  # Ran with the root as working directory.

"""Every bad config value stops `mmscale train` before any work: one line naming it, exit code 2."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _train(*args, workdir):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  return subprocess.run(
      [sys.executable, "-m", "mmscale", "train", "--config=experiments/tiny.py",
       f"--workdir={workdir}", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


BAD = [
    ("--config.model.width=-8", "config.model.width=-8"),
    ("--config.model.heads=5", "config.model.heads=5"),
    ("--config.train.lr=0", "config.train.lr=0"),
    ("--config.train.lr=-1e-3", "config.train.lr=-0.001"),
    ("--config.data.streams.text.weight=-1", "config.data.streams.text.weight=-1"),
    ("--config.data.modalities=('text','smell')", "config.data.modalities"),
]


@pytest.mark.parametrize("flag,expected", BAD)
def test_bad_value_exits_2_with_one_line(tmp_path, flag, expected):
  r = _train(flag, workdir=tmp_path / "run")
  assert r.returncode == 2, r.stderr
  lines = [l for l in r.stderr.strip().splitlines() if l.strip()]
  assert len(lines) == 1, r.stderr
  assert lines[0].startswith("mmscale: error: ") and expected in lines[0], lines[0]
  assert not (tmp_path / "run").exists()  # No work started, nothing written.


def test_all_zero_weights(tmp_path):
  r = _train("--config.data.streams.caption.weight=0", "--config.data.streams.interleaved.weight=0",
             "--config.data.streams.text.weight=0", workdir=tmp_path / "run")
  assert r.returncode == 2 and "weights must not all be zero" in r.stderr, r.stderr


def test_workdir_that_is_a_file(tmp_path):
  f = tmp_path / "file"
  f.write_text("keep me")
  r = _train(workdir=f)
  assert r.returncode == 2 and "is a file" in r.stderr, r.stderr
  assert f.read_text() == "keep me"


def test_missing_config_file(tmp_path):
  r = subprocess.run([sys.executable, "-m", "mmscale", "train", "--config=experiments/nope.py",
                      f"--workdir={tmp_path}/run"], cwd=ROOT, capture_output=True, text=True, timeout=60)
  assert r.returncode == 2
  assert r.stderr.strip() == "mmscale: error: --config=experiments/nope.py: no such config file"


def test_bad_config_argument_is_one_line(tmp_path):
  r = subprocess.run([sys.executable, "-m", "mmscale", "train", "--config=experiments/tiny.py:bogus=1",
                      f"--workdir={tmp_path}/run"], cwd=ROOT, capture_output=True, text=True, timeout=60)
  assert r.returncode == 2
  assert r.stderr.strip().splitlines() == [
      "mmscale: error: flag --config=experiments/tiny.py:bogus=1: ValueError: experiments/tiny.py: "
      "unknown argument 'bogus' (allowed: steps=N) (at experiments/tiny.py:35)"]

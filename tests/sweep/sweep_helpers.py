"""Shared helpers for the sweep tests: the fake study and trainer, `mmscale` in a subprocess."""

import os
import subprocess
import sys


HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
FAKE_STUDY = os.path.join(HERE, "fake_study.py")
FAKE_TRAIN = os.path.join(HERE, "fake_train.py") + ":train"


def load_fake_study(arg=""):
  from mmscale.sweep import study as study_lib
  module = study_lib.load_module(FAKE_STUDY)
  return study_lib.build(FAKE_STUDY, arg, module.get_config(arg))


def sweep_cmd(root, arg="", workers=1, *extra):
  return [sys.executable, "-m", "mmscale", "sweep", f"--config={FAKE_STUDY}:{arg}" if arg else
          f"--config={FAKE_STUDY}", f"--root={root}", f"--workers={workers}",
          f"--train_fn={FAKE_TRAIN}", "--poll_s=0.1", *extra]


def env(**kw):
  e = dict(os.environ, PYTHONPATH=REPO, **{k: str(v) for k, v in kw.items()})
  return e


def run(cmd, timeout=120, **kw):
  return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                        env=env(**kw))


def starts(root):
  path = os.path.join(root, "starts.log")
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return f.read().split()


PY = sys.executable

"""Makes the sweep tests' helper modules (fake study/trainer, SLURM cluster) importable under
pytest's importlib import mode, and shares the finished sweeps several test files start from."""

import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


@pytest.fixture(scope="session")
def real_sweep(tmp_path_factory):
  """A finished, uninterrupted sweep of real_study.py (3 runs with the real trainer, 2 workers):
  the reference of test_real_sweep.py and the starting point of test_extend_budget_real.py, which
  grows a copy of it. Trained once per session (each run is a process, ~10 CPU-s)."""
  from sweep_helpers import PY, REPO, env  # pylint: disable=g-import-not-at-top
  root = str(tmp_path_factory.mktemp("real_sweep"))
  r = subprocess.run([PY, "-m", "mmscale", "sweep", f"--config={os.path.join(HERE, 'real_study.py')}",
                      f"--root={root}", "--workers=2", "--poll_s=0.2"],
                     cwd=REPO, env=env(), capture_output=True, text=True, timeout=900)
  assert r.returncode == 0, r.stderr[-3000:]
  return root


@pytest.fixture(scope="session")
def fake_cooldown_sweep(tmp_path_factory):
  """(root, completed `mmscale sweep`) of fake_study.py:cooldown with 2 workers and the fake
  trainer, uninterrupted: the reference of test_sweep.py, and the starting point of
  test_extend_budget.py and test_run_ids.py, which change copies of it."""
  from sweep_helpers import run, sweep_cmd  # pylint: disable=g-import-not-at-top
  root = str(tmp_path_factory.mktemp("fake_cooldown"))
  r = run(sweep_cmd(root, "cooldown", 2))
  assert r.returncode == 0, r.stderr[-2000:]
  return root, r

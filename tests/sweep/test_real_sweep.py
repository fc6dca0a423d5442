"""The sweep with the real trainer: kill -9 at a random step and rerun gives bit-identical
records; SIGTERM checkpoints and exits 143; a rerun of a finished sweep does nothing."""

import json
import os
import random
import signal
import subprocess
import time

import pytest

from sweep_helpers import PY, REPO, env

pytestmark = pytest.mark.slow
STUDY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "real_study.py")
# Clock readings; and run_id, which the trainer hashes from a config whose train.init_from is the
# trunk's absolute path (so a branch's records name a different id under another root; collect
# uses the directory's id). Everything else must match bit for bit.
VOLATILE = ("wall_time", "train_time", "run_id")


def _cmd(root, workers=2):
  return [PY, "-m", "mmscale", "sweep", f"--config={STUDY}", f"--root={root}",
          f"--workers={workers}", "--poll_s=0.2"]


def _records(root):
  out = {}
  for name in sorted(os.listdir(root)):
    path = os.path.join(root, name, "records.jsonl")
    if os.path.exists(path):
      recs = [json.loads(x) for x in open(path)]
      out[name] = [{k: v for k, v in r.items() if k not in VOLATILE} for r in recs]
  return out


def _max_step(root):
  best = 0
  for name in os.listdir(root) if os.path.isdir(root) else []:
    path = os.path.join(root, name, "records.jsonl")
    if os.path.exists(path):
      for line in open(path).read().splitlines()[:-1]:
        best = max(best, json.loads(line).get("step", 0))
  return best


def _start(root, workers=1):
  return subprocess.Popen(_cmd(root, workers), cwd=REPO, env=env(), stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)


def _wait_step(root, step, p, timeout=300):
  t0 = time.time()
  while _max_step(root) < step:
    assert p.poll() is None and time.time() - t0 < timeout, "sweep ended before the kill"
    time.sleep(0.05)


@pytest.fixture
def reference(real_sweep):
  """The uninterrupted sweep of the study (_cmd's, trained once per session: tests/sweep/conftest.py)."""
  return real_sweep


def test_rerun_does_nothing(reference):
  logs = {n: os.path.getsize(os.path.join(reference, n, "train.log"))
          for n in os.listdir(reference) if os.path.exists(os.path.join(reference, n, "train.log"))}
  assert len(logs) == 3
  before = _records(reference)
  r = subprocess.run(_cmd(reference), cwd=REPO, env=env(), capture_output=True, text=True,
                     timeout=300)
  assert r.returncode == 0 and "3 runs: 3 done" in r.stdout
  assert _records(reference) == before
  assert all(os.path.getsize(os.path.join(reference, n, "train.log")) == s for n, s in logs.items())


def test_sigterm_then_sigkill_then_rerun_is_bit_identical(reference, tmp_path):
  """SIGTERM: the run checkpoints and the sweep exits 143. Then a resumed sweep is SIGKILLed at a
  random later step, and a final rerun must give records identical to the reference."""
  root = str(tmp_path)
  p = _start(root)
  _wait_step(root, 6, p)
  p.send_signal(signal.SIGTERM)
  _, err = p.communicate(timeout=300)
  assert p.returncode == 143, err[-3000:]
  summaries = {n: json.load(open(os.path.join(root, n, "summary.json"))) for n in os.listdir(root)
               if os.path.exists(os.path.join(root, n, "summary.json"))}
  pre = {n: s for n, s in summaries.items() if s["status"] == "preempted"}
  assert len(pre) == 1
  (name, s), = pre.items()
  assert s["step"] < s["steps"]
  assert os.path.isdir(os.path.join(root, name, "checkpoints", str(s["step"])))
  step = random.Random().randint(_max_step(root) + 2, 36)
  p = _start(root)
  _wait_step(root, step, p)
  p.send_signal(signal.SIGKILL)  # Workers and runs die with it (PR_SET_PDEATHSIG).
  p.wait()
  r = subprocess.run(_cmd(root), cwd=REPO, env=env(), capture_output=True, text=True, timeout=900)
  assert r.returncode == 0, f"killed at step {step}: " + r.stderr[-3000:]
  assert _records(root) == _records(reference), f"killed at step {step}"

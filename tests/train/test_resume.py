"""A run killed (SIGKILL) or preempted (SIGTERM) resumes to bit-identical records."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMALL = ["--config=experiments/tiny.py:steps=24", "--config.model.width=32", "--config.model.depth=1",
         "--config.model.heads=2", "--config.data.seq_len=128", "--config.data.batch_size=4",
         "--config.train.warmup_steps=2", "--config.train.log_every=1", "--config.train.eval_points=3",
         "--config.train.eval_batches=1", "--config.train.checkpoint_every=4"]


def _cmd(workdir, *extra):
  return [sys.executable, "-m", "mmscale", "train", *SMALL, *extra, f"--workdir={workdir}"]


def _env():
  return dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=1")


def _losses(workdir):
  rows = [json.loads(l) for l in open(os.path.join(workdir, "records.jsonl"))]
  return [(r["kind"], r["step"], r.get("loss"), json.dumps(r.get("val"), sort_keys=True), r["tokens"])
          for r in rows]


def _wait_for_checkpoint(workdir, proc, min_step):
  ckpt = os.path.join(workdir, "checkpoints")
  deadline = time.time() + 240
  while time.time() < deadline and proc.poll() is None:
    steps = [int(d) for d in os.listdir(ckpt) if d.isdigit()] if os.path.isdir(ckpt) else []
    if steps and max(steps) >= min_step:
      return
    time.sleep(0.2)
  pytest.fail(f"no checkpoint at step >= {min_step} appeared")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("ref") / "run"
  subprocess.run(_cmd(workdir), cwd=ROOT, env=_env(), check=True, capture_output=True, timeout=300)
  return workdir


@pytest.mark.slow
def test_records_carry_the_learning_rate_of_each_update(reference):
  from mmscale.train.schedule import schedule_value
  config = json.load(open(reference / "config.json"))
  train = type("Train", (), {})()
  train.__dict__.update(config["train"])
  rows = [json.loads(l) for l in open(reference / "records.jsonl")]
  lrs = {r["step"]: r["lr"] for r in rows if r["kind"] == "train"}
  assert sorted(lrs) == list(range(1, 25))
  for step, lr in lrs.items():  # The update that produced step s used the schedule at s - 1.
    assert lr == pytest.approx(schedule_value(train, step - 1), rel=1e-6)
  assert lrs[1] == 0.0 and max(lrs.values()) == pytest.approx(config["train"]["lr"])


@pytest.mark.slow
def test_sigkill_then_resume_is_bit_identical(tmp_path, reference):
  workdir = tmp_path / "run"
  proc = subprocess.Popen(_cmd(workdir), cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  _wait_for_checkpoint(workdir, proc, 8)
  proc.kill()
  proc.wait()
  with open(workdir / "records.jsonl", "a") as f:
    f.write('{"kind": "train", "st')  # As if killed mid-append.
  subprocess.run(_cmd(workdir), cwd=ROOT, env=_env(), check=True, capture_output=True, timeout=300)
  assert _losses(workdir) == _losses(reference)
  assert json.load(open(workdir / "summary.json"))["status"] == "done"


def _sigterm(cmd, workdir, wait, may_finish=True):
  """Starts `cmd`, sends SIGTERM once `wait(proc)` returns, checks the exit code 143 and returns
  summary.json. `may_finish`: a run that finished before the signal came skips the test."""
  proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
  wait(proc)
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=120)
  summary = json.load(open(workdir / "summary.json"))
  if may_finish and summary["status"] == "done":
    pytest.skip("the run finished before SIGTERM arrived")
  assert proc.returncode == 143, err[-2000:]
  return summary


@pytest.mark.slow
def test_sigterm_saves_and_exits_then_resumes(tmp_path, reference):
  workdir = tmp_path / "run"
  summary = _sigterm(_cmd(workdir), workdir, lambda p: _wait_for_checkpoint(workdir, p, 4))
  assert summary["status"] == "preempted"
  saved = max(int(d) for d in os.listdir(workdir / "checkpoints") if d.isdigit())
  assert saved == summary["step"]  # The checkpoint is at the step where it stopped.
  subprocess.run(_cmd(workdir), cwd=ROOT, env=_env(), check=True, capture_output=True, timeout=300)
  assert _losses(workdir) == _losses(reference)


# Sparse logging, rare saves: a stop lands between logged steps, and a corrupt latest checkpoint
# sends the run 50 steps back.
SPARSE = ["--config=experiments/tiny.py:steps=200", *SMALL[1:7], "--config.train.log_every=5",
          "--config.train.eval_points=4", "--config.train.eval_batches=1",
          "--config.train.checkpoint_every=50"]


def _sparse(workdir, *extra):
  return [sys.executable, "-m", "mmscale", "train", *SPARSE, *extra, f"--workdir={workdir}"]


def _records(workdir):
  """Every field of every record but the wall-clock ones."""
  rows = [json.loads(l) for l in open(os.path.join(workdir, "records.jsonl"))]
  return [{k: v for k, v in r.items() if k != "wall_time"} for r in rows]


def _steps(workdir):
  return sorted(int(d) for d in os.listdir(os.path.join(workdir, "checkpoints")) if d.isdigit())


@pytest.fixture(scope="module")
def sparse_reference(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("sparse") / "run"
  subprocess.run(_sparse(workdir), cwd=ROOT, env=_env(), check=True, capture_output=True, timeout=600)
  return workdir


@pytest.mark.slow
def test_iterator_states_are_kept_only_for_kept_checkpoints(sparse_reference):
  assert _steps(sparse_reference) == [150, 200]
  assert sorted(os.listdir(sparse_reference / "checkpoints" / "data_state")) == [
      "150.p0.json", "200.p0.json"]


def _wait_for_record(workdir, proc, min_step):
  path = os.path.join(workdir, "records.jsonl")
  deadline = time.time() + 240
  while time.time() < deadline and proc.poll() is None:
    if os.path.exists(path) and any(json.loads(l).get("step", 0) >= min_step
                                    for l in open(path).read().splitlines()[:-1]):
      return
    time.sleep(0.05)
  pytest.fail(f"no record at step >= {min_step} appeared")


@pytest.mark.slow
def test_sigterm_between_logged_steps_resumes_to_identical_records(tmp_path, sparse_reference):
  workdir = tmp_path / "run"
  summary = _sigterm(_sparse(workdir), workdir, lambda p: _wait_for_record(workdir, p, 5))
  assert _steps(workdir)[-1] == summary["step"]
  subprocess.run(_sparse(workdir), cwd=ROOT, env=_env(), check=True, capture_output=True, timeout=300)
  assert _records(workdir) == _records(sparse_reference)


@pytest.mark.slow
@pytest.mark.parametrize("delay", [1.0, "config.json"])
def test_sigterm_while_starting_up_is_a_preemption(tmp_path, sparse_reference, delay):
  """At 1 s the process imports JAX; once config.json is written it builds, compiles, evaluates."""
  workdir = tmp_path / "run"

  def wait(_):
    if delay == "config.json":
      deadline = time.time() + 120
      while not (workdir / "config.json").exists() and time.time() < deadline:
        time.sleep(0.01)
    else:
      time.sleep(delay)

  summary = _sigterm(_sparse(workdir), workdir, wait, may_finish=False)
  assert summary["status"] == "preempted" and summary["step"] == 0
  subprocess.run(_sparse(workdir), cwd=ROOT, env=_env(), check=True, capture_output=True, timeout=300)
  assert _records(workdir) == _records(sparse_reference)


def _truncate(step_dir):
  big = max((os.path.join(r, f) for r, _, fs in os.walk(step_dir) for f in fs), key=os.path.getsize)
  with open(big, "r+b") as f:
    f.truncate(os.path.getsize(big) // 2)


def _empty(step_dir):
  shutil.rmtree(step_dir)
  os.mkdir(step_dir)


@pytest.mark.slow
@pytest.mark.parametrize("corrupt", [_truncate, _empty])
def test_corrupt_latest_checkpoint_is_moved_aside_and_the_run_finishes_identically(
    tmp_path, sparse_reference, corrupt):
  workdir = tmp_path / "run"
  shutil.copytree(sparse_reference, workdir)
  os.remove(workdir / "summary.json")  # As if the run had been killed after its last save.
  corrupt(workdir / "checkpoints" / "200")
  r = subprocess.run(_sparse(workdir), cwd=ROOT, env=_env(), capture_output=True, text=True,
                     timeout=300)
  assert r.returncode == 0, r.stderr[-3000:]
  assert "resuming" in r.stderr and "from step 150" in r.stderr
  assert _records(workdir) == _records(sparse_reference)
  assert json.load(open(workdir / "summary.json"))["status"] == "done"
  assert _steps(workdir) == [150, 200]
  (aside,) = os.listdir(workdir / "checkpoints.unreadable")
  assert aside.startswith("200.") and os.listdir(workdir / "checkpoints.unreadable" / aside)


_FULL_DISK = """
import errno, os, sys
from mmscale.train import checkpoint
real = checkpoint.write_json_atomic
def full(path, obj):  # The iterator-state file is the first thing a save writes.
  if os.path.basename(path).split(".")[0] == "100":
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
  return real(path, obj)
checkpoint.write_json_atomic = full
from mmscale import cli
sys.exit(cli.run(["mmscale", "train", *sys.argv[1:]]))
"""


@pytest.mark.slow
def test_full_disk_during_a_save_is_one_line_and_leaves_the_records_intact(tmp_path,
                                                                            sparse_reference):
  workdir = tmp_path / "run"
  r = subprocess.run([sys.executable, "-c", _FULL_DISK, *SPARSE, f"--workdir={workdir}"], cwd=ROOT,
                     env=_env(), capture_output=True, text=True, timeout=300)
  assert r.returncode == 1, r.stderr[-3000:]
  assert "Traceback" not in r.stderr
  assert r.stderr.strip().splitlines()[-1] == (
      f"mmscale: error: checkpoint save at step 100 into {workdir / 'checkpoints'} failed: no space "
      "left on the device (No space left on device); the records and the earlier checkpoints are "
      "intact: fix the cause and run the same command again to resume")
  written = _records(workdir)
  assert written == _records(sparse_reference)[:len(written)]  # Intact: a prefix of the real ones.
  assert _steps(workdir) == [50]
  subprocess.run(_sparse(workdir), cwd=ROOT, env=_env(), check=True, capture_output=True, timeout=300)
  assert _records(workdir) == _records(sparse_reference)


@pytest.mark.slow
def test_evaluations_are_not_saves(tmp_path):
  workdir = tmp_path / "run"
  subprocess.run(_cmd(workdir, "--config.train.eval_points=5", "--config.train.checkpoint_every=0",
                      "--config.train.keep_checkpoints=9"),
                 cwd=ROOT, env=_env(), check=True, capture_output=True, timeout=300)
  evals = [json.loads(l)["step"] for l in open(workdir / "records.jsonl")
           if json.loads(l)["kind"] == "eval"]
  assert evals == [5, 10, 14, 19, 24] and _steps(workdir) == [24]

"""A run killed (SIGKILL) or preempted (SIGTERM) resumes to bit-identical records."""

import json
import os
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


@pytest.mark.slow
def test_sigterm_saves_and_exits_then_resumes(tmp_path, reference):
  workdir = tmp_path / "run"
  proc = subprocess.Popen(_cmd(workdir), cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
  _wait_for_checkpoint(workdir, proc, 4)
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=120)
  summary = json.load(open(workdir / "summary.json"))
  if summary["status"] == "done":
    pytest.skip("the run finished before SIGTERM arrived")
  assert proc.returncode == 143, err[-2000:]
  assert summary["status"] == "preempted"
  saved = max(int(d) for d in os.listdir(workdir / "checkpoints") if d.isdigit())
  assert saved == summary["step"]  # The checkpoint is at the step where it stopped.
  subprocess.run(_cmd(workdir), cwd=ROOT, env=_env(), check=True, capture_output=True, timeout=300)
  assert _losses(workdir) == _losses(reference)

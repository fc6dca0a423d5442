"""Preemption at any moment of a sweep's run ends in a requeue (143), never in a failed run; the
claim timeout is set from `mmscale sweep`. Fake trainer, real processes and signals."""

import json
import os
import signal
import subprocess
import time

import pytest

from sweep_helpers import PY, REPO, env, load_fake_study, run, starts, sweep_cmd


def _statuses(root):
  r = run([PY, "-m", "mmscale", "status", f"--root={root}", "--json"])
  assert r.returncode == 0, r.stderr[-2000:]
  return {x["run_id"]: x["status"] for x in json.loads(r.stdout)}


def _no_failure_left(root, statuses):
  assert "failed" not in statuses.values(), statuses
  assert not [n for n in os.listdir(root) if os.path.exists(os.path.join(root, n, "worker_error.json"))]


def _wait_for_claim(root, timeout=60):
  deadline = time.time() + timeout
  while time.time() < deadline:
    if any(os.path.exists(os.path.join(root, n, "claim.json")) for n in os.listdir(root)
           if os.path.isdir(os.path.join(root, n))):
      return
    time.sleep(0.05)
  raise AssertionError("no run was claimed")


@pytest.mark.slow
def test_sigterm_while_the_run_imports_is_requeued_and_a_rerun_finishes_it(tmp_path):
  root = str(tmp_path)
  p = subprocess.Popen(sweep_cmd(root, "two", 1), cwd=REPO, env=env(FAKE_IMPORT_S=6),
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  _wait_for_claim(root)
  time.sleep(2)  # The runner is importing its (slow) trainer module now.
  p.send_signal(signal.SIGTERM)
  _, err = p.communicate(timeout=120)
  assert p.returncode == 143, err[-2000:]
  statuses = _statuses(root)
  _no_failure_left(root, statuses)
  assert sorted(statuses.values()) == ["pending", "preempted"]
  (stopped,) = [k for k, v in statuses.items() if v == "preempted"]
  assert json.load(open(os.path.join(root, stopped, "summary.json")))["step"] == 0  # Before step 1.
  r = run(sweep_cmd(root, "two", 1))  # The requeue: no --retry_failed needed.
  assert r.returncode == 0, r.stderr[-2000:]
  assert set(_statuses(root).values()) == {"done"}


@pytest.mark.slow
def test_run_killed_by_sigterm_before_it_could_catch_it_is_preempted_not_failed(tmp_path):
  root = str(tmp_path)
  r = run(sweep_cmd(root, "two", 1), FAKE_SELF_TERM="fake_s16")
  assert r.returncode == 143, r.stderr[-2000:]
  statuses = _statuses(root)
  _no_failure_left(root, statuses)
  assert set(statuses.values()) == {"pending"}
  r = run(sweep_cmd(root, "two", 1))
  assert r.returncode == 0, r.stderr[-2000:]
  assert set(_statuses(root).values()) == {"done"}


@pytest.mark.slow
@pytest.mark.parametrize("claim_age_s", [40])
def test_claim_timeout_is_set_from_sweep(tmp_path, claim_age_s):
  """A claim `claim_age_s` old is live under the default timeout (120 s) and stale under 30 s: a
  sweep with --claim_timeout_s=30 takes it over at once instead of waiting out the default."""
  from mmscale.sweep import registry

  root = str(tmp_path)
  specs = load_fake_study("two").specs
  registry.write_specs(root, specs)
  claim = os.path.join(root, specs[0].run_id, "claim.json")
  with open(claim, "w") as f:  # A worker on another host that stopped beating.
    json.dump({"host": "elsewhere", "pid": 1, "token": "t", "worker": "w", "time": 0}, f)

  def age_claim():
    os.utime(claim, (time.time() - claim_age_s, time.time() - claim_age_s))

  age_claim()
  with pytest.raises(subprocess.TimeoutExpired):  # The default waits for that worker.
    run(sweep_cmd(root, "two", 1), timeout=8)
  age_claim()
  # Waiting out the default would take 120 - claim_age_s s, past this timeout.
  r = run(sweep_cmd(root, "two", 1, "--claim_timeout_s=30"), timeout=120 - claim_age_s - 10)
  assert r.returncode == 0, r.stderr[-2000:]
  assert set(_statuses(root).values()) == {"done"}


@pytest.mark.parametrize("value", ["5", "0", "-1", "inf"])
def test_bad_claim_timeout_is_one_line_and_writes_nothing(tmp_path, value):
  root = tmp_path / "root"
  r = run(sweep_cmd(str(root), "two", 1, f"--claim_timeout_s={value}"))
  assert r.returncode == 2
  assert r.stderr.strip().splitlines() == [
      f"mmscale: error: --claim_timeout_s={float(value):g}: must be a number >= 30 (claims beat "
      "every 10 s; a shorter timeout would take live runs away from their workers)"]
  assert not root.exists()

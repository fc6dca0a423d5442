"""`mmscale sweep/status/collect` end to end with the fake trainer (real processes and signals)."""

import csv
import json
import os
import random
import signal
import subprocess
import time

import pytest

from sweep_helpers import FAKE_STUDY, PY, REPO, env, run, starts, sweep_cmd


def _records(root):
  out = {}
  for name in sorted(os.listdir(root)):
    path = os.path.join(root, name, "records.jsonl")
    if os.path.exists(path):
      with open(path) as f:
        out[name] = [json.loads(line) for line in f]
  return out


@pytest.fixture
def reference(fake_cooldown_sweep):
  """An uninterrupted sweep of the cool-down study with 2 workers (once per session: conftest.py)."""
  return fake_cooldown_sweep


def test_every_run_once_and_rerun_does_nothing(reference, tmp_path):
  root, r = reference
  ids = sorted(n for n in os.listdir(root) if os.path.isfile(os.path.join(root, n, "run.json")))
  assert len(ids) == 8 and sorted(starts(root)) == ids  # Each run started exactly once.
  assert "8 runs: 8 done" in r.stdout
  again = run(sweep_cmd(root, "cooldown", 2))
  assert again.returncode == 0 and sorted(starts(root)) == ids
  status = run([PY, "-m", "mmscale", "status", f"--root={root}", "--json"])
  rows = json.loads(status.stdout)
  assert {x["status"] for x in rows} == {"done"} and all(x["step"] == x["steps"] for x in rows)
  out = str(tmp_path / "t.csv")
  c = run([PY, "-m", "mmscale", "collect", f"--root={root}", f"--out={out}"])
  assert c.returncode == 0, c.stderr
  table = list(csv.DictReader(open(out)))
  # Every eval point x validation source, with the study's axes as columns.
  n_evals = sum(sum(rec["kind"] == "eval" for rec in recs) for recs in _records(root).values())
  assert len(table) == 2 * n_evals
  assert {"size", "budget", "trunk", "kind", "final", "loss_image", "tokens_text"} <= set(table[0])
  finals = [row for row in table if row["final"] == "True"]
  assert {row["run_id"] for row in finals} == {i for i in ids if "trunk" not in i}
  assert all(row["kind"] == "branch" and row["trunk"] in ids for row in finals)


def _start(root, arg, workers, **kw):
  return subprocess.Popen(sweep_cmd(root, arg, workers), cwd=REPO, env=env(**kw),
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _wait_for_step(root, step, timeout=60):
  t0 = time.time()
  while time.time() - t0 < timeout:
    for name, recs in _records_safe(root).items():
      if any(r.get("step", 0) >= step for r in recs):
        return name
    time.sleep(0.02)
  raise AssertionError(f"no run reached step {step}")


def _records_safe(root):
  try:
    return _records(root)
  except (ValueError, FileNotFoundError):  # A line being written right now.
    return {}


def test_sigkill_then_rerun_gives_identical_records(reference, tmp_path):
  ref_root, _ = reference
  root = str(tmp_path)
  step = random.Random(os.getpid()).randint(3, 20)
  p = _start(root, "cooldown", 2, FAKE_STEP_S=0.02)
  _wait_for_step(root, step)
  p.send_signal(signal.SIGKILL)  # The workers and their runs die with it (PDEATHSIG).
  p.wait()
  time.sleep(0.5)
  r = run(sweep_cmd(root, "cooldown", 2))
  assert r.returncode == 0, r.stderr[-2000:]
  assert _records(root) == _records(ref_root)
  for name in _records(root):
    assert json.load(open(os.path.join(root, name, "summary.json")))["status"] == "done"


def test_sigterm_checkpoints_and_exits_cleanly(reference, tmp_path):
  root = str(tmp_path)
  p = _start(root, "cooldown", 1, FAKE_STEP_S=0.05)
  name = _wait_for_step(root, 6)
  p.send_signal(signal.SIGTERM)
  _, err = p.communicate(timeout=60)
  assert p.returncode == 143, err[-2000:]
  summary = json.load(open(os.path.join(root, name, "summary.json")))
  assert summary["status"] == "preempted" and summary["step"] < summary["steps"]
  assert os.path.isdir(os.path.join(root, name, "checkpoints", str(summary["step"])))
  assert not os.path.exists(os.path.join(root, name, "claim.json"))
  status = run([PY, "-m", "mmscale", "status", f"--root={root}"])
  assert "preempted" in status.stdout
  r = run(sweep_cmd(root, "cooldown", 1))
  assert r.returncode == 0
  assert _records(root) == _records(reference[0])


def test_four_concurrent_sweeps_run_each_run_once(tmp_path):
  root = str(tmp_path)
  procs = [_start(root, "axes", 1, FAKE_STEP_S=0.002) for _ in range(4)]
  for p in procs:
    _, err = p.communicate(timeout=120)
    assert p.returncode == 0, err[-2000:]
  ids = [n for n in os.listdir(root) if os.path.isfile(os.path.join(root, n, "run.json"))]
  assert len(ids) == 12 and sorted(starts(root)) == sorted(ids)
  assert len(set(starts(root))) == len(starts(root))


def test_failed_run_is_reported_and_retried_on_request(tmp_path):
  root = str(tmp_path)
  r = run(sweep_cmd(root, "cooldown", 1), FAKE_FAIL="s32_trunk")
  assert r.returncode == 1
  status = {x["run_id"]: x["status"] for x in json.loads(
      run([PY, "-m", "mmscale", "status", f"--root={root}", "--json"]).stdout)}
  failed = [k for k, v in status.items() if v == "failed"]
  assert len(failed) == 1 and "s32_trunk" in failed[0]
  assert all(v == "done" for k, v in status.items() if "s16" in k)
  assert all(v == "pending" for k, v in status.items() if "s32_C" in k)  # Blocked by the trunk.
  assert os.path.exists(os.path.join(root, failed[0], "worker_error.json"))
  n = len(starts(root))
  assert run(sweep_cmd(root, "cooldown", 1)).returncode == 1 and len(starts(root)) == n
  r = run(sweep_cmd(root, "cooldown", 1, "--retry_failed"))
  assert r.returncode == 0, r.stderr[-2000:]
  assert len(starts(root)) == n + 4  # The trunk and its 3 branches.


@pytest.mark.parametrize("args,match", [
    (["--config=nope/study.py"], "nope/study.py"),
    ([f"--config={FAKE_STUDY}:empty"], "grid.sizes is empty"),
    ([f"--config={FAKE_STUDY}:infeasible"], "grid is infeasible"),
    ([f"--config={FAKE_STUDY}"], "--root is required"),
])
def test_bad_sweep_input_is_one_line(args, match, tmp_path):
  root = [f"--root={tmp_path}"] if "--root" not in match else []
  r = run([PY, "-m", "mmscale", "sweep", *args, *root])
  assert r.returncode == 2 and match in r.stderr, r.stderr
  lines = [x for x in r.stderr.splitlines() if x.startswith("mmscale: error")]
  assert len(lines) == 1 and "Traceback" not in r.stderr


def test_unwritable_root(tmp_path):
  (tmp_path / "f").write_text("x")
  r = run([PY, "-m", "mmscale", "sweep", f"--config={FAKE_STUDY}", f"--root={tmp_path}/f/r"])
  assert r.returncode == 2 and "not writable" in r.stderr and "Traceback" not in r.stderr


def test_dry_run_writes_nothing(tmp_path):
  root = tmp_path / "r"
  r = run([PY, "-m", "mmscale", "sweep", f"--config={FAKE_STUDY}:cooldown", f"--root={root}",
           "--dry-run"])
  assert r.returncode == 0 and not root.exists()
  assert "cool-down branches save" in r.stdout and r.stdout.count(" branch ") == 6


def test_collect_torn_and_corrupt_records(reference, tmp_path):
  import shutil
  root = str(tmp_path / "r")
  shutil.copytree(reference[0], root)
  name = sorted(n for n in os.listdir(root) if "trunk" not in n and "-" in n)[0]
  path = os.path.join(root, name, "records.jsonl")
  out = str(tmp_path / "t.csv")
  assert run([PY, "-m", "mmscale", "collect", f"--root={root}", f"--out={out}"]).returncode == 0
  before = open(out).read()
  with open(path, "a") as f:
    f.write('{"kind": "eval", "step": 99, "val"')  # Torn by a kill mid-write: ignored.
  r = run([PY, "-m", "mmscale", "collect", f"--root={root}", f"--out={out}"])
  assert r.returncode == 0 and open(out).read() == before and "torn" in r.stderr
  with open(path, "a") as f:
    f.write('\n{"kind": "train", "step": 100}\n')  # Now a corrupt line in the middle.
  r = run([PY, "-m", "mmscale", "collect", f"--root={root}", f"--out={out}"])
  assert r.returncode == 2 and "not valid JSON" in r.stderr and "Traceback" not in r.stderr
  assert open(out).read() == before  # The table already written is kept.
  r = run([PY, "-m", "mmscale", "collect", f"--root={tmp_path}/none", f"--out={out}"])
  assert r.returncode == 2 and "does not exist" in r.stderr

"""A real SLURM cluster (one node on localhost): the SLURM launcher runs a sweep, and a requeued
task resumes its run from the checkpoint. Installs Debian's slurm-wlm and munge when missing."""

import json
import os
import subprocess
import time

import pytest

import slurm_cluster
from sweep_helpers import FAKE_STUDY, FAKE_TRAIN, PY, REPO, run, starts

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
  reason = slurm_cluster.ensure_packages()
  if reason:
    pytest.skip(reason)
  c = slurm_cluster.Cluster(str(tmp_path_factory.mktemp("slurm")))
  try:
    c.start(timeout=90)
    yield c
  finally:
    c.stop()


def _sweep(cluster, root, *extra, **env):
  cmd = [PY, "-m", "mmscale", "sweep", f"--config={FAKE_STUDY}:two", f"--root={root}",
         "--launcher=slurm", "--workers=2", f"--train_fn={FAKE_TRAIN}", "--poll_s=0.5", *extra]
  e = dict(cluster.env, PYTHONPATH=REPO, **{k: str(v) for k, v in env.items()})
  return subprocess.Popen(cmd, cwd=REPO, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)


def _records(root, run_id):
  with open(os.path.join(root, run_id, "records.jsonl")) as f:
    return [json.loads(line) for line in f]


@pytest.mark.parametrize("how", ["requeue", "usr2"])
def test_slurm_sweep_and_requeue_resumes(cluster, tmp_path, how):
  """requeue: `scontrol requeue` (SIGTERM to the step, as a preemption with PreemptMode=REQUEUE);
  usr2: the signal SLURM sends before the time limit, which submitit turns into
  SweepTask.checkpoint() and a requeue of its own."""
  ref = str(tmp_path / "ref")
  assert run([PY, "-m", "mmscale", "sweep", f"--config={FAKE_STUDY}:two", f"--root={ref}",
              f"--train_fn={FAKE_TRAIN}", "--poll_s=0.1"]).returncode == 0
  root = str(tmp_path / "slurm")
  p = _sweep(cluster, root, "--wait", FAKE_STEP_S=0.15)
  # Wait until the long run is past its first checkpoint, then requeue the task running it.
  long_run = None
  t0 = time.time()
  while time.time() - t0 < 120 and long_run is None:
    for name in os.listdir(root) if os.path.isdir(root) else []:
      path = os.path.join(root, name, "records.jsonl")
      claim = os.path.join(root, name, "claim.json")
      if "6e8" in name and os.path.exists(path) and os.path.exists(claim):
        if any(json.loads(x).get("step", 0) >= 10 for x in open(path).read().splitlines()[:-1]):
          long_run = name
    time.sleep(0.2)
  assert long_run, cluster.logs()
  job_id = json.load(open(os.path.join(root, long_run, "claim.json")))["worker"].split(":")[1]
  cmd = ["scontrol", "requeue", job_id] if how == "requeue" else ["scancel", "-s", "USR2", job_id]
  out = subprocess.run(cmd, env=cluster.env, capture_output=True, text=True)
  assert out.returncode == 0, out.stderr
  # SLURM holds a requeued job for a while (BeginTime); release it now to keep the test short.
  t0 = time.time()
  while time.time() - t0 < 60:
    state = cluster.run("squeue", "-h", "-j", job_id, "-o", "%T").strip()
    if not state:
      break
    if state == "PENDING" and subprocess.run(
        ["scontrol", "update", f"JobId={job_id}", "StartTime=now"], env=cluster.env,
        capture_output=True).returncode == 0:
      break
    time.sleep(0.2)
  stdout, stderr = p.communicate(timeout=300)
  assert p.returncode == 0, stdout + stderr + cluster.logs()
  assert "submitted SLURM array" in stdout
  ids = sorted(n for n in os.listdir(ref) if os.path.isfile(os.path.join(ref, n, "run.json")))
  assert len(ids) == 2
  for r in ids:
    assert json.load(open(os.path.join(root, r, "summary.json")))["status"] == "done"
    assert _records(root, r) == _records(ref, r)  # Both runs' records, as if never interrupted.
  # The requeued run started twice (again in the requeued task, or in the other one if that
  # was still waiting), the second time from its checkpoint, not from step 0.
  assert sorted(starts(root)) == sorted(ids + [long_run])
  resumes = open(os.path.join(root, "resumes.log")).read().split()
  assert resumes[0] == long_run and int(resumes[1]) >= 8


def test_slurm_multi_task_job_is_a_gang(cluster, tmp_path):
  """A 2-task job (as 2 nodes x 1 task): task 0 chooses the runs, task 1 runs each one with it."""
  root = str(tmp_path)
  p = _sweep(cluster, root, "--wait", '--slurm_args={"ntasks_per_node": 2}', FAKE_STEP_S=0.01)
  stdout, stderr = p.communicate(timeout=300)
  # _sweep asks for 2 array tasks; with 2 CPUs only one 2-task gang runs at a time.
  assert p.returncode == 0, stdout + stderr + cluster.logs()
  ids = sorted(n for n in os.listdir(root) if os.path.isfile(os.path.join(root, n, "run.json")))
  assert sorted(starts(root)) == ids  # Rank 0 of the gangs: each run once.
  assert sorted(open(os.path.join(root, "rank1.log")).read().split()) == ids  # Rank 1 followed.
  gangs = os.listdir(os.path.join(root, "_gangs"))
  assert gangs and all(g.startswith("slurm-") for g in gangs)

"""Launchers without a cluster: TPU commands (dry run), SLURM executor parameters, gangs."""

import json
import os
import subprocess
import sys

import pytest

from launch import slurm, tpu
from mmscale.errors import UserError
from mmscale.sweep import plan, registry
from sweep_helpers import FAKE_STUDY, FAKE_TRAIN, PY, REPO, env, load_fake_study, run, starts


def test_tpu_dry_run_prints_the_pod_command(tmp_path):
  r = run([PY, "-m", "mmscale", "sweep", f"--config={FAKE_STUDY}", f"--root={tmp_path}/r",
           "--launcher=tpu", "--tpu=pod1", "--zone=us-central2-b", "--project=p",
           "--repo_dir=/opt/mmscale", "--dry-run"])
  assert r.returncode == 0, r.stderr
  line = [x for x in r.stdout.splitlines() if x.startswith("gcloud")]
  assert len(line) == 1
  assert line[0].startswith("gcloud compute tpus tpu-vm ssh pod1 --zone=us-central2-b "
                            "--worker=all --project=p '--command=cd /opt/mmscale && ")
  assert "-m mmscale.sweep.worker_process" in line[0] and "--gang=tpu-pod1-" in line[0]
  assert "agent-worker-number" in line[0] and not os.path.exists(f"{tmp_path}/r")
  study = load_fake_study()
  assert plan.manifest_path(f"{tmp_path}/r", FAKE_STUDY, study.specs) in line[0]


def test_tpu_needs_name_and_zone():
  with pytest.raises(UserError, match="--tpu=NAME and --zone=ZONE"):
    tpu.commands("", "z", "", "true")


def test_slurm_executor_parameters(tmp_path, monkeypatch):
  # The parameters are checked by submitit without a cluster; only its srun probe needs one.
  import submitit
  monkeypatch.setattr(submitit.SlurmExecutor, "affinity", classmethod(lambda cls: 1))
  ex = slurm.make_executor(str(tmp_path), 3, partition="gpu", timeout_min=30,
                           slurm_args={"gpus_per_node": 8, "cpus_per_task": 12})
  p = ex.parameters
  assert p["array_parallelism"] == 3 and p["partition"] == "gpu" and p["time"] == 30
  assert p["gpus_per_node"] == 8 and p["cpus_per_task"] == 12 and p["signal_delay_s"] == 120
  with pytest.raises(UserError, match="--slurm_args"):
    slurm.make_executor(str(tmp_path), 1, slurm_args={"gpus_per_nod": 1})


def test_slurm_without_a_cluster_is_one_line(tmp_path, monkeypatch):
  monkeypatch.setenv("PATH", str(tmp_path))  # No srun, sbatch or squeue anywhere.
  with pytest.raises(UserError, match="--launcher=slurm needs a SLURM client on PATH"):
    slurm.make_executor(str(tmp_path / "r"), 1)
  assert not (tmp_path / "r").exists()


def test_slurm_task_pickles_without_its_worker(tmp_path):
  import pickle
  t = slurm.SweepTask(str(tmp_path), "m.json", "x:y")
  t._worker = object()
  t2 = pickle.loads(pickle.dumps(t))  # submitit pickles the task into its job folder.
  assert t2._worker is None and t2.root == str(tmp_path) and t2.train_fn == "x:y"


def test_gang_followers_run_what_the_leader_runs(tmp_path):
  """Two processes of one gang (as the hosts of a TPU pod): rank 0 claims and announces, rank 1
  runs the same runs in the same order; with a second, independent worker on the same root."""
  root = str(tmp_path)
  study = load_fake_study()
  registry.write_specs(root, study.specs)
  manifest = plan.write_manifest(root, FAKE_STUDY, study.specs)

  def worker(*extra, rank="0"):
    return subprocess.Popen(
        [PY, "-m", "mmscale.sweep.worker_process", f"--root={root}", f"--manifest={manifest}",
         f"--train_fn={FAKE_TRAIN}", "--poll_s=0.1", *extra], cwd=REPO,
        env=env(MMSCALE_PROCESS_ID=rank, FAKE_STEP_S=0.01), stderr=subprocess.PIPE, text=True)

  procs = [worker("--gang=g1", "--gang_rank=0"), worker("--gang=g1", "--gang_rank=1", rank="1"),
           worker()]
  for p in procs:
    _, err = p.communicate(timeout=120)
    assert p.returncode == 0, err[-2000:]
  ids = sorted(s.run_id for s in study.specs)
  assert sorted(starts(root)) == ids  # Each run once among the gang and the lone worker.
  announced = []
  for i in range(len(os.listdir(f"{root}/_gangs/g1"))):
    announced.append(json.load(open(f"{root}/_gangs/g1/{i}.json")))
  assert announced[-1]["end"] and 0 < len(announced) - 1 < len(ids)
  followed = open(f"{root}/rank1.log").read().split()
  assert followed == [a["run_id"] for a in announced[:-1]]

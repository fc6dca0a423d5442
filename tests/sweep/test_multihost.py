"""A run split over 2 processes x 4 CPU devices gives the same losses as 1 process x 8 devices.

The 2 processes are a gang of sweep workers (rank 0 claims the run, rank 1 follows), and each
runner starts jax.distributed on 127.0.0.1 from the MMSCALE_* variables, as on a cluster."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from sweep_helpers import REPO

pytestmark = pytest.mark.slow


def _config():
  from mmscale import config as config_lib
  c = config_lib.base_config()
  c.run.name = "mh"
  c.model.width = 32
  c.model.depth = 1
  c.model.heads = 2
  c.model.ffn_multiple = 16
  c.data.seq_len = 128
  c.data.batch_size = 8
  c.train.steps = 12
  c.train.warmup_steps = 2
  c.train.log_every = 1
  c.train.eval_points = 2
  c.train.eval_batches = 2
  c.train.checkpoint_every = 4  # Mid-run saves: from a background thread they hung the gang.
  return config_lib.resolve(c)


def _root(root, config):
  """A sweep root holding one run; returns (its directory, the manifest)."""
  from mmscale import config as config_lib
  from mmscale.sweep import plan, registry
  d = json.loads(json.dumps(config.to_dict(), default=str))
  spec = registry.RunSpec(run_id=config_lib.run_id(config), name="mh", kind="run", config=d,
                          params=0, tokens=0, flops=0.0, own_flops=0.0, steps=12, tags={})
  registry.write_specs(root, [spec])
  return registry.run_dir(root, spec.run_id), plan.write_manifest(root, "mh.py", [spec])


def _worker(root, manifest, devices, *extra, **env):
  return subprocess.Popen(
      [sys.executable, "-m", "mmscale.sweep.worker_process", f"--root={root}", f"--manifest={manifest}",
       "--poll_s=0.2", *extra], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
      text=True, env=_env(devices, **env))


def _env(devices, **extra):
  env = {k: v for k, v in os.environ.items() if not k.startswith(("MMSCALE_", "SLURM_"))}
  env.update(PYTHONPATH=REPO, JAX_PLATFORMS="cpu",
             XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", **extra)
  return env


def _losses(d):
  recs = [json.loads(x) for x in open(os.path.join(d, "records.jsonl"))]
  train = [r["loss"] for r in recs if r["kind"] == "train"]
  val = [v["loss"] for r in recs if r["kind"] == "eval" for _, v in sorted(r["val"].items())]
  return np.array(train), np.array(val)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  tmp_path = tmp_path_factory.mktemp("mh")
  config = _config()
  one, m1 = _root(str(tmp_path / "one"), config)
  two, m2 = _root(str(tmp_path / "two"), config)
  p = _worker(str(tmp_path / "one"), m1, 8)
  out = p.communicate(timeout=600)[0]
  assert p.returncode == 0, out[-3000:] + open(os.path.join(one, "train.log")).read()[-3000:]
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  procs = [_worker(str(tmp_path / "two"), m2, 4, "--gang=mh", f"--gang_rank={i}",
                   MMSCALE_COORDINATOR=f"127.0.0.1:{port}", MMSCALE_NUM_PROCESSES="2",
                   MMSCALE_PROCESS_ID=str(i)) for i in range(2)]
  outs = [p.communicate(timeout=600)[0] for p in procs]
  logs = [open(os.path.join(two, n)).read()[-3000:] for n in os.listdir(two) if "log" in n]
  assert all(p.returncode == 0 for p in procs), "\n".join(outs + logs)
  return one, two


def test_gang_runs_one_run_on_two_processes(runs):
  one, two = runs
  assert json.load(open(os.path.join(two, "summary.json")))["status"] == "done"
  (t1, v1), (t2, v2) = _losses(one), _losses(two)
  assert len(t2) == len(t1) == 12 and len(v2) == len(v1) >= 2
  assert np.all(np.isfinite(t2)) and t2[-1] < t2[0] - 1.0  # It trained, as one run.
  # Rank 1 followed rank 0's announcement with a runner of its own.
  gang = os.path.join(os.path.dirname(two), "_gangs", "mh")
  assert json.load(open(os.path.join(gang, "0.json")))["run_id"] == os.path.basename(two)
  assert json.load(open(os.path.join(gang, "1.json")))["end"]
  assert [n for n in os.listdir(two) if n.startswith("train.") and n != "train.log"]


def test_two_processes_match_one(runs):
  one, two = runs
  (t1, v1), (t2, v2) = _losses(one), _losses(two)
  # Same math, same data; only the order of cross-device reductions may differ.
  np.testing.assert_allclose(t2, t1, rtol=1e-5)
  np.testing.assert_allclose(v2, v1, rtol=1e-5)

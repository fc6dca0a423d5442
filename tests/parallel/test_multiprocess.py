"""2 processes x 4 CPU devices through jax.distributed on 127.0.0.1 give single-device results."""

import importlib.util
import os
import pathlib
import socket
import subprocess
import sys

import numpy as np
import pytest

HERE = pathlib.Path(__file__).parent
ROOT = HERE.parent.parent


def _worker_module():
  spec = importlib.util.spec_from_file_location("mp_worker", HERE / "mp_worker.py")
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_match_single_device(tmp_path):
  out = tmp_path / "grads.npz"
  port = _free_port()
  procs = []
  for pid in range(2):
    # The workers compile as this process, which computes the reference, does (tests/conftest.py):
    # with most XLA optimizations off, since compiling is most of their CPU time.
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT), JAX_DISABLE_MOST_OPTIMIZATIONS="1",
               XLA_FLAGS="--xla_force_host_platform_device_count=4",
               MMSCALE_COORDINATOR=f"127.0.0.1:{port}", MMSCALE_NUM_PROCESSES="2",
               MMSCALE_PROCESS_ID=str(pid))
    procs.append(subprocess.Popen([sys.executable, str(HERE / "mp_worker.py"), str(out)], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
  logs = []
  for p in procs:
    try:
      logs.append(p.communicate(timeout=300)[0])
    except subprocess.TimeoutExpired:
      for q in procs:
        q.kill()
      raise
  assert all(p.returncode == 0 for p in procs), "\n".join(l[-3000:] for l in logs)

  worker = _worker_module()
  want_loss, want = worker.loss_and_grads(worker.config())
  got = np.load(out)
  np.testing.assert_allclose(got["loss"], want_loss, rtol=1e-5)
  assert set(got.files) == set(want) | {"loss"}
  for k, v in want.items():
    np.testing.assert_allclose(got[k], v, atol=1e-5, rtol=1e-5, err_msg=k)

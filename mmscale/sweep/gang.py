"""Gangs: the processes of one multi-host job (TPU pod hosts, SLURM tasks of a multi-node job)
run every run together, so only one of them may choose.

Rank 0 is a normal worker (claims, dependencies, status) that announces each run it starts as
`<root>/_gangs/<gang>/<seq>.json` before starting its own runner; the other ranks follow that
sequence and start the same run with their own runner (jax.distributed connects the processes
inside the runs). Rank 0 writes {"end": true} when it has nothing left. A gang id must be new for
every incarnation of a job (the SLURM restart count or a launch timestamp is part of it).
"""

import os
import signal
import subprocess
import sys
import threading

from absl import logging

from mmscale import contract
from mmscale.sweep import registry
from mmscale.sweep import runner
from mmscale.sweep import worker as worker_lib


def gang_dir(root: str, gang: str) -> str:
  return os.path.join(root, "_gangs", gang)


class Leader(worker_lib.Worker):
  """Rank 0: a Worker that announces every run before it starts it."""

  def __init__(self, root, run_ids, gang: str, **kw):
    super().__init__(root, run_ids, **kw)
    self.dir = gang_dir(self.root, gang)
    os.makedirs(self.dir, exist_ok=True)
    self.seq = len([n for n in os.listdir(self.dir) if n.endswith(".json")])

  def _announce(self, obj) -> None:
    registry.write_json_atomic(os.path.join(self.dir, f"{self.seq}.json"), obj)
    self.seq += 1

  def _run_one(self, spec) -> int:
    self._announce({"run_id": spec.run_id})
    return super()._run_one(spec)

  def run(self) -> int:
    rc = super().run()
    self._announce({"end": True, "exit_code": rc})
    return rc


class Follower:
  """Rank > 0: runs what rank 0 announces, in order, until the end marker."""

  def __init__(self, root: str, gang: str, train_fn: str = runner.DEFAULT_TRAIN_FN,
               poll_s: float = 1.0, env: dict | None = None):
    self.root, self.dir = os.path.abspath(root), gang_dir(os.path.abspath(root), gang)
    self.train_fn, self.poll_s, self.env = train_fn, poll_s, env
    self._stop = threading.Event()
    self._child = None

  stop_starting = worker_lib.Worker.stop_starting
  checkpoint_now = worker_lib.Worker.checkpoint_now

  def stop(self, signum: int = signal.SIGTERM) -> None:
    self._stop.set()
    if self._child is not None and self._child.poll() is None:
      self._child.send_signal(signum)

  def run(self) -> int:
    seq = 0
    while not self._stop.is_set():
      path = os.path.join(self.dir, f"{seq}.json")
      if not os.path.exists(path):
        self._stop.wait(self.poll_s)
        continue
      msg = registry._read_json(path) or {}
      if msg.get("end"):
        return int(msg.get("exit_code", 0))
      d = registry.run_dir(self.root, msg["run_id"])
      logging.info("gang follower: running %s", msg["run_id"])
      with open(os.path.join(d, f"train.{os.getpid()}.log"), "ab") as log:
        self._child = subprocess.Popen(
            [sys.executable, "-m", "mmscale.sweep.runner", f"--train_fn={self.train_fn}", d],
            stdout=log, stderr=subprocess.STDOUT, env=self.env,
            preexec_fn=worker_lib._die_with_parent)
        rc = self._child.wait()
      if rc == contract.EXIT_PREEMPTED:
        self._stop.set()
      seq += 1
    return worker_lib.EXIT_STOPPED

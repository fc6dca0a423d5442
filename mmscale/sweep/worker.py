"""A sweep worker: claims runs under a root one at a time and runs each in a runner process.

Any number of workers (local processes, SLURM array tasks, hosts) can work on one root: claims make
each run happen once. A branch waits until its trunk has the checkpoint it starts from. The worker
returns when every run of its list is done or failed (or blocked by a failed trunk).

Signals: SIGTERM/SIGINT/SIGUSR1 are forwarded to the running run (which checkpoints and exits
"preempted"); the worker then releases the claim and exits 143 so that a scheduler requeues it.
A run killed by one of those signals before it could catch it counts as preempted, never failed.
A diverged run (exit 3, summary "diverged" with the step and reason) is finished: the worker goes on.
The runner process dies with its worker (PR_SET_PDEATHSIG), so a SIGKILLed worker leaves no
orphan training behind, and its claim goes stale.

  python -m mmscale.sweep.worker_process --root=DIR --manifest=FILE [--train_fn=mod:fn]
                                         [--gang=ID --gang_rank=R]   (multi-host, gang.py)
"""

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from absl import logging

from mmscale import contract
from mmscale.sweep import claims
from mmscale.sweep import registry
from mmscale.sweep import runner

EXIT_STOPPED = contract.EXIT_PREEMPTED  # The worker itself was stopped: a scheduler requeues it.


def _die_with_parent():
  try:  # Linux only: the child gets SIGKILL when the worker that started it dies.
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
  except (OSError, AttributeError):
    pass


def exited(pid: int) -> bool:
  """Whether a child has exited, without reaping it (its Popen.wait still owns that).

  Used from a signal handler that may interrupt Popen.wait, whose lock is not re-entrant.
  """
  try:
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
  except ChildProcessError:
    return True


class Worker:

  def __init__(self, root: str, run_ids: list[str], *, train_fn: str = runner.DEFAULT_TRAIN_FN,
               poll_s: float = 2.0, retry_failed: bool = False, name: str = "",
               heartbeat_s: float = claims.HEARTBEAT_S, stale_after_s: float = claims.STALE_AFTER_S,
               env: dict | None = None):
    self.root, self.run_ids = os.path.abspath(root), list(run_ids)
    self.train_fn, self.poll_s, self.retry_failed = train_fn, poll_s, retry_failed
    self.heartbeat_s, self.stale_after_s = heartbeat_s, stale_after_s
    self.name = name or f"{socket.gethostname()}:{os.getpid()}"
    self.env = env
    self.specs = {r: registry.read_spec(self.root, r) for r in self.run_ids}
    self._stop = threading.Event()
    self._child = None
    self._claim = None
    self._lock = threading.Lock()
    self.ran: list[str] = []

  # -- signals

  def stop(self, signum: int = signal.SIGTERM) -> None:
    """Asks the running run to checkpoint and exit; the worker starts nothing new."""
    self._stop.set()
    with self._lock:
      if self._child is not None and self._child.poll() is None:
        self._child.send_signal(signum)

  def stop_starting(self) -> None:
    """The worker finishes what runs and starts nothing new (safe from a signal handler)."""
    self._stop.set()

  def checkpoint_now(self) -> None:
    """For a scheduler's preemption hook: the running run gets SIGTERM (it saves and exits
    "preempted"), this waits for it to exit and releases its claim. Safe from a signal handler
    that interrupted the worker: it takes no lock and leaves reaping the child to its Popen."""
    self._stop.set()
    child = self._child
    if child is not None:
      try:
        child.send_signal(signal.SIGTERM)
      except ProcessLookupError:
        pass
      while not exited(child.pid):
        time.sleep(0.2)
    claim = getattr(self, "_claim", None)
    if claim is not None:
      claim.release()

  # -- scheduling

  def _status(self, run_id: str) -> str:
    # With this worker's claim timeout: a claim it would take over is not "running" to it.
    return registry.status(self.root, run_id, self.stale_after_s)

  def _ready(self, spec) -> str:
    """'ready', 'wait' (trunk not there yet) or contract.BLOCKED (trunk failed)."""
    if spec.kind != "branch":
      return "ready"
    trunk = self._status(spec.depends_on)
    if (trunk == contract.DONE
        or registry.checkpoint_ready(self.root, spec.depends_on, spec.depends_step)):
      return "ready"
    if trunk == contract.DIVERGED:  # Stopped before the branch point: that checkpoint never comes.
      return contract.BLOCKED
    if trunk == contract.FAILED and (not self.retry_failed or spec.depends_on in self.ran):
      return contract.BLOCKED
    return "wait"

  def _todo(self, run_id: str) -> bool:
    s = self._status(run_id)
    # A retry of failed runs tries each once per worker session, not forever.
    return s in (contract.PENDING, contract.PREEMPTED) or (s == contract.FAILED and self.retry_failed
                                                        and run_id not in self.ran)

  def run(self) -> int:
    """Works until nothing is left; 0 when all done, 1 when some failed, 143 when stopped."""
    while not self._stop.is_set():
      statuses = {r: self._status(r) for r in self.run_ids}
      open_runs = [r for r, s in statuses.items() if s not in contract.FINISHED
                   and (s != contract.FAILED or (self.retry_failed and r not in self.ran))]
      started = False
      waiting = False
      for run_id in open_runs:
        if self._stop.is_set():
          break
        spec = self.specs[run_id]
        ready = self._ready(spec)
        if ready == contract.BLOCKED:
          continue
        if ready == "wait" or statuses[run_id] == contract.RUNNING:
          waiting = True
          continue
        if not self._todo(run_id):
          continue
        claim = claims.try_claim(registry.run_dir(self.root, run_id), self.name, self.heartbeat_s,
                                 self.stale_after_s)
        if claim is None:
          waiting = True
          continue
        with claim:
          # Someone may have finished it between our status read and the claim.
          if self._status(run_id) in contract.FINISHED:
            continue
          self._claim = claim
          self._run_one(spec)
          self._claim = None
        started = True
        break  # Re-read statuses: a trunk may have unblocked branches.
      if started:
        continue
      if not waiting:
        break
      self._stop.wait(self.poll_s)
    if self._stop.is_set():
      return EXIT_STOPPED
    failed = [r for r in self.run_ids if self._status(r) not in contract.FINISHED]
    return 1 if failed else 0

  def _run_one(self, spec) -> int:
    d = registry.run_dir(self.root, spec.run_id)
    err = os.path.join(d, registry.ERROR_FILE)
    if os.path.exists(err):  # A retry of a crashed run.
      os.replace(err, err + f".{int(time.time())}")
    cmd = [sys.executable, "-m", "mmscale.sweep.runner", f"--train_fn={self.train_fn}", d]
    logging.info("worker %s: running %s", self.name, spec.run_id)
    t0 = time.time()
    with open(os.path.join(d, "train.log"), "ab") as log:
      with self._lock:
        if self._stop.is_set():
          return EXIT_STOPPED
        self._child = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                       preexec_fn=_die_with_parent)
      rc = self._child.wait()
    with self._lock:
      self._child = None
    self.ran.append(spec.run_id)
    summary = registry.summary(self.root, spec.run_id) or {}
    if rc in (-signal.SIGTERM, -signal.SIGUSR1):  # Killed before its handler was in place.
      rc = contract.EXIT_PREEMPTED
    if rc == contract.EXIT_DIVERGED:
      logging.warning("worker %s: %s diverged: %s", self.name, spec.run_id, summary.get("reason"))
    elif (rc not in (contract.EXIT_DONE, contract.EXIT_PREEMPTED)
          and summary.get("status") != contract.FAILED):
      registry.write_json_atomic(err, {"exit_code": rc, "worker": self.name,
                                       "wall_s": time.time() - t0,
                                       "log": os.path.join(d, "train.log")})
    if rc == contract.EXIT_PREEMPTED:  # Signalled directly (e.g. by SLURM): stop, get requeued.
      self._stop.set()
    logging.info("worker %s: %s exited %s", self.name, spec.run_id, rc)
    return rc


def read_manifest(path: str) -> dict:
  with open(path) as f:
    return json.load(f)

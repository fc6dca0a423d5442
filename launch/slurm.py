"""SLURM launcher: a job array of N worker tasks through submitit, requeued on preemption.

Each array task runs one sweep worker (mmscale.sweep.worker.Worker) over the whole manifest, so
tasks share the runs through claims and a branch waits for its trunk like anywhere else.

Preemption and time limits:
  - submitit asks SLURM for a signal (USR2) before the time limit and calls `SweepTask.checkpoint`:
    the running run gets SIGTERM (it saves a checkpoint and exits "preempted"), the claim is
    released, and submitit requeues the task, which resumes the run from that checkpoint.
  - `scontrol requeue` or a preemption with PreemptMode=REQUEUE sends SIGTERM to every process of
    the step: the run checkpoints, the worker exits, SLURM starts the task again.
Multi-task jobs (`--slurm_args='{"nodes": 2, "ntasks_per_node": 1}'`): the tasks of one array task
form a gang (mmscale/sweep/gang.py) that trains each run together; every runner starts
jax.distributed from SLURM's environment.
"""

import difflib
import json
import os
import signal
import subprocess
import time

from absl import logging

from mmscale import contract
from mmscale.errors import UserError
from mmscale.sweep import registry
from mmscale.sweep import worker as worker_lib


class SweepTask:
  """The callable submitit runs in each array task (pickled by submitit, holds only plain data)."""

  def __init__(self, root: str, manifest: str, train_fn: str, retry_failed: bool = False,
               poll_s: float = 10.0, claim_timeout_s: float = 120.0):
    self.root, self.manifest, self.train_fn = root, manifest, train_fn
    self.retry_failed, self.poll_s, self.claim_timeout_s = retry_failed, poll_s, claim_timeout_s
    self._worker = None

  def __getstate__(self):
    return {k: v for k, v in self.__dict__.items() if k != "_worker"}

  def __setstate__(self, state):
    self.__dict__.update(state, _worker=None)

  def __call__(self, index: int) -> int:
    run_ids = worker_lib.read_manifest(self.manifest)["run_ids"]
    e = os.environ
    job = (f"{e['SLURM_ARRAY_JOB_ID']}_{e['SLURM_ARRAY_TASK_ID']}" if "SLURM_ARRAY_JOB_ID" in e
           else e.get("SLURM_JOB_ID", "?"))
    name = f"slurm:{job}:{index}"  # The claim names the task, for `scontrol requeue` and status.
    kw = dict(train_fn=self.train_fn, poll_s=self.poll_s)
    if int(e.get("SLURM_NTASKS", "1")) > 1:
      # A multi-task job trains each run on all its tasks: a gang, new for every restart.
      from mmscale.sweep import gang
      gang_id = f"slurm-{job}-{e.get('SLURM_RESTART_COUNT', '0')}"
      if int(e.get("SLURM_PROCID", "0")) == 0:
        self._worker = gang.Leader(self.root, run_ids, gang_id, name=name,
                                   retry_failed=self.retry_failed,
                                   stale_after_s=self.claim_timeout_s, **kw)
      else:
        self._worker = gang.Follower(self.root, gang_id, **kw)
    else:
      self._worker = worker_lib.Worker(self.root, run_ids, name=name,
                                       retry_failed=self.retry_failed,
                                       stale_after_s=self.claim_timeout_s, **kw)
    # SIGTERM reaches the run directly from SLURM; the worker only has to stop starting new ones.
    signal.signal(signal.SIGTERM, lambda s, f: self._worker.stop_starting())
    return self._worker.run()

  def checkpoint(self, *args, **kwargs):
    """Called by submitit on the preemption/time-limit signal: stop the run cleanly, requeue."""
    import submitit

    if self._worker is not None:
      self._worker.checkpoint_now()
    logging.info("sweep task checkpointed; requeueing")
    return submitit.helpers.DelayedSubmission(SweepTask(self.root, self.manifest, self.train_fn,
                                                        self.retry_failed, self.poll_s,
                                                        self.claim_timeout_s), *args,
                                              **kwargs)


def parse_slurm_args(text: str) -> dict:
  """--slurm_args as a dict of sbatch parameters submitit knows; checked before a sweep writes."""
  if not text:
    return {}
  try:
    extra = json.loads(text)
  except json.JSONDecodeError as e:
    raise UserError(f"--slurm_args={text}: not JSON ({e.msg} at column {e.colno}); give an object "
                    "such as '{\"gpus_per_node\": 8}'") from None
  if not isinstance(extra, dict):
    raise UserError(f"--slurm_args={text}: must be a JSON object of sbatch parameters, "
                    "e.g. '{\"gpus_per_node\": 8}'")
  import submitit

  valid = submitit.SlurmExecutor._valid_parameters()  # pylint: disable=protected-access
  if unknown := sorted(set(extra) - valid):
    close = difflib.get_close_matches(unknown[0], valid, n=1)
    hint = f"did you mean {close[0]!r}?" if close else "see submitit's SlurmExecutor parameters"
    raise UserError(f"--slurm_args: unknown sbatch parameter {unknown[0]!r} ({hint})")
  return extra


def make_executor(root: str, workers: int, partition: str = "", timeout_min: int = 60,
                  slurm_args: dict | None = None):
  import submitit

  folder = os.path.join(os.path.abspath(root), "_slurm", "%j")
  try:
    executor = submitit.SlurmExecutor(folder=folder, max_num_timeout=1000)
  except RuntimeError as e:  # submitit looks for srun on PATH before anything else.
    raise UserError(f"--launcher=slurm needs a SLURM client on PATH: {e}") from None
  params = dict(job_name="mmscale-sweep", time=int(timeout_min), array_parallelism=int(workers),
                ntasks_per_node=1, signal_delay_s=120, stderr_to_stdout=True)
  if partition:
    params["partition"] = partition
  params.update(slurm_args or {})
  try:
    executor.update_parameters(**params)
  except ValueError as e:
    raise UserError(f"--slurm_args: {str(e).splitlines()[0]}") from None
  return executor


def launch(root: str, manifest: str, workers: int, train_fn: str, retry_failed: bool = False,
           poll_s: float = 10.0, wait: bool = False, partition: str = "", timeout_min: int = 60,
           slurm_args: dict | None = None, claim_timeout_s: float = 120.0, **unused) -> int:
  """Submits the array; with wait=True returns 0 when all tasks finished with every run done."""
  del unused
  executor = make_executor(root, workers, partition, timeout_min, slurm_args)
  task = SweepTask(os.path.abspath(root), os.path.abspath(manifest), train_fn, retry_failed, poll_s,
                   claim_timeout_s)
  try:
    jobs = executor.map_array(task, list(range(workers)))
  except Exception as e:  # submitit raises plain exceptions when sbatch is missing or refuses.
    raise UserError(f"sbatch failed: {str(e).strip().splitlines()[-1]}") from None
  array_id = jobs[0].job_id.split("_")[0]
  print(f"submitted SLURM array {array_id} with {workers} tasks "
        f"(logs in {os.path.join(root, '_slurm')})")
  if not wait:
    return 0
  wait_for(array_id, poll_s)
  run_ids = worker_lib.read_manifest(manifest)["run_ids"]
  return 0 if all(registry.status(root, r) in contract.FINISHED for r in run_ids) else 1


def wait_for(array_id: str, poll_s: float = 10.0) -> None:
  """Until SLURM no longer lists the array (requeued tasks keep it listed). squeue, not sacct:
  clusters without accounting storage have no sacct, and the runs' status is on disk anyway."""
  while True:
    r = subprocess.run(["squeue", "-h", "-j", array_id, "-o", "%i %T"], capture_output=True,
                       text=True)
    if r.returncode != 0 and "Invalid job id" not in r.stderr:
      raise UserError(f"squeue failed: {r.stderr.strip()}")
    if not r.stdout.strip():
      return
    time.sleep(poll_s)

"""Launchers: the same sweep (a root and a manifest of run ids) on different machines.

Each module has `launch(root, manifest, workers, train_fn, **options) -> int`:
  local  N worker processes on this machine
  slurm  a job array of N worker tasks through submitit, requeued on preemption
  tpu    one worker per host of a TPU VM pod through `gcloud compute tpus tpu-vm ssh --worker=all`
"""

LAUNCHERS = ("local", "slurm", "tpu")

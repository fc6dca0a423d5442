"""Launchers: the same sweep (a root and a manifest of run ids) on different machines.

Each module has `launch(root, manifest, workers, train_fn, **options) -> int`:
  local  N worker processes on this machine
  slurm  a job array of N worker tasks through submitit, requeued on preemption
  tpu    one worker per host of a TPU VM pod through `gcloud compute tpus tpu-vm ssh --worker=all`
"""

# --launcher -> the module that launches; its keys are the allowed launchers. Module names, not
# modules, so that `mmscale sweep --help` lists them without importing a launcher.
LAUNCHERS = {"local": "launch.local", "slurm": "launch.slurm", "tpu": "launch.tpu"}

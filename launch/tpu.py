"""TPU launcher: one sweep worker per host of a TPU VM pod, through
`gcloud compute tpus tpu-vm ssh NAME --worker=all --command=...`.

All hosts of a pod train each run together, so the hosts form a gang (mmscale/sweep/gang.py):
host 0 claims runs and announces them, the others follow; JAX connects the hosts of a TPU pod
by itself. The root must be shared by the hosts (a gs:// bucket mounted with gcsfuse, or NFS),
since claims and announcements are files under it. The repo (--repo_dir) must be checked out at
the same path on every host. `--dry_run`-style use: `commands(...)` returns the argv lists
without running anything, and launch(..., dry_run=True) prints them.
"""

import shlex
import subprocess
import time

from mmscale.errors import UserError

# The host's index in the pod, from the TPU VM metadata server.
WORKER_ID = ("$(curl -s -H Metadata-Flavor:Google http://metadata.google.internal/computeMetadata"
             "/v1/instance/attributes/agent-worker-number)")


def worker_shell(root: str, manifest: str, train_fn: str, repo_dir: str, gang: str,
                 python: str = "python3", poll_s: float = 10.0, retry_failed: bool = False,
                 claim_timeout_s: float = 120.0) -> str:
  args = [f"--root={root}", f"--manifest={manifest}", f"--train_fn={train_fn}",
          f"--poll_s={poll_s}", f"--retry_failed={int(retry_failed)}", f"--gang={gang}",
          f"--stale_after_s={claim_timeout_s}"]
  return (f"cd {shlex.quote(repo_dir)} && {python} -m mmscale.sweep.worker_process "
          + " ".join(shlex.quote(a) for a in args) + f" --gang_rank={WORKER_ID}")


def commands(tpu: str, zone: str, project: str, shell: str) -> list[list[str]]:
  if not tpu or not zone:
    raise UserError("--launcher=tpu needs --tpu=NAME and --zone=ZONE")
  cmd = ["gcloud", "compute", "tpus", "tpu-vm", "ssh", tpu, f"--zone={zone}", "--worker=all"]
  if project:
    cmd.append(f"--project={project}")
  return [cmd + [f"--command={shell}"]]


def launch(root: str, manifest: str, workers: int, train_fn: str, retry_failed: bool = False,
           poll_s: float = 10.0, tpu: str = "", zone: str = "", project: str = "",
           repo_dir: str = "", dry_run: bool = False, claim_timeout_s: float = 120.0,
           **unused) -> int:
  """Runs the pod's workers (the ssh session lasts as long as the sweep); `workers` is unused:
  a pod is one gang."""
  del workers, unused
  import os
  gang = f"tpu-{tpu}-{int(time.time())}"
  shell = worker_shell(root, manifest, train_fn, repo_dir or os.getcwd(), gang,
                       poll_s=poll_s, retry_failed=retry_failed, claim_timeout_s=claim_timeout_s)
  cmds = commands(tpu, zone, project, shell)
  if dry_run:
    for c in cmds:
      print(shlex.join(c))
    return 0
  try:
    return max(subprocess.run(c).returncode for c in cmds)
  except FileNotFoundError:
    raise UserError("gcloud is not installed (needed for --launcher=tpu)") from None

"""Local launcher: N worker processes on this machine, all working on one root.

SIGTERM/SIGINT are forwarded to the workers (which forward them to their runs: checkpoint, exit).
The workers die with this process (PR_SET_PDEATHSIG), so killing the sweep kills its runs too.
"""

import signal
import subprocess
import sys

from mmscale.sweep import claims
from mmscale.sweep import worker as worker_lib


def worker_command(root: str, manifest: str, train_fn: str, retry_failed: bool = False,
                   poll_s: float = 2.0, claim_timeout_s: float = claims.STALE_AFTER_S) -> list[str]:
  return [sys.executable, "-m", "mmscale.sweep.worker_process", f"--root={root}", f"--manifest={manifest}",
          f"--train_fn={train_fn}", f"--retry_failed={int(retry_failed)}", f"--poll_s={poll_s}",
          f"--stale_after_s={claim_timeout_s}"]


def launch(root: str, manifest: str, workers: int, train_fn: str, retry_failed: bool = False,
           poll_s: float = 2.0, claim_timeout_s: float = claims.STALE_AFTER_S, **unused) -> int:
  """Runs the workers to completion; 0 all done (or diverged), 1 some failed, 143 stopped."""
  del unused
  cmd = worker_command(root, manifest, train_fn, retry_failed, poll_s, claim_timeout_s)
  procs = [subprocess.Popen(cmd, preexec_fn=worker_lib._die_with_parent) for _ in range(workers)]

  def forward(signum, frame):
    for p in procs:
      if p.poll() is None:
        p.send_signal(signum)

  old = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)}
  try:
    codes = [p.wait() for p in procs]
  finally:
    for s, h in old.items():
      signal.signal(s, h)
  if any(c == worker_lib.EXIT_STOPPED for c in codes):
    return worker_lib.EXIT_STOPPED
  return 0 if all(c == 0 for c in codes) else 1

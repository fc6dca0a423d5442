"""The sweep worker process: `python -m mmscale.sweep.worker_process --root=R --manifest=M ...`.

What the launchers start (one per local worker, SLURM task or TPU host). A lone process is a
`Worker`; with `--gang=ID` it is one process of a multi-host gang (gang.py), whose leader claims runs
and whose followers train the runs the leader announces. Kept apart from worker.py because the gang
is built on the worker: the entry point that chooses between them sits above both.
"""

import signal
import sys

from absl import logging

from mmscale.sweep import claims
from mmscale.sweep import gang
from mmscale.sweep import runner
from mmscale.sweep import worker as worker_lib


def main(argv: list[str]) -> int:
  """Flags: --root --manifest [--train_fn --poll_s --retry_failed=0|1 --stale_after_s]
  [--gang=ID --gang_rank=R]: one process of a multi-host gang (see gang.py)."""
  args = dict(a[2:].split("=", 1) for a in argv[1:] if a.startswith("--") and "=" in a)
  root, manifest = args["root"], worker_lib.read_manifest(args["manifest"])
  train_fn = args.get("train_fn", runner.DEFAULT_TRAIN_FN)
  poll_s = float(args.get("poll_s", 2.0))
  kw = dict(train_fn=train_fn, poll_s=poll_s, retry_failed=args.get("retry_failed") == "1",
            stale_after_s=float(args.get("stale_after_s", claims.STALE_AFTER_S)))
  if args.get("gang"):
    if int(args.get("gang_rank", 0)) == 0:
      w = gang.Leader(root, manifest["run_ids"], args["gang"], **kw)
    else:
      w = gang.Follower(root, args["gang"], train_fn=train_fn, poll_s=min(poll_s, 1.0))
  else:
    w = worker_lib.Worker(root, manifest["run_ids"], **kw)
  for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
    signal.signal(sig, lambda s, f: w.stop(signal.SIGTERM if s == signal.SIGINT else s))
  return w.run()


if __name__ == "__main__":
  logging.use_absl_handler()
  sys.exit(main(sys.argv))

"""Checkpoint stall: time the step loop is blocked by an async save over the save's total time
(target <= 0.1).

  python benchmarks/bench_checkpoint_stall.py [--config=experiments/tiny.py] [--repeats=5]

The trainer's own RunCheckpoints (async Orbax: params, optimizer state, data-iterator state,
metadata) saves the live train state between steps, as mmscale.train.loop does. Blocked: the
time the save() call holds the loop. Total: from that call until Orbax reports the save committed
(a watcher thread waits on it while the loop keeps stepping). The times of the steps that overlap
the save are listed beside the normal step time (the background writer shares the CPU cores).
"""

import os
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # pylint: disable=g-import-not-at-top


def main(argv=None):
  p = common.parser(__doc__)
  p.add_argument("--max-steps", type=int, default=20, help="most steps run while one save is going")
  a = p.parse_args(argv)
  common.init_platform(a.platform)
  from mmscale.train.checkpoint import RunCheckpoints  # pylint: disable=g-import-not-at-top

  t = common.build_trainer(common.load_config(a.config, a.set))
  timer = common.StepTimer(t, n_batches=4)
  timer.compile_seconds()
  normal = timer.step_seconds(1, 3)
  blocked, total, overlapping, overlap_steps = [], [], [], []
  with tempfile.TemporaryDirectory() as wd:
    ckpt = RunCheckpoints(os.path.join(wd, "checkpoints"), keep=2)
    for r in range(a.repeats):
      normal += timer.step_seconds(1, 2)
      state = {"params": timer.params, "opt_state": timer.opt_state}
      meta = {"step": timer.calls, "tokens": 0, "train_time": 0.0}
      t0 = time.perf_counter()
      ckpt.save(timer.calls, state, t.data.get_state(), meta)
      blocked.append(time.perf_counter() - t0)
      done = []
      watcher = threading.Thread(target=lambda: (ckpt.wait(), done.append(time.perf_counter())))
      watcher.start()
      during = []
      while not done and len(during) < a.max_steps:
        during += timer.step_seconds(1, 1)
      watcher.join()
      total.append(done[0] - t0)
      overlap_steps.append(len(during))
      overlapping.append(during)
    ckpt.close()
  ratio = common.median(blocked) / common.median(total)
  common.emit({
      "benchmark": "checkpoint_stall", "config": a.config, "overrides": a.set,
      "figure": "blocked_seconds_over_save_seconds", "ratio": ratio, "target": 0.1,
      "meets_target": ratio <= 0.1,
      "blocked_seconds": blocked, "save_total_seconds": total,
      "steps_overlapping_save": overlap_steps, "overlapping_step_seconds": overlapping,
      "step_seconds_median": common.median(normal),
      "state_mbytes": sum(x.nbytes for x in __import__("jax").tree.leaves(
          {"params": timer.params, "opt_state": timer.opt_state})) / 2 ** 20,
      "machine": common.machine(),
  })


if __name__ == "__main__":
  main()

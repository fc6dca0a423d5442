"""CPU time per batch of the data pipeline (the host overhead it adds to every training step).

  python benchmarks/bench_data_cpu.py [--config=experiments/nmm.py:size=t1] [--profile]

Prints CPU ms per batch (time.process_time over --batches batches after a warm-up, with
data.prefetch=0 so all the work happens in this thread), median of --repeats runs. The default is
bench_host_overhead's config, whose step the data thread competes with for the CPU.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # pylint: disable=g-import-not-at-top


def main():
  p = common.parser(__doc__)
  p.set_defaults(config="experiments/nmm.py:size=t1")
  p.add_argument("--batches", type=int, default=300)
  p.add_argument("--warmup", type=int, default=20)
  p.add_argument("--profile", action="store_true", help="print a cProfile of one run (tottime)")
  args = p.parse_args()
  from mmscale import config as mm_config  # pylint: disable=g-import-not-at-top
  from mmscale.data import pipeline  # pylint: disable=g-import-not-at-top
  config = mm_config.resolve(common.load_config(args.config, ["data.prefetch=0", *args.set]))
  it = pipeline.make_train_iterator(config, 0, 1)
  for _ in range(args.warmup):
    next(it)
  if args.profile:
    import cProfile  # pylint: disable=g-import-not-at-top
    import pstats  # pylint: disable=g-import-not-at-top
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(args.batches):
      next(it)
    prof.disable()
    pstats.Stats(prof).sort_stats("tottime").print_stats(30)
  times = []
  for _ in range(args.repeats):
    t = time.process_time()
    for _ in range(args.batches):
      next(it)
    times.append((time.process_time() - t) / args.batches * 1e3)
  common.emit({"benchmark": "data_cpu", "config": args.config, "batches": args.batches,
               "figure": "cpu_ms_per_batch", "cpu_ms_per_batch": common.median(times),
               "runs_ms": times, "machine": common.machine()})


if __name__ == "__main__":
  main()

"""Compile time of the train step at depth 24 over depth 2 (target <= 1.5 on CPU).

  python benchmarks/bench_compile.py [--config=experiments/tiny.py] [--deep=24] [--shallow=2]

The decoder is a jax.lax.scan over stacked layers, so XLA compiles one layer body whatever the
depth; this ratio checks that it stays so. Each repeat builds a fresh Trainer (fresh closures, so no
in-process cache is hit) and times trace + lower and XLA compile of its jitted train step
separately; depths alternate so a burst of load on the shared machine hits both alike. Wall and
process CPU seconds are both reported (CPU seconds are steadier when other jobs share the cores).
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # pylint: disable=g-import-not-at-top


def compile_once(config, depth: int) -> dict:
  import jax  # pylint: disable=g-import-not-at-top
  config = common.load_config(config[0], list(config[1]) + [f"model.depth={depth}"])
  t = common.build_trainer(config)
  batch = t.device_batch(next(t.data))
  with jax.set_mesh(t.mesh):
    w0, c0 = time.perf_counter(), time.process_time()
    lowered = t.train_step.lower(t.params, t.opt_state, batch, t.lr_input(1))
    w1 = time.perf_counter()
    lowered.compile()
    w2, c2 = time.perf_counter(), time.process_time()
  return {"lower_s": w1 - w0, "compile_s": w2 - w1, "total_s": w2 - w0,
          "total_cpu_s": c2 - c0}


def main(argv=None):
  p = common.parser(__doc__)
  p.add_argument("--deep", type=int, default=24)
  p.add_argument("--shallow", type=int, default=2)
  p.set_defaults(repeats=3)
  a = p.parse_args(argv)
  common.init_platform(a.platform)
  cfg = (a.config, a.set)
  runs = {a.shallow: [], a.deep: []}
  for r in range(a.repeats):
    for depth in ((a.shallow, a.deep) if r % 2 == 0 else (a.deep, a.shallow)):
      runs[depth].append(compile_once(cfg, depth))

  def med(depth, key):
    return common.median(x[key] for x in runs[depth])

  ratio = med(a.deep, "total_s") / med(a.shallow, "total_s")
  common.emit({
      "benchmark": "compile", "config": a.config, "overrides": a.set,
      "figure": f"compile_time_depth{a.deep}_over_depth{a.shallow}", "ratio": ratio,
      "target": 1.5, "meets_target": ratio <= 1.5,
      "ratio_cpu_seconds": med(a.deep, "total_cpu_s") / med(a.shallow, "total_cpu_s"),
      "ratio_xla_compile_only": med(a.deep, "compile_s") / med(a.shallow, "compile_s"),
      "median_seconds": {str(d): {k: med(d, k) for k in runs[d][0]} for d in runs},
      "runs": {str(d): runs[d] for d in runs}, "machine": common.machine(),
  })


if __name__ == "__main__":
  main()

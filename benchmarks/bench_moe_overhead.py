"""Step time of an 8-expert top-1 MoE over the dense model at equal active parameters
(targets: median <= 1.15, every round <= 1.3).

  python benchmarks/bench_moe_overhead.py [--config=experiments/tiny.py] [--experts=8] [--top-k=1]

Each expert has the dense FFN's hidden size (model.moe.expert_hidden = 0), so with top-1 routing a
token meets the same FFN parameters as in the dense model; the MoE adds the router, the dispatch
(sort, gather, the grouped matmul of mmscale/models/moe_kernels.py: "blocks" on CPU, ragged_dot
elsewhere, scatter back) and the balancing losses, and that is what the ratio prices. Both trainers
are built in this process and their timed repeats alternate, so load from other jobs hits both
alike; `rounds` holds each repeat's MoE/dense ratio (wall and CPU seconds of the same round).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # pylint: disable=g-import-not-at-top


def main(argv=None):
  p = common.parser(__doc__)
  p.add_argument("--experts", type=int, default=8)
  p.add_argument("--top-k", type=int, default=1)
  p.add_argument("--mode", default="dropless", help="model.moe.mode: dropless | capacity")
  p.add_argument("--steps", type=int, default=3, help="steps per timed repeat")
  a = p.parse_args(argv)
  common.init_platform(a.platform)

  moe_set = ["model.ffn=moe", f"model.moe.experts={a.experts}", f"model.moe.top_k={a.top_k}",
             f"model.moe.mode={a.mode}"]
  timers, counts, compile_s = {}, {}, {}
  for name, extra in (("dense", ["model.ffn=dense"]), ("moe", moe_set)):
    t = common.build_trainer(common.load_config(a.config, list(a.set) + extra))
    timers[name] = common.StepTimer(t, n_batches=a.steps)
    counts[name] = t.counts
    compile_s[name] = timers[name].compile_seconds()
  times, cpu = {"dense": [], "moe": []}, {"dense": [], "moe": []}
  for r in range(a.repeats):
    for name in (("dense", "moe") if r % 2 == 0 else ("moe", "dense")):
      times[name] += timers[name].step_seconds(a.steps, 1, cpu=cpu[name])
  dense, moe = common.median(times["dense"]), common.median(times["moe"])
  ratio = moe / dense
  rounds = {"wall": [m / d for m, d in zip(times["moe"], times["dense"])],
            "cpu": [m / d for m, d in zip(cpu["moe"], cpu["dense"])]}
  common.emit({
      "benchmark": "moe_overhead", "config": a.config, "overrides": a.set + moe_set,
      "figure": f"moe{a.experts}_top{a.top_k}_over_dense_step_time", "ratio": ratio,
      "target": {"median": 1.15, "every_round": 1.3},
      "meets_target": ratio <= 1.15 and max(rounds["wall"]) <= 1.3,
      "rounds": rounds, "rounds_max": {k: max(v) for k, v in rounds.items()},
      "active_params": {k: v["active_params"] for k, v in counts.items()},
      "params": {k: v["params"] for k, v in counts.items()},
      "ratio_cpu_seconds": common.median(cpu["moe"]) / common.median(cpu["dense"]),
      "step_seconds_median": {"dense": dense, "moe": moe}, "step_seconds": times,
      "step_cpu_seconds": cpu,
      "compile_seconds": compile_s, "machine": common.machine(),
  })


if __name__ == "__main__":
  main()

"""Host memory of a training run against the bytes of its state, and the compiled step's memory
per remat policy (target: peak RSS / state bytes <= 5 for nmm t4).

  python benchmarks/bench_memory.py [--config=experiments/nmm.py:size=t4] [--steps=30]
      [--policies=none,full,dots,dots_no_batch,block_io] [--repeats=5]

Two parts, each printed in the one JSON object:
- `rss`: a child process runs `mmscale.train.loop.train` (what `mmscale train` runs) on the config
  with its default remat and reports its RSS after importing the stack (the floor: Python, jax,
  XLA, grain), after building the Trainer, and its peak (ru_maxrss). State bytes = params + Adam
  state. The figure is peak / state; `above_floor_over_state` is (peak - floor) / state, the part a
  model and its run control.
- `policies`: for each remat policy, the train step's `compiled.memory_analysis()` (XLA's temp
  buffer, arguments, outputs) and its step time (timed repeats alternate between the policies).
"""

import json
import os
import resource
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # pylint: disable=g-import-not-at-top

MIB = 2 ** 20
TARGET = 5.0


def _rss_bytes() -> int:
  with open("/proc/self/statm", encoding="ascii") as f:
    return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_bytes() -> int:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB.


def tree_bytes(tree) -> int:
  import jax
  return sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(tree))


def child(config_spec, overrides, steps) -> dict:
  """The measured run, in its own process so that nothing of the parent's imports counts."""
  import jax  # pylint: disable=g-import-not-at-top
  from mmscale import config as config_lib  # pylint: disable=g-import-not-at-top
  from mmscale.train import loop  # pylint: disable=g-import-not-at-top
  import mmscale.models  # pylint: disable=g-import-not-at-top,unused-import
  jax.numpy.zeros(1).block_until_ready()  # Start the CPU client: part of the floor.
  floor = _rss_bytes()
  config = common.load_config(config_spec, list(overrides) + [f"train.steps={steps}"])
  config.train.warmup_steps = min(config.train.warmup_steps, steps - 1)
  marks = {}

  class Measured(loop.Trainer):
    """The loop's own Trainer, with the RSS read the moment it is built."""

    def __init__(self, *args, **kwargs):
      super().__init__(*args, **kwargs)
      marks["after_trainer_build"] = _rss_bytes()
      marks["state_bytes"] = tree_bytes(self.params) + tree_bytes(self.opt_state)
      marks["remat"] = self.config.model.remat

  loop.Trainer = Measured
  with tempfile.TemporaryDirectory() as wd:
    loop.train(config, wd)
  return {"floor": floor, **marks, "peak": _peak_bytes()}


def compiled_memory(trainer, batch) -> dict:
  import jax  # pylint: disable=g-import-not-at-top
  with jax.set_mesh(trainer.mesh):
    lowered = trainer.train_step.lower(trainer.params, trainer.opt_state, batch, trainer.lr_input(1))
    m = lowered.compile().memory_analysis()
  return {"temp_bytes": int(m.temp_size_in_bytes), "argument_bytes": int(m.argument_size_in_bytes),
          "output_bytes": int(m.output_size_in_bytes), "alias_bytes": int(m.alias_size_in_bytes)}


def policies(a) -> dict:
  timers, out = {}, {}
  for name in a.policies.split(","):
    t = common.build_trainer(common.load_config(a.config, list(a.set) + [f"model.remat={name}"]))
    timers[name] = common.StepTimer(t, n_batches=a.timed_steps)
    out[name] = compiled_memory(t, timers[name].batches[0])
    timers[name].compile_seconds()
  times, cpu = {n: [] for n in timers}, {n: [] for n in timers}
  for r in range(a.repeats):
    order = list(timers) if r % 2 == 0 else list(reversed(timers))
    for name in order:
      times[name] += timers[name].step_seconds(a.timed_steps, 1, cpu=cpu[name])
  first = next(iter(timers))
  for name in timers:
    out[name]["step_seconds_median"] = common.median(times[name])
    out[name]["step_time_over_first"] = common.median(times[name]) / common.median(times[first])
    # CPU seconds hold still when other jobs load the machine; wall time does not.
    out[name]["step_cpu_over_first"] = common.median(cpu[name]) / common.median(cpu[first])
    out[name]["temp_mib"] = round(out[name]["temp_bytes"] / MIB, 2)
  return out


def main(argv=None):
  p = common.parser(__doc__)
  p.set_defaults(config="experiments/nmm.py:size=t4")
  p.add_argument("--steps", type=int, default=30, help="steps of the measured training run")
  p.add_argument("--policies", default="none,full,dots,dots_no_batch,block_io",
                 help="remat policies to compile and time ('' skips this part)")
  p.add_argument("--timed-steps", type=int, default=3, help="steps per timed repeat")
  p.add_argument("--child", action="store_true", help=argparse_hidden())
  a = p.parse_args(argv)
  common.init_platform(a.platform)
  if a.child:
    print(json.dumps(child(a.config, a.set, a.steps)), flush=True)
    return
  cmd = [sys.executable, os.path.abspath(__file__), "--child", f"--config={a.config}",
         f"--steps={a.steps}"] + [f"--set={s}" for s in a.set]
  if a.platform:
    cmd.append(f"--platform={a.platform}")
  proc = subprocess.run(cmd, check=True, capture_output=True, text=True)
  rss = json.loads(proc.stdout.strip().splitlines()[-1])
  ratio = rss["peak"] / rss["state_bytes"]
  result = {
      "benchmark": "memory", "config": a.config, "overrides": a.set,
      "figure": "peak_rss_over_state_bytes", "ratio": ratio, "target": TARGET,
      "meets_target": ratio <= TARGET,
      "above_floor_over_state": (rss["peak"] - rss["floor"]) / rss["state_bytes"],
      "rss_mib": {k: round(v / MIB, 1) for k, v in rss.items() if k not in ("remat",)},
      "default_remat": rss["remat"],
  }
  if a.policies:
    result["policies"] = policies(a)
  result["machine"] = common.machine()
  common.emit(result)


def argparse_hidden():
  import argparse  # pylint: disable=g-import-not-at-top
  return argparse.SUPPRESS


if __name__ == "__main__":
  main()

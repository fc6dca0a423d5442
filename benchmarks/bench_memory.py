"""Host memory of a training run against the bytes of its state, and the compiled step's memory
per remat policy (target: peak RSS / state bytes <= 5 for nmm t4).

  python benchmarks/bench_memory.py [--config=experiments/nmm.py:size=t4] [--steps=30]
      [--policies=none,full,dots,dots_no_batch,block_io] [--repeats=5]

Two parts, each printed in the one JSON object:
- `rss`: a child process runs `mmscale.train.loop.train` (what `mmscale train` runs, with its
  persistent compilation cache) on the config with its default remat and reports its RSS after
  importing the stack (the stack floor: Python, jax, XLA, grain, orbax), after building the
  Trainer and after the first call of each jitted step (trace, compile, run), with the peak so far
  (ru_maxrss) at each of these marks, and its final peak. The run is made twice on one fresh cache:
  `cold` compiles every program (a config's first run), `warm` loads them (resumes, a sweep's other
  runs of the shape). State bytes = params + Adam state. The figure is the cold peak / state;
  `above_jax_floor_over_state` is (peak - the RSS of `python -c 'import jax; jax.numpy.zeros(1)'`)
  / state, the part mmscale controls.
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


def jax_floor() -> int:
  """RSS of `python -c 'import jax; jax.numpy.zeros(1)'` under this process's allocator."""
  code = ("import os, jax; jax.numpy.zeros(1).block_until_ready(); "
          "print(int(open('/proc/self/statm').read().split()[1]) * os.sysconf('SC_PAGE_SIZE'))")
  lib = common.allocator.find() if common.allocator.loaded() else None
  env = common.allocator.preload_env(lib) if lib else dict(os.environ)
  out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                       env=env)
  return int(out.stdout.strip().splitlines()[-1])


def child(config_spec, overrides, steps) -> dict:
  """The measured run, in its own process so that nothing of the parent's imports counts."""
  import jax  # pylint: disable=g-import-not-at-top
  from mmscale import config as config_lib  # pylint: disable=g-import-not-at-top
  from mmscale.train import loop  # pylint: disable=g-import-not-at-top
  import mmscale.models  # pylint: disable=g-import-not-at-top,unused-import
  from mmscale.train import compile_cache  # pylint: disable=g-import-not-at-top
  jax.numpy.zeros(1).block_until_ready()  # Start the CPU client: part of the floor.
  compile_cache.enable()  # As `mmscale train` does ($MMSCALE_COMPILE_CACHE, set by the parent).
  floor = _rss_bytes()
  config = common.load_config(config_spec, list(overrides) + [f"train.steps={steps}"])
  config.train.warmup_steps = min(config.train.warmup_steps, steps - 1)
  marks = {}

  def first_call(fn, name):
    """fn, reading RSS and the peak so far when its first call (trace + compile + run) is done."""

    def wrapped(*args, **kwargs):
      out = fn(*args, **kwargs)
      if f"after_first_{name}" not in marks:
        jax.block_until_ready(out)
        marks[f"after_first_{name}"], marks[f"peak_after_first_{name}"] = _rss_bytes(), _peak_bytes()
      return out

    return wrapped

  class Measured(loop.Trainer):
    """The loop's own Trainer, with the RSS read the moment it is built and after each jitted
    step's first call, so the peak can be put down to a phase."""

    def __init__(self, *args, **kwargs):
      super().__init__(*args, **kwargs)
      marks["after_trainer_build"], marks["peak_after_trainer_build"] = _rss_bytes(), _peak_bytes()
      marks["state_bytes"] = tree_bytes(self.params) + tree_bytes(self.opt_state)
      marks["remat"] = self.config.model.remat
      self.train_step = first_call(self.train_step, "train_step")
      self.eval_step = first_call(self.eval_step, "eval_step")

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
  runs = {}
  with tempfile.TemporaryDirectory() as cache:
    # The same run twice on a fresh compilation cache: "cold" compiles every program (a config's
    # first run), "warm" loads them (every later run of the shape: resumes, a sweep's other runs).
    env = dict(os.environ, MMSCALE_COMPILE_CACHE=cache)
    for name in ("cold", "warm"):
      proc = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
      runs[name] = json.loads(proc.stdout.strip().splitlines()[-1])
  floor = jax_floor()
  state = runs["cold"]["state_bytes"]
  ratio = runs["cold"]["peak"] / state
  result = {
      "benchmark": "memory", "config": a.config, "overrides": a.set,
      "figure": "peak_rss_over_state_bytes", "ratio": ratio, "target": TARGET,
      "meets_target": ratio <= TARGET, "state_mib": round(state / MIB, 1),
      "jax_floor_mib": round(floor / MIB, 1),
  }
  for name, rss in runs.items():
    result[name] = {
        "peak_over_state": rss["peak"] / state,
        # What mmscale controls: the peak above a process that only imported jax and made an array.
        "above_jax_floor_over_state": (rss["peak"] - floor) / state,
        "above_stack_floor_over_state": (rss["peak"] - rss["floor"]) / state,
        "rss_mib": {k: round(v / MIB, 1) for k, v in rss.items() if k not in ("remat", "state_bytes")},
    }
  result["default_remat"] = runs["cold"]["remat"]
  if a.policies:
    result["policies"] = policies(a)
  result["machine"] = common.machine()
  common.emit(result)


def argparse_hidden():
  import argparse  # pylint: disable=g-import-not-at-top
  return argparse.SUPPRESS


if __name__ == "__main__":
  main()

"""Shared helpers of the performance benchmarks: configs, the real train step, timing, peaks.

Every benchmark prints one JSON object (its figure is a ratio of two times or rates measured in the
same process) so runs on different machines can be compared line by line. Timings are medians of
several repeats: the machines these run on are shared and noisy, and a median ignores the repeat
that lost the CPU to someone else's test.
"""

import argparse
import datetime
import importlib.util
import json
import os
import platform
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from mmscale import allocator  # pylint: disable=g-import-not-at-top

allocator.reexec()  # Measure what `mmscale train` runs: under tcmalloc where it can be had.

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# Dense bf16 peak FLOP/s from the vendors' data sheets, matched against jax's device_kind.
SPEC_BF16_PEAK = (
    ("H100 PCIe", 756e12), ("H100", 989e12), ("H200", 989e12), ("GH200", 989e12),
    ("A100", 312e12), ("L4", 121e12), ("TPU v5 lite", 197e12), ("TPU v5", 459e12),
    ("TPU v4", 275e12),
)


def parser(doc: str) -> argparse.ArgumentParser:
  """Flags every benchmark shares: config, overrides, platform, repeats."""
  p = argparse.ArgumentParser(description=doc.splitlines()[0])
  p.add_argument("--config", default="experiments/tiny.py",
                 help="config file[:arg], as for `mmscale train --config`")
  p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                 help="override a config leaf, e.g. --set model.depth=8 (repeatable)")
  p.add_argument("--platform", default="",
                 help="jax platform: cpu | gpu (= cuda) | tpu (default: jax's)")
  p.add_argument("--repeats", type=int, default=5, help="timed repeats; the median is reported")
  return p


def init_platform(name: str) -> None:
  """Chooses the jax backend before any device is touched."""
  import jax
  if name:  # "gpu" would make jax try every GPU plugin (cuda, rocm, ...) and fail on the missing.
    jax.config.update("jax_platforms", {"gpu": "cuda"}.get(name, name))


def load_config(spec: str, overrides=()):
  """`path[:arg]` -> the study's config, with `key=value` overrides applied (types kept)."""
  path, _, arg = spec.partition(":")
  if not os.path.isabs(path):
    path = os.path.join(ROOT, path)
  module_spec = importlib.util.spec_from_file_location("bench_config", path)
  mod = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(mod)
  config = mod.get_config(arg) if arg else mod.get_config()
  for item in overrides:
    set_leaf(config, *item.split("=", 1))
  return config


def set_leaf(config, key: str, value) -> None:
  """config.<key> = value, parsed to the type of the current value when given as a string."""
  *parents, leaf = key.split(".")
  node = config
  for p in parents:
    node = node[p]
  old = node[leaf] if leaf in node else None
  if isinstance(value, str) and old is not None and not isinstance(old, str):
    if isinstance(old, bool):
      value = value.lower() in ("1", "true", "yes")
    elif isinstance(old, (tuple, list)):
      value = tuple(v for v in value.split("+") if v)
    else:
      value = type(old)(float(value) if isinstance(old, int) else value)
  node[leaf] = value


def median(xs) -> float:
  return float(statistics.median(xs))


def timed(fn, repeats: int, warmup: int = 1, cpu: list | None = None) -> list[float]:
  """Wall seconds of `fn()` (which must block until its work is done), after `warmup` calls.

  With `cpu`, the process CPU seconds of each call (all threads, XLA's included) are appended to
  it: steadier than wall time when other jobs share the cores, but blind to waiting.
  """
  for _ in range(warmup):
    fn()
  out = []
  for _ in range(repeats):
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    out.append(time.perf_counter() - t0)
    if cpu is not None:
      cpu.append(time.process_time() - c0)
  return out


class MatmulPeak:
  """FLOP/s of a large square matmul in this process: the device's practical peak.

  `chain` dependent matmuls per call keep the device busy between dispatches (the operand is
  rescaled so values stay finite). `sample()` times one call, so a benchmark can interleave peak
  samples with its own timings and divide like by like when the machine's load drifts.
  """

  def __init__(self, dtype: str = "float32", n: int = 2048, chain: int = 4):
    import jax
    import jax.numpy as jnp
    self.a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32).astype(dtype)
    b = (jax.random.normal(jax.random.key(1), (n, n), jnp.float32) / n ** 0.5).astype(dtype)

    @jax.jit
    def run(x):
      for _ in range(chain):
        x = jnp.dot(x, b, preferred_element_type=jnp.float32).astype(dtype)
      return x

    self.run, self.flops = run, chain * 2.0 * n ** 3
    self.run(self.a).block_until_ready()  # Compile.

  def sample(self) -> float:
    return self.flops / timed(lambda: self.run(self.a).block_until_ready(), 1, warmup=0)[0]


def matmul_peak(dtype: str = "float32", n: int = 2048, chain: int = 4, repeats: int = 5) -> float:
  """Median of `repeats` MatmulPeak samples."""
  m = MatmulPeak(dtype, n, chain)
  return median(m.sample() for _ in range(repeats))


def spec_peak(device) -> float | None:
  """Data-sheet dense bf16 FLOP/s of an accelerator, None when unknown (or a CPU)."""
  kind = getattr(device, "device_kind", "")
  for name, peak in SPEC_BF16_PEAK:
    if name.lower() in kind.lower():
      return peak
  return None


def machine() -> dict:
  import jax
  cpu = platform.processor() or ""
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), cpu)
  except OSError:
    pass
  dev = jax.devices()[0]
  return {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
          "nproc": os.cpu_count(), "cpu": cpu, "backend": jax.default_backend(),
          "devices": jax.device_count(), "device_kind": dev.device_kind,
          "jax": jax.__version__, "allocator": "tcmalloc" if allocator.loaded() else "system"}


def emit(result: dict) -> None:
  print(json.dumps(result, indent=1, sort_keys=False), flush=True)


def build_trainer(config):
  """The trainer's own state and jitted steps (mmscale.train.loop.Trainer) for a resolved config."""
  from mmscale import config as config_lib
  from mmscale.train.loop import Trainer
  config = config_lib.resolve(config)
  with tempfile.TemporaryDirectory() as wd:
    return Trainer(config, wd)


class StepTimer:
  """Runs a Trainer's jitted train step on pre-made device batches (no data or host work)."""

  def __init__(self, trainer, n_batches: int):
    import jax
    self.t = trainer
    self.jax = jax
    self.batches = [trainer.device_batch(next(trainer.data)) for _ in range(n_batches)]
    self.params, self.opt_state = trainer.params, trainer.opt_state
    self.calls = 0

  def run(self, steps: int) -> None:
    """`steps` steps back to back (dispatch is asynchronous), then wait for the last one."""
    m = None
    with self.jax.set_mesh(self.t.mesh):
      for _ in range(steps):
        b = self.batches[self.calls % len(self.batches)]
        self.params, self.opt_state, m = self.t.train_step(self.params, self.opt_state, b,
                                                           self.t.lr_input(1))
        self.calls += 1
      self.jax.block_until_ready((self.params, m))

  def compile_seconds(self) -> float:
    """The first call: trace, lower, compile and one step."""
    t0 = time.perf_counter()
    self.run(1)
    return time.perf_counter() - t0

  def step_seconds(self, steps: int, repeats: int, cpu: list | None = None) -> list[float]:
    """Per-step wall seconds of `repeats` runs of `steps` steps each (CPU seconds into `cpu`)."""
    c = []
    wall = [s / steps for s in timed(lambda: self.run(steps), repeats, warmup=0, cpu=c)]
    if cpu is not None:
      cpu.extend(x / steps for x in c)
    return wall

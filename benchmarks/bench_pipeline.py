"""Is the data pipeline fast enough? Pipeline tokens/s against the tokens/s the train step of
experiments/tiny.py consumes, on this machine (target: ratio >= 10 on 2 CPU cores).

  python benchmarks/bench_pipeline.py [--config=experiments/tiny.py] [--batches=300] [--steps=10]

The pipeline is timed from a fresh iterator (every example generated, tokenized and packed for the
first time; no cache hits) in the consumer thread; the train step is timed after compilation,
with device transfer included, as the trainer runs it.
"""

import argparse
import importlib.util
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # pylint: disable=g-import-not-at-top

from mmscale.data import pipeline


def load_config(path):
  path, _, arg = path.partition(":")
  spec = importlib.util.spec_from_file_location("bench_config", path)
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod.get_config(arg) if arg else mod.get_config()


def pipeline_rate(config, batches: int) -> tuple[float, float]:
  it = pipeline.make_train_iterator(config)
  next(it)  # Start-up (mixture set-up, first batch) is not throughput.
  tokens, t0 = 0, time.perf_counter()
  for _ in range(batches):
    tokens += int((next(it)["segment_ids"] > 0).sum())
  dt = time.perf_counter() - t0
  return tokens / dt, dt / batches


def step_rate(config, steps: int) -> tuple[float, float]:
  from mmscale import config as config_lib  # pylint: disable=g-import-not-at-top
  from mmscale.train.loop import Trainer  # pylint: disable=g-import-not-at-top
  config = config_lib.resolve(config)
  with tempfile.TemporaryDirectory() as wd:
    t = Trainer(config, wd)
  batches = [next(t.data) for _ in range(steps + 1)]
  params, opt = t.params, t.opt_state
  with jax.set_mesh(t.mesh):
    params, opt, m = t.train_step(params, opt, t.device_batch(batches[0]), t.lr_input(1))  # Compile.
    jax.block_until_ready(m)
    t0 = time.perf_counter()
    for b in batches[1:]:
      params, opt, m = t.train_step(params, opt, t.device_batch(b), t.lr_input(1))
    jax.block_until_ready(m)
  dt = time.perf_counter() - t0
  tokens = sum(int((b["segment_ids"] > 0).sum()) for b in batches[1:])
  return tokens / dt, dt / steps


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--config", default="experiments/tiny.py")
  p.add_argument("--batches", type=int, default=300)
  p.add_argument("--steps", type=int, default=10)
  a = p.parse_args()
  config = load_config(a.config)
  pipe, pipe_s = pipeline_rate(config, a.batches)
  step, step_s = step_rate(load_config(a.config), a.steps)
  print(f"config {a.config}: batch {config.data.batch_size} x {config.data.seq_len}, "
        f"{os.cpu_count()} CPUs, {jax.device_count()} {jax.default_backend()} device(s)")
  print(f"pipeline:   {pipe:12,.0f} tokens/s  ({pipe_s * 1e3:7.1f} ms/batch, {a.batches} batches)")
  print(f"train step: {step:12,.0f} tokens/s  ({step_s * 1e3:7.1f} ms/step, {a.steps} steps)")
  print(f"ratio pipeline/step: {pipe / step:.1f} (target >= 10)")


if __name__ == "__main__":
  main()

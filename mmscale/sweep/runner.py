"""Runs one run of a sweep in its own process: `python -m mmscale.sweep.runner RUN_DIR`.

A worker starts one runner per run, so a crash (or a kill) of a run never takes the worker down.
The runner reads the run's spec and calls the trainer
(`mmscale.train.loop.train`, or `--train_fn=module:function` in tests); multi-host runs start
jax.distributed from the scheduler's environment first. SIGTERM goes straight to
this process, where the trainer saves a checkpoint and returns status "preempted".

Exit codes: 0 done, 143 preempted (a scheduler may requeue), 3 diverged, 1 failed. A SIGTERM or
SIGUSR1 at any moment, imports and compilation included, ends in 143 (the handler is installed
before anything heavy is imported: ml_collections and JAX load lazily).
"""

import importlib
import importlib.util
import json
import os
import signal
import sys

from mmscale.contract import DONE, EXIT_FAILED, EXIT_OF_STATUS

DEFAULT_TRAIN_FN = "mmscale.train.loop:train"


def load_train_fn(spec: str):
  """`package.module:fn` or `path/to/file.py:fn`."""
  module, _, name = spec.rpartition(":") if spec.count(":") else (spec, "", "train")
  if module.endswith(".py"):
    loader = importlib.util.spec_from_file_location(os.path.basename(module)[:-3], module)
    mod = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(mod)
  else:
    mod = importlib.import_module(module)
  return getattr(mod, name or "train")


def run_config(run_dir: str):
  """The run's resolved config (a branch's init_from is its trunk's id: a sibling directory)."""
  import ml_collections
  with open(os.path.join(run_dir, "run.json")) as f:
    spec = json.load(f)
  return ml_collections.ConfigDict(_tuples(spec["config"]))


USER_KEYED = ("data.streams", "run.tags")  # Sub-dicts whose keys the study chooses.


def fill_new_defaults(config):
  """Adds config keys that the code gained after the run's spec was written (their defaults), so
  a sweep written by an older checkout still runs; returns the keys added and the new config."""
  import ml_collections

  from mmscale import config as config_lib
  added = []

  def merge(base, cfg, path):
    for k, v in base.items():
      if k not in cfg:
        if path.rstrip(".") not in USER_KEYED:
          cfg[k] = v
          added.append(path + k)
      elif isinstance(v, dict) and isinstance(cfg[k], dict):
        merge(v, cfg[k], path + k + ".")

  d = config.to_dict()
  merge(config_lib.base_config().to_dict(), d, "")
  return added, ml_collections.ConfigDict(_tuples(d))


def _tuples(x):
  """JSON has no tuples; configs use them for sequences."""
  if isinstance(x, dict):
    return {k: _tuples(v) for k, v in x.items()}
  if isinstance(x, list):
    return tuple(_tuples(v) for v in x)
  return x


def main(argv: list[str]) -> int:
  train_fn = DEFAULT_TRAIN_FN
  args = []
  for a in argv[1:]:
    if a.startswith("--train_fn="):
      train_fn = a.split("=", 1)[1]
    else:
      args.append(a)
  if len(args) != 1:
    print("usage: python -m mmscale.sweep.runner [--train_fn=module:fn] RUN_DIR", file=sys.stderr)
    return 2
  run_dir = os.path.abspath(args[0])
  config = run_config(run_dir)
  train = load_train_fn(train_fn)
  # A branch's spec names its trunk by run id, so that ids do not depend on where the root is;
  # the trainer gets the trunk's directory (Orbax wants absolute paths).
  root = os.path.dirname(run_dir)
  init_from = config.train.get("init_from", "")
  if init_from and not os.path.isabs(init_from) and "://" not in init_from:
    config.train.init_from = os.path.join(root, init_from)
  os.chdir(root)
  if train_fn == DEFAULT_TRAIN_FN:
    added, config = fill_new_defaults(config)
    if added:
      print(f"runner: the spec predates config keys {', '.join(added)}; using their defaults",
            file=sys.stderr)
    from mmscale import parallel
    parallel.initialize_distributed_from_env()
    # Runs of a sweep share shapes (a trunk and its branches, one size across budgets, every
    # eval step): the persistent cache compiles each once per machine (benchmarks/RESULTS.md "Demo").
    from mmscale.train import compile_cache
    compile_cache.enable()
  # SLURM signals every process of a step (USR2 before the time limit, for submitit's worker);
  # the worker answers with SIGTERM to this process, so USR2 itself must not kill the run.
  signal.signal(signal.SIGUSR2, signal.SIG_IGN)
  # Ctrl-C reaches the whole process group; the worker turns it into a SIGTERM for this run, which
  # checkpoints, instead of a KeyboardInterrupt that would leave the run failed.
  signal.signal(signal.SIGINT, signal.SIG_IGN)
  from mmscale.errors import UserError
  try:
    summary = train(config, run_dir) or {}
  except UserError as e:
    print(f"mmscale: error: {e}", file=sys.stderr)
    return EXIT_FAILED
  return EXIT_OF_STATUS.get(summary.get("status", DONE), EXIT_FAILED)


if __name__ == "__main__":
  from mmscale.train import preemption
  preemption.install()  # First: a SIGTERM while JAX imports is a preemption, not a crash.
  from mmscale import allocator
  allocator.reexec()  # The run trains here: under tcmalloc where it can be had (see allocator).
  sys.exit(main(sys.argv))

"""`mmscale train --config=experiments/tiny.py[:arg] --workdir=DIR [--config.a.b=value ...]`."""

import logging as pylogging
import os
import sys

from absl import flags, logging
from ml_collections import config_flags

from mmscale import contract
from mmscale.flagparse import parse_flags

FLAGS = flags.FlagValues()
_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Study/config file with get_config(arg), e.g. experiments/tiny.py or "
    "experiments/nmm.py:fusion=late,size=t1; any leaf can be overridden as --config.train.lr=1e-3.",
    flag_values=FLAGS, lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory (created; resumed if it holds a checkpoint).",
                               flag_values=FLAGS)


class _OnlyWarningsFromLibraries(pylogging.Filter):
  """Orbax logs every step of every save at INFO; keep ours at INFO and theirs at WARNING."""

  def filter(self, record):
    return record.levelno >= pylogging.WARNING or "/orbax/" not in record.pathname


def quiet_library_logs() -> None:
  logging.get_absl_logger().addFilter(_OnlyWarningsFromLibraries())


def enable_compilation_cache() -> None:
  """Runs of a sweep share shapes (a trunk and its branches, a size across budgets): compile once
  (mmscale/train/compile_cache.py; $MMSCALE_COMPILE_CACHE, "" disables it)."""
  from mmscale.train import compile_cache
  compile_cache.enable()


def check_run_inputs(config, workdir: str) -> None:
  """A branch's trunk checkpoint, checked before the workdir is created (check_workdir has
  checked the workdir's own config.json)."""
  from mmscale.errors import UserError

  trunk = str(config.train.get("init_from", "") or "")
  resuming = os.path.isdir(os.path.join(workdir, contract.CHECKPOINTS_DIR))
  if trunk and "://" not in trunk and not resuming:
    step = int(config.train.init_step)
    if not os.path.isdir(os.path.join(trunk, contract.CHECKPOINTS_DIR, str(step))):
      raise UserError(f"config.train.init_from={trunk!r}: no checkpoint of step {step} in "
                      f"{os.path.join(trunk, contract.CHECKPOINTS_DIR)} (the trunk's workdir, trained to "
                      "config.train.init_step)")


def main(argv: list[str]) -> int:
  from mmscale.errors import UserError

  parse_flags(FLAGS, argv)
  if _CONFIG.value is None:
    raise UserError("--config is required, e.g. --config=experiments/tiny.py")
  if not _WORKDIR.value:
    raise UserError("--workdir is required (the run directory)")
  logging.set_verbosity(logging.INFO)
  quiet_library_logs()
  from mmscale import config as config_lib
  from mmscale.train.workdir import check_workdir

  config = config_lib.resolve(_CONFIG.value)  # Validate before any heavy import or work.
  workdir = check_workdir(_WORKDIR.value)
  check_run_inputs(config, workdir)
  from mmscale.data.config import describe_mixture
  print(describe_mixture(config))  # What a --config.data.mixture string made of the streams.
  from mmscale import parallel
  from mmscale.train import loop

  parallel.initialize_distributed_from_env()
  enable_compilation_cache()
  summary = loop.train(config, workdir)
  final = summary.get("final_val", {})
  init = summary.get("initial_val", {})
  for source in sorted(final):
    print(f"{source:>16}: loss {init.get(source, {}).get('loss', float('nan')):.4f} -> "
          f"{final[source]['loss']:.4f} nats/token ({final[source]['bpb']:.4f} bits/byte)")
  print(f"status {summary['status']} after {summary['step']}/{summary['steps']} steps, "
        f"{summary['tokens']:,} tokens, {summary['train_time']:.1f} s -> {workdir}")
  if summary["status"] == contract.DIVERGED:
    print(f"mmscale: error: run diverged: {summary['reason']}; stopped at step {summary['step']}, "
          f"the checkpoints in {workdir} are from before it", file=sys.stderr)
  return contract.EXIT_OF_STATUS.get(summary["status"], contract.EXIT_DONE)

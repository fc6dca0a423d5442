"""`mmscale <command>`: dispatches to the stage that owns the command.

Each stage's cli module defines its flags on a registry of its own, so only the chosen module is
imported (start-up stays fast) and flag names may repeat across stages. A user error is one line on
stderr and exit code 2; an internal error keeps its traceback.
"""

import importlib
import sys

from absl import flags

from mmscale import allocator
from mmscale.errors import UserError

COMMANDS = {
    "train": ("mmscale.train.cli", "train one run from a config"),
    "sweep": ("mmscale.sweep.cli", "expand a study's grid and run it (local, slurm, tpu)"),
    "status": ("mmscale.sweep.cli", "progress of every run under a sweep root"),
    "collect": ("mmscale.sweep.cli", "gather a sweep's records into one table"),
    "fit": ("mmscale.laws.cli", "fit scaling laws to a records table"),
    "report": ("mmscale.report.cli", "draw the figures of a sweep and its fits"),
    "data": ("mmscale.data.cli", "prepare corpora, print pipeline statistics"),
    "demo": ("mmscale.demo", "the main job: data, sweep, fit, report"),
}


def usage() -> str:
  lines = ["usage: mmscale <command> [flags]   (mmscale <command> --help for its flags)", ""]
  lines += [f"  {name:<8} {doc}" for name, (_, doc) in COMMANDS.items()]
  return "\n".join(lines)


def run(argv: list[str]) -> int:
  if len(argv) < 2 or argv[1] in ("-h", "--help", "help"):
    print(usage())
    return 0 if len(argv) >= 2 else 2
  command = argv[1]
  if command not in COMMANDS:
    print(f"mmscale: error: unknown command {command!r}\n{usage()}", file=sys.stderr)
    return 2
  module = importlib.import_module(COMMANDS[command][0])
  try:
    return int(module.main([command] + argv[2:]) or 0)
  except UserError as e:
    print(f"mmscale: error: {e}", file=sys.stderr)
    return e.exit_code
  except flags.Error as e:  # Unknown flag, bad flag value, unreadable config file.
    print(f"mmscale: error: {e}", file=sys.stderr)
    return 2


def main() -> None:
  allocator.reexec()  # Before anything else starts: tcmalloc halves XLA:CPU's step (see allocator).
  sys.exit(run(sys.argv))

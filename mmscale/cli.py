"""`mmscale <command>`: dispatches to the stage that owns the command.

Each stage's cli module defines its flags on a registry of its own, so only the chosen module is
imported (start-up stays fast) and flag names may repeat across stages. A user error is one line on
stderr and exit code 2; an internal error keeps its traceback.
"""

import difflib
import importlib
import os
import signal
import sys

from absl import flags

from mmscale import allocator
from mmscale import flagparse
from mmscale.errors import UserError

COMMANDS = {
    "train": ("mmscale.train.cli", "train one run from a config"),
    "sweep": ("mmscale.sweep.cli", "expand a study's grid and run it (local, slurm, tpu)"),
    "status": ("mmscale.sweep.cli", "progress of every run under a sweep root"),
    "collect": ("mmscale.sweep.cli", "gather a sweep's records into one table"),
    "fit": ("mmscale.laws.cli", "fit scaling laws to a records table"),
    "plan-next": ("mmscale.laws.plan_cli", "the runs that would most shrink the fit's interval, per FLOP"),
    "report": ("mmscale.report.cli", "draw the figures of a sweep and its fits"),
    "data": ("mmscale.data.cli", "prepare corpora, print pipeline statistics"),
    "demo": ("mmscale.demo", "the main job: data, sweep, fit, report"),
}


def usage() -> str:
  lines = ["usage: mmscale <command> [flags]   (mmscale <command> --help for its flags)", ""]
  lines += [f"  {name:<8} {doc}" for name, (_, doc) in COMMANDS.items()]
  return "\n".join(lines)


def command_help(command: str, args: list[str]) -> str:
  """`mmscale COMMAND [SUB] --help`: the command's usage and its flags, without running anything.

  The stage module only defines flags at import (its heavy imports happen in main), so this never
  loads jax. A module serving several commands or subcommands lists each one's flags in HELP_FLAGS,
  keyed "command" or "command sub".
  """
  module = importlib.import_module(COMMANDS[command][0])
  by_command = getattr(module, "HELP_FLAGS", {})
  sub = args[0] if args and not args[0].startswith("-") else None
  key = f"{command} {sub}" if sub else command
  subs = [k.split(" ", 1)[1] for k in by_command if k.startswith(command + " ")]
  if sub and subs and key not in by_command:
    raise UserError(f"mmscale {command}: unknown subcommand {sub!r} (allowed: {', '.join(subs)})")
  usage = f"mmscale {key}: {COMMANDS[command][1]}\n\n{(module.__doc__ or '').strip()}"
  return flagparse.help_text(usage, module.FLAGS, by_command.get(key))


def run(argv: list[str]) -> int:
  if len(argv) < 2 or argv[1] in ("-h", "--help", "help"):
    print(usage())
    return 0 if len(argv) >= 2 else 2
  command = argv[1]
  if command not in COMMANDS:
    close = difflib.get_close_matches(command, COMMANDS, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    print(f"mmscale: error: unknown command {command!r} ({hint}commands: {', '.join(COMMANDS)}; "
          "mmscale --help says what each does)", file=sys.stderr)
    return 2
  try:
    if flagparse.wants_help(argv[2:]):
      print(command_help(command, argv[2:]))
      return 0
    if command == "train":  # A scheduler's SIGTERM while JAX imports must still mean "requeue".
      from mmscale.train import preemption
      with preemption.guard():
        return int(importlib.import_module(COMMANDS[command][0]).main([command] + argv[2:]) or 0)
    module = importlib.import_module(COMMANDS[command][0])
    return int(module.main([command] + argv[2:]) or 0)
  except UserError as e:
    print(f"mmscale: error: {e}", file=sys.stderr)
    return e.exit_code
  except flags.Error as e:  # Unknown flag, bad flag value, unreadable config file.
    print(f"mmscale: error: {e}", file=sys.stderr)
    return 2


def main() -> None:
  train = sys.argv[1:2] == ["train"]
  if train:  # From here on a scheduler's SIGTERM means "requeue", not "die": blocked signals stay
    from mmscale.train import preemption  # pending across the re-exec, until the handler is in.
    signal.pthread_sigmask(signal.SIG_BLOCK, preemption.SIGNALS)
  if not flagparse.wants_help(sys.argv[2:]):  # Help needs no fast allocator, only a fast start.
    allocator.reexec()  # Before anything else starts: tcmalloc halves XLA:CPU's step (see allocator).
  if train:
    preemption.install()  # Unblocks them: one that arrived meanwhile is delivered now.
  try:
    code = run(sys.argv)
    sys.stdout.flush()
  except BrokenPipeError:  # `mmscale sweep --help | head`: the reader left; not an error of ours.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's own recipe.
    code = 141  # What a shell reports for a writer stopped by SIGPIPE.
  sys.exit(code)

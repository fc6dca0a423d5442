"""Parsing a stage's module-local absl flags from an explicit argv, repeatably.

Every `mmscale <command>` module keeps its flags on its own FlagValues, so commands can be called
in-process (tests, the demo) as often as needed. ml_collections' config flags read their
`--config.a.b=v` overrides from sys.argv and register one flag per override at parse time, so a
second parse must first drop the previous call's overrides.
"""

import sys

from absl import flags
from ml_collections.config_flags.config_flags import ConfigFileFlagParser

from mmscale import config_file
from mmscale.errors import UserError


def one_line(message: str) -> str:
  """The first line of a flag error, or, when it wraps a traceback (a config file's get_config
  raised), the flag and the exception's own last line."""
  lines = [l for l in message.splitlines() if l.strip()]
  if len(lines) > 1 and any(l.startswith("Traceback") for l in lines):
    return f"{lines[0].split(': Error whilst')[0]}: {lines[-1].strip()}"
  return lines[0] if lines else message


def _config_file_flags(flag_values: flags.FlagValues) -> list[str]:
  return [n for n in flag_values
          if isinstance(flag_values[n].parser, ConfigFileFlagParser)]


def _value_in(args: list[str], name: str):
  """The last value given to --name (as --name=v or --name v) before a bare `--`, or None."""
  value = None
  for i, arg in enumerate(args):
    if arg == "--":
      break
    for prefix in (f"--{name}", f"-{name}"):
      if arg.startswith(prefix + "="):
        value = arg[len(prefix) + 1:]
      elif arg == prefix and i + 1 < len(args):
        value = args[i + 1]
  return value


HELP_ARGS = ("-h", "-help", "--help", "--helpshort", "--helpfull")


def wants_help(args: list[str]) -> bool:
  return any(a in HELP_ARGS for a in args)


def help_text(usage: str, flag_values: flags.FlagValues, names=None) -> str:
  """usage, then each flag (all, or those named) with its help text and default.

  Renders through a FlagValues holding only the chosen flags: absl's own help layout, without its
  special --flagfile/--undefok entries that mmscale does not read.
  """
  shown = flags.FlagValues()
  for name in (names if names is not None else list(flag_values)):
    if not name.startswith("config."):  # Overrides registered by the last parse are not flags.
      shown[name] = flag_values[name]
  return f"{usage.strip()}\n\nflags:\n{shown.get_help(prefix='  ', include_special_flags=False)}"


def parse_flags(flag_values: flags.FlagValues, argv: list[str]) -> list[str]:
  """Parses argv (argv[0] = program name) into flag_values; returns the positional arguments."""
  for name in _config_file_flags(flag_values):
    spec = _value_in(argv[1:], name)
    if spec is not None:  # config_flags would fail later, or with a traceback: check it first.
      config_file.check_overrides(name, config_file.load(name, spec), argv[1:])
    sys.modules.pop(f"{name}_config", None)  # config_flags re-executes into a cached module.
  flag_values.unparse_flags()
  for name in [n for n in flag_values if n.startswith("config.")]:
    delattr(flag_values, name)
  saved, sys.argv = sys.argv, list(argv)
  try:
    rest = flag_values(list(argv))
  except flags.Error as e:
    raise UserError(one_line(str(e))) from e
  finally:
    sys.argv = saved
  if len(rest) > 1:  # No command takes positional arguments: a stray word is a mistyped flag.
    raise UserError(f"unexpected argument {rest[1]!r}: flags are written --name=value "
                    f"(mmscale {argv[0]} --help lists them)")
  return rest

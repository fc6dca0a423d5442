"""Parsing a stage's module-local absl flags from an explicit argv, repeatably.

Every `mmscale <command>` module keeps its flags on its own FlagValues, so commands can be called
in-process (tests, the demo) as often as needed. ml_collections' config flags read their
`--config.a.b=v` overrides from sys.argv and register one flag per override at parse time, so a
second parse must first drop the previous call's overrides.
"""

import os
import sys

from absl import flags

from mmscale.errors import UserError


def one_line(message: str) -> str:
  """The first line of a flag error, or, when it wraps a traceback (a config file's get_config
  raised), the flag and the exception's own last line."""
  lines = [l for l in message.splitlines() if l.strip()]
  if len(lines) > 1 and any(l.startswith("Traceback") for l in lines):
    return f"{lines[0].split(': Error whilst')[0]}: {lines[-1].strip()}"
  return lines[0] if lines else message


def parse_flags(flag_values: flags.FlagValues, argv: list[str]) -> list[str]:
  """Parses argv (argv[0] = program name) into flag_values; returns the positional arguments."""
  for arg in argv[1:]:
    if arg.startswith("--config=") and not arg.startswith("--config=."):
      path = arg.split("=", 1)[1].split(":", 1)[0]
      if not os.path.isfile(path):  # config_flags would only fail later, with a traceback.
        raise UserError(f"--config={path}: no such config file")
  flag_values.unparse_flags()
  for name in [n for n in flag_values if n.startswith("config.")]:
    delattr(flag_values, name)
  saved, sys.argv = sys.argv, list(argv)
  try:
    return flag_values(list(argv))
  except flags.Error as e:
    raise UserError(one_line(str(e))) from e
  finally:
    sys.argv = saved

"""Checks a `--config=FILE[:arg]` study/config file and its `--config.a.b=v` overrides up front.

ml_collections' config flags let a study file's own failures escape as tracebacks (a syntax error,
a missing or raising get_config, None returned, an override naming no key). This runs the same
steps first and turns each into one line naming the input and what is allowed; the config flag
then loads the file as before.
"""

import difflib
import os
import sys
import traceback
import types

import ml_collections

from mmscale.errors import UserError


def load(flag: str, spec: str):
  """get_config(arg) of `spec` = "path[:arg]", or UserError saying what is wrong with the file."""
  path, *arg = spec.split(":", 1)
  where = f"--{flag}={spec}"
  if not os.path.isfile(path):
    raise UserError(f"--{flag}={path}: no such config file")
  try:
    with open(path, encoding="utf-8") as f:
      source = f.read()
  except (OSError, UnicodeDecodeError) as e:
    raise UserError(f"--{flag}={path}: cannot read it ({e})") from None
  try:
    code = compile(source, path, "exec")
  except SyntaxError as e:
    raise UserError(f"--{flag}={path}: syntax error at line {e.lineno}: {e.msg}") from None
  name = "mmscale_config_check"
  module = types.ModuleType(name)
  module.__file__ = path
  sys.modules[name] = module  # dataclasses and pickling in a study look themselves up here.
  try:
    try:
      exec(code, module.__dict__)  # pylint: disable=exec-used
    except Exception as e:  # pylint: disable=broad-except  # The user's code: any error is theirs.
      raise UserError(f"{where}: loading it raised {describe(e, path)}") from None
    get_config = getattr(module, "get_config", None)
    if not callable(get_config):
      raise UserError(f"{where}: the file defines no get_config(arg) function")
    try:
      config = get_config(*arg)
    except UserError as e:  # The study's own one-line message (a bad argument): as it is.
      raise UserError(f"flag {where}: {e}") from None
    except Exception as e:  # pylint: disable=broad-except
      raise UserError(f"flag {where}: {describe(e, path)}") from None
  finally:
    sys.modules.pop(name, None)
  if not isinstance(config, ml_collections.ConfigDict):
    raise UserError(f"{where}: get_config returned {type(config).__name__}, not an "
                    "ml_collections.ConfigDict (is a return statement missing?)")
  return config


def describe(e: Exception, path: str) -> str:
  """"Type: message (at FILE:LINE)", the line being the deepest one in the user's file."""
  message = " ".join(str(e).split()) or "(no message)"
  frames = [f for f in traceback.extract_tb(e.__traceback__)
            if os.path.abspath(f.filename) == os.path.abspath(path)]
  at = f" (at {path}:{frames[-1].lineno})" if frames else ""
  return f"{type(e).__name__}: {message}{at}"


def check_overrides(flag: str, config, argv: list[str]) -> None:
  """Every --FLAG.a.b=v must name a key of the config; an unknown one says which key was meant."""
  for arg in argv:
    body = arg.lstrip("-")
    if body.startswith("no" + flag + "."):
      body = body[2:]
    if not body.startswith(flag + ".") or not arg.startswith("-"):
      continue
    dotted = body.split("=", 1)[0][len(flag) + 1:]
    node, seen = config, flag
    for part in dotted.split("."):
      if "[" in part:  # Indexing into a tuple: config_flags checks it.
        break
      if not hasattr(node, "keys"):
        raise UserError(f"--{flag}.{dotted}: {seen} is a value ({type(node).__name__}), "
                        "not a group of keys")
      keys = [str(k) for k in node.keys()]
      if part not in keys:
        close = difflib.get_close_matches(part, keys, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"its keys: {', '.join(sorted(keys))}"
        raise UserError(f"--{flag}.{dotted}: {seen} has no key {part!r} ({hint})")
      node, seen = node[part], f"{seen}.{part}"

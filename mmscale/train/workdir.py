"""The run directory: checked before any work, and never taken over from a different run."""

import json
import os

import ml_collections

from mmscale.config import run_id
from mmscale.contract import CONFIG_FILE
from mmscale.errors import UserError
from mmscale.train.records import write_json_atomic


def check_workdir(workdir) -> str:
  """The workdir's absolute path, if it is new or a run directory whose config.json reads."""
  workdir = os.path.abspath(os.fspath(workdir))
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise UserError(f"--workdir={workdir}: is a file; must be a directory (new or of this run)")
  existing = os.path.join(workdir, CONFIG_FILE)
  if os.path.isfile(existing):
    try:
      with open(existing, encoding="utf-8") as f:
        ok = isinstance(json.load(f), dict)
    except (UnicodeDecodeError, json.JSONDecodeError):
      ok = False
    if not ok:
      raise UserError(f"--workdir={workdir}: its config.json is not a JSON object, so it is not a "
                      "run directory mmscale wrote; use a new workdir")
  return workdir


def prepare_workdir(config, workdir, primary: bool = True) -> str:
  """Creates the workdir and writes config.json; refuses a workdir that holds another run."""
  workdir = check_workdir(workdir)
  try:
    os.makedirs(workdir, exist_ok=True)
  except OSError as e:
    raise UserError(f"--workdir={workdir}: cannot create it ({e.strerror})") from None
  path = os.path.join(workdir, CONFIG_FILE)
  resolved = json.loads(json.dumps(config.to_dict(), default=str))
  if os.path.exists(path):
    with open(path, encoding="utf-8") as f:
      existing = json.load(f)
    if run_id(ml_collections.ConfigDict(existing)) != run_id(config):
      raise UserError(f"--workdir={workdir}: holds a run with a different config.json; "
                      "use a new workdir (nothing was changed)")
    # Same run (mmscale/config.py, "run identity"): only presentation keys or keys mmscale gained differ.
    if resolved != existing and primary:
      write_json_atomic(path, resolved)
  elif primary:
    write_json_atomic(path, resolved)
  return workdir

"""A study file -> its base config, its grid and the RunSpecs of its runs.

`experiments/STUDY.py[:arg]` defines get_config(arg) (a full run config from base_config()) and
get_grid(arg) (see mmscale/sweep/grid_config.py); a study may instead put the grid in `config.sweep`.
The sweep stage then works from the frozen Grid and the base config without its `sweep` entry.
"""

import dataclasses
import importlib.util
import math
import numbers
import os

import ml_collections

from mmscale import config_file
from mmscale.errors import UserError
from mmscale.sweep import grid as grid_lib
from mmscale.sweep import grid_config
from mmscale.sweep import registry


@dataclasses.dataclass
class Study:
  path: str
  config: object
  grid: object
  specs: list
  notes: list


def load_module(path: str):
  if not os.path.isfile(path):
    raise UserError(f"--config={path}: no such study file")
  name = "mmscale_study_" + os.path.splitext(os.path.basename(path))[0]
  spec = importlib.util.spec_from_file_location(name, path)
  if spec is None or spec.loader is None:
    raise UserError(f"--config={path}: not a Python file")
  module = importlib.util.module_from_spec(spec)
  try:
    spec.loader.exec_module(module)
  except Exception as e:  # pylint: disable=broad-except  # The study's own code: its error is the user's.
    raise UserError(f"--config={path}: loading it raised {config_file.describe(e, path)}") from None
  return module


def split_arg(config_flag: str) -> tuple[str, str]:
  path, _, arg = config_flag.partition(":")
  return path, arg


def load_grid(path: str, arg: str, config):
  """The study's frozen, checked Grid, and the config without a `sweep` entry."""
  module = load_module(path)
  if hasattr(module, "get_grid"):
    try:
      user = module.get_grid(arg) if arg else module.get_grid()
    except Exception as e:  # pylint: disable=broad-except
      raise UserError(f"--config={path}: get_grid raised {config_file.describe(e, path)}") from None
    if not isinstance(user, (dict, ml_collections.ConfigDict)):
      raise UserError(f"--config={path}: get_grid returned {type(user).__name__}, not a dict of "
                      "grid fields (is a return statement missing?)")
  elif "sweep" in config:
    user = config.sweep
  else:
    raise UserError(f"--config={path}: a study file needs get_grid(arg) (or config.sweep)")
  if "sweep" in config:
    config = _without(config, "sweep")
  # Runs are named after the study's run.name, not a generic "study".
  g = grid_config.make_grid(user, path, name=str(config.run.name))
  rules = {rule: _users(getattr(g, rule), f"grid.{rule}", path)
           for rule in ("lr_rule", "batch_rule") if getattr(g, rule) is not None}
  return dataclasses.replace(g, **rules), config


def _users(fn, what: str, path: str):
  """A study's rule (params -> lr or batch size): its exceptions and any result that is not a
  positive number become one line naming the rule and the argument."""
  def call(n):
    try:
      value = fn(n)
    except Exception as e:  # pylint: disable=broad-except  # The study's own code.
      raise UserError(f"--config={path}: {what}({n}) raised {config_file.describe(e, path)}") from None
    if not (isinstance(value, numbers.Real) and not isinstance(value, bool) and 0 < value < math.inf):
      raise UserError(f"--config={path}: {what}({n}) returned {value!r}; must be a positive number")
    return value
  return call


def _without(config, key):
  d = config.to_dict()
  d.pop(key)
  return ml_collections.ConfigDict(d)


def default_stats(config):
  from mmscale import flops
  return flops.param_counts(config), flops.flops_per_token(config)


def default_resolve(config):
  from mmscale import config as config_lib
  return config_lib.resolve(config)


def build(path: str, arg: str, config, stats_fn=None, resolve_fn=None) -> Study:
  g, config = load_grid(path, arg, config)
  cells, notes = grid_lib.expand(config, g, stats_fn or default_stats)
  specs = registry.build_specs(config, g, cells, resolve_fn or default_resolve)
  seen = {}
  for s in specs:
    if s.run_id in seen:
      raise UserError(f"grid has two identical runs {s.run_id} (cells {seen[s.run_id]} and "
                      f"{s.tags}): remove the duplicate budget or size")
    seen[s.run_id] = s.tags
  return Study(path, config, g, specs, notes)

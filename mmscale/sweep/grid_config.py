"""The sweep stage's config: a study's grid as one frozen, validated `Grid`.

A study file has `get_config(arg)` (the full base run config) and `get_grid(arg)` (a dict or
ConfigDict with these fields; a study may instead put them in `config.sweep`):

  budgets           FLOP budgets, e.g. (1e12, 3e12, 1e13); or budget_range = (lo, hi, num), log-spaced
  sizes             {name: overrides} per model size, overrides nested ({"model": {"width": 64}})
                    or dotted ({"model.width": 64}) - (width at fixed depth, or
                    any shape rule written out), in order
  batch_rule        optional callable(params) -> data.batch_size     (per-size batch rule)
  lr_rule           optional callable(params) -> train.lr            (per-size learning-rate rule)
  axes              optional {axis: {value: overrides}} crossed with the grid
                    (a mixture axis, an architecture axis, ...); each becomes a run tag
  flops             key of mmscale.flops.flops_per_token: "6N" (C = 6ND) or an exact variant;
                    late fusion adds its encoders as the records do, C = 6(N_v*D_v + N*D)
  params_key        which parameter count batch_rule and lr_rule receive ("params")
  min_steps         cells with fewer training steps are dropped with a note
  tokens_per_param  (lo, hi): cells outside the range are dropped with a note (tokens per
                    active parameter: an MoE's idle experts do not see the tokens)
  cooldown          True: one constant-LR trunk per size + a cool-down branch per budget
  flops_per_second  throughput used for the estimated time in --dry-run
  name              readable prefix of the run names (default: the config's run.name)

`make_grid` checks every field here, once, next to the fields: unknown names, the type and shape
of each value, the budgets, empty sizes or axes. A bad grid is one line (UserError, exit 2) before
anything is planned or written. The planner (grid.expand, registry.build_specs, plan) receives the
frozen Grid; a worker receives the RunSpecs the planner wrote (each run's resolved config), never
the grid. What needs the model's counts (a `flops` key of flops_per_token, an infeasible grid) is
checked where they are computed, in grid.expand, still before anything is written.

Why a frozen dataclass and not a FrozenConfigDict like the run's stage sections (mmscale/stages.py):
the grid is not part of any run's config (no `--config.a.b=` override reaches it, it is not hashed
into run ids nor written to config.json), and it holds the study's functions (batch_rule,
lr_rule). Its fields are fixed, with their defaults in one place. Errors name the study file and
`grid.<field>` (`--config=PATH: grid.min_steps=0: ...`), not a `config.` key, so they are raised
here rather than through mmscale.validation, whose messages name run-config keys.
"""

import dataclasses
import math
import numbers
from typing import Callable

import ml_collections

from mmscale.errors import UserError


@dataclasses.dataclass(frozen=True)
class Grid:
  name: str = "study"
  budgets: tuple = ()
  budget_range: tuple = ()
  sizes: dict = dataclasses.field(default_factory=dict)
  batch_rule: Callable | None = None
  lr_rule: Callable | None = None
  axes: dict = dataclasses.field(default_factory=dict)
  flops: str = "6N"
  params_key: str = "params"
  min_steps: int = 1
  tokens_per_param: tuple = ()
  cooldown: bool = False
  flops_per_second: float = 1e10


FIELDS = tuple(f.name for f in dataclasses.fields(Grid))


def make_grid(user, path: str = "", name: str | None = None) -> Grid:
  """The frozen, checked Grid of a study's dict/ConfigDict. path: the study file errors name;
  name: the default run-name prefix when the grid gives none."""
  items = dict(user.items()) if hasattr(user, "items") else {}
  for key in items:
    if key not in FIELDS:
      raise UserError(f"{path or 'grid'}: grid has no field {key!r} "
                      f"(allowed: {', '.join(sorted(FIELDS))})")
  values = {k: v.to_dict() if isinstance(v, ml_collections.ConfigDict) else v
            for k, v in items.items()}
  if name is not None and "name" not in values:
    values["name"] = name
  g = Grid(**values)
  _check_types(g, f"--config={path}" if path else "grid")
  # Sequences of numbers become tuples (numpy arrays included: their truth value is ambiguous
  # where the grid asks "given?").
  g = dataclasses.replace(g, **{f: tuple(getattr(g, f))
                                for f in ("budgets", "budget_range", "tokens_per_param")})
  _check_values(g)
  return g


def _number(v) -> bool:
  return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _numbers(v, n=None) -> bool:
  """A sequence (tuple, list, numpy array) of real numbers, of length n when given."""
  if isinstance(v, (str, bytes)) or not hasattr(v, "__len__"):
    return False
  return all(_number(x) for x in v) and (n is None or len(v) == n)


def _dict_of_dicts(v) -> bool:
  mapping = (dict, ml_collections.ConfigDict)
  return isinstance(v, mapping) and all(isinstance(k, str) and isinstance(o, mapping)
                                        for k, o in v.items())


def _check_types(g: Grid, where: str) -> None:
  """UserError for the first field whose value has the wrong type or shape: a string budget or
  sizes given as a list is one line naming the field, what it got and what is allowed (not a
  traceback from deep inside the expansion, nor a budget silently parsed from text)."""
  def bad(field, allowed):
    raise UserError(f"{where}: grid.{field}={getattr(g, field)!r}: {allowed}")

  if not isinstance(g.name, str) or not g.name:
    bad("name", "must be a non-empty string (the prefix of the run names)")
  if not _numbers(g.budgets):
    bad("budgets", "must be a tuple of FLOP counts as numbers, e.g. (1e12, 3e12, 1e13)")
  if g.budget_range and not _numbers(g.budget_range, 3):
    bad("budget_range", "must be (lo, hi, num) as numbers, e.g. (1e12, 1e14, 5)")
  if not _dict_of_dicts(g.sizes):
    bad("sizes", "must be a dict {name: overrides}, e.g. {'s1': {'model.width': 64}}")
  if not (isinstance(g.axes, (dict, ml_collections.ConfigDict))
          and all(_dict_of_dicts(v) for v in g.axes.values())):
    bad("axes", "must be a dict {axis: {value: overrides}}, e.g. {'ffn': {'dense': {}, "
        "'moe': {'model.ffn': 'moe'}}}")
  for rule in ("batch_rule", "lr_rule"):
    if getattr(g, rule) is not None and not callable(getattr(g, rule)):
      bad(rule, "must be a function of the parameter count, or None")
  for field in ("flops", "params_key"):
    if not isinstance(getattr(g, field), str):
      bad(field, "must be a string naming a count of mmscale.flops")
  if not (isinstance(g.min_steps, numbers.Integral) and not isinstance(g.min_steps, bool)
          and g.min_steps >= 1):
    bad("min_steps", "must be an integer >= 1")
  if g.tokens_per_param and not (_numbers(g.tokens_per_param, 2)
                                 and 0 <= g.tokens_per_param[0] <= g.tokens_per_param[1]):
    bad("tokens_per_param", "must be (lo, hi) numbers with 0 <= lo <= hi, or () for no bound")
  if not isinstance(g.cooldown, bool):
    bad("cooldown", "must be True or False")
  if not (_number(g.flops_per_second) and g.flops_per_second > 0):
    bad("flops_per_second", "must be a positive number")


def _check_values(g: Grid) -> None:
  """The budgets, sizes and axes a grid must have to expand into any cell."""
  if not g.sizes:
    raise UserError("grid.sizes is empty: a study needs at least one model size")
  if g.budgets and g.budget_range:
    raise UserError("grid: give either budgets or budget_range, not both")
  if g.budget_range:
    lo, hi, num = g.budget_range
    if not (0 < lo <= hi) or int(num) < 1:
      raise UserError(f"grid.budget_range={tuple(g.budget_range)!r}: need 0 < lo <= hi, num >= 1")
  elif not g.budgets:
    raise UserError("grid has no budgets: set grid.budgets or grid.budget_range")
  if any(not math.isfinite(b) or b <= 0 for b in g.budgets):
    raise UserError(f"grid.budgets={tuple(g.budgets)!r}: must be positive FLOP counts")
  for axis, values in g.axes.items():
    if not values:
      raise UserError(f"grid.axes.{axis} is empty")

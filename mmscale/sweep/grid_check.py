"""The types of a study's grid fields, checked before any run is planned or anything written.

make_grid checks the field names; this checks what each holds, so a string budget or sizes given
as a list is one line naming the field, what it got and what is allowed (not a traceback from
deep inside the expansion, nor a budget silently parsed from text).
"""

import numbers

import ml_collections

from mmscale.errors import UserError


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


def check(g, where: str) -> None:
  """UserError for the first field of Grid g whose value has the wrong type or shape; sequences of
  numbers become tuples (an array's truth value is ambiguous where the grid asks "given?")."""
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
  if not (isinstance(g.axes, (dict, ml_collections.ConfigDict)) and all(_dict_of_dicts(v) for v in g.axes.values())):
    bad("axes", "must be a dict {axis: {value: overrides}}, e.g. {'ffn': {'dense': {}, "
        "'moe': {'model.ffn': 'moe'}}}")
  for rule in ("batch_rule", "lr_rule"):
    if getattr(g, rule) is not None and not callable(getattr(g, rule)):
      bad(rule, "must be a function of the parameter count, or None")
  for field in ("flops", "params_key"):
    if not isinstance(getattr(g, field), str):
      bad(field, "must be a string naming a count of mmscale.flops")
  if not (isinstance(g.min_steps, numbers.Integral) and not isinstance(g.min_steps, bool) and g.min_steps >= 1):
    bad("min_steps", "must be an integer >= 1")
  if g.tokens_per_param and not (_numbers(g.tokens_per_param, 2)
                                 and 0 <= g.tokens_per_param[0] <= g.tokens_per_param[1]):
    bad("tokens_per_param", "must be (lo, hi) numbers with 0 <= lo <= hi, or () for no bound")
  if not isinstance(g.cooldown, bool):
    bad("cooldown", "must be True or False")
  if not (_number(g.flops_per_second) and g.flops_per_second > 0):
    bad("flops_per_second", "must be a positive number")
  for field in ("budgets", "budget_range", "tokens_per_param"):  # numpy arrays -> tuples.
    setattr(g, field, tuple(getattr(g, field)))

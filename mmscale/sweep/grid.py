"""IsoFLOP grid: budgets x sizes (x study axes) -> cells with tokens, steps and FLOPs.

The grid is the sweep stage's frozen, validated config (mmscale/sweep/grid_config.py: its fields
and their checks); this module expands it against a study's base run config.

Budgets are exact FLOPs; the tokens of a cell are C / flops_per_token rounded up to whole steps,
so the realised C is reported next to the nominal budget. A cell's flops_per_token is per batch
position, counted as the records count FLOPs: early fusion 6N per position (packing leaves under
1 % padding); late fusion 6N per non-pad position plus 6N_v per media position, the shares
measured on the run's own first batches (mmscale/sweep/token_profile.py).
"""

import dataclasses
import itertools
import math
from typing import Callable

import ml_collections
import numpy as np

from mmscale.errors import UserError


def flatten(overrides, prefix: str = "") -> dict:
  """{"model": {"width": 64}} or {"model.width": 64} -> {"model.width": 64}."""
  if isinstance(overrides, ml_collections.ConfigDict):
    overrides = overrides.to_dict()
  out = {}
  for key, value in (overrides or {}).items():
    if isinstance(value, dict) and key != "tags":
      out.update(flatten(value, f"{prefix}{key}."))
    else:
      out[f"{prefix}{key}"] = value
  return out


@dataclasses.dataclass
class Cell:
  """One (size, budget, axes) point of the grid, before run ids exist."""
  size: str
  budget: float  # Nominal FLOP budget.
  axes: dict  # {axis: value}
  overrides: dict  # Flattened {dotted.key: value} applied to the base config.
  params: dict  # mmscale.flops.param_counts of the cell's model.
  flops_per_token: float
  tokens_per_step: int
  steps: int

  @property
  def tokens(self) -> int:
    return self.steps * self.tokens_per_step

  @property
  def flops(self) -> float:
    return self.flops_per_token * self.tokens


def budgets(g) -> list[float]:
  """The FLOP budgets of a (checked) Grid: its budgets, or budget_range log-spaced."""
  if g.budget_range:
    lo, hi, num = g.budget_range
    # 6 significant digits: geomspace's float noise (4.0000000000001e10) would leak into tags.
    return [float(f"{b:.6g}") for b in np.geomspace(lo, hi, int(num))]
  return [float(b) for b in g.budgets]


def apply(config, overrides: dict):
  """A copy of `config` with flattened {dotted.key: value} overrides (unknown keys are errors)."""
  c = ml_collections.ConfigDict(config.to_dict())
  for key, value in overrides.items():
    node = c
    *path, leaf = key.split(".")
    for part in path:
      if part not in node:
        raise UserError(f"grid override {key}={value!r}: config has no key {part!r}")
      node = node[part]
    if leaf not in node and path[:2] != ["run", "tags"]:
      raise UserError(f"grid override {key}={value!r}: config has no key {leaf!r}")
    if isinstance(value, (dict, ml_collections.ConfigDict)):
      value = ml_collections.ConfigDict(dict(value))
    if leaf in node and isinstance(node[leaf], tuple) and isinstance(value, list):
      value = tuple(value)
    with node.ignore_type():
      node[leaf] = value
  return c


MEDIA_FLOPS = {"6N": "6N_v", "6N+attn": "6N_v+attn"}  # Late fusion: encoder FLOPs per media token.


def position_flops(cfg, fpt: dict, key: str, profile_fn: Callable | None) -> float:
  """Training FLOPs per batch position under convention `key`, as the records will count them."""
  media_key = MEDIA_FLOPS.get(key)
  if media_key not in fpt:  # Early fusion (or a convention without an encoder term).
    return float(fpt[key])
  if profile_fn is None:
    from mmscale.sweep import token_profile
    profile_fn = token_profile.measure
  share = profile_fn(cfg)
  return float(fpt[key]) * share["tokens"] + float(fpt[media_key]) * share["media"]


def expand(config, g, stats_fn: Callable, profile_fn: Callable | None = None
           ) -> tuple[list[Cell], list[str]]:
  """Enumerates the feasible cells and the notes on those dropped.

  stats_fn(config) -> (param_counts dict, flops_per_token dict), normally from mmscale.flops;
  profile_fn(config) -> {"tokens": non-pad share, "media": media share} of the run's positions
  (late fusion only; default mmscale.sweep.token_profile.measure).
  """
  bs = budgets(g)  # g: a Grid from grid_config.make_grid, so sizes, budgets and axes are checked.
  axes = {name: dict(values) for name, values in g.axes.items()}
  combos = [dict(zip(axes, vals)) for vals in itertools.product(*[list(v) for v in axes.values()])]
  cells, notes = [], []
  for combo in combos:
    axis_over = {}
    for name, value in combo.items():
      axis_over.update(flatten(axes[name][value]))
    for size, size_over in g.sizes.items():
      over = {**axis_over, **flatten(size_over)}
      cfg = apply(config, over)
      params, fpt = stats_fn(cfg)
      n = params[g.params_key]
      rules = {}
      if g.batch_rule is not None:
        rules["data.batch_size"] = int(g.batch_rule(n))
      if g.lr_rule is not None:
        rules["train.lr"] = float(g.lr_rule(n))
      if rules:
        over.update(rules)
        cfg = apply(config, over)
      if g.flops not in fpt:
        raise UserError(f"grid.flops={g.flops!r}: must be one of {', '.join(map(repr, fpt))}")
      tps = int(cfg.data.batch_size) * int(cfg.data.seq_len)
      per_position = position_flops(cfg, fpt, g.flops, profile_fn)
      where = "/".join([f"{k}={v}" for k, v in combo.items()] + [f"size={size}"])
      for b in bs:
        steps = math.ceil(b / (per_position * tps))
        cell = Cell(size, b, dict(combo), dict(over), dict(params), per_position, tps, steps)
        if steps < g.min_steps:
          notes.append(f"dropped {where} C={b:.3g}: {steps} steps < min_steps {g.min_steps}")
          continue
        if g.tokens_per_param:
          lo, hi = g.tokens_per_param
          ratio = cell.tokens / params.get("active_params", n)
          if not lo <= ratio <= hi:
            notes.append(f"dropped {where} C={b:.3g}: tokens/param {ratio:.3g} outside [{lo}, {hi}]")
            continue
        cells.append(cell)
  if not cells:
    raise UserError("grid is infeasible: every cell was dropped (" + "; ".join(notes[:3])
                    + ("; ..." if len(notes) > 3 else "") + ")")
  return cells, notes

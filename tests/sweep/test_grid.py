"""Grid expansion: budgets, tokens from the FLOPs formula, per-size rules, constraints, axes."""

import math

import ml_collections
import numpy as np
import pytest

from mmscale.errors import UserError
from mmscale.sweep import grid as grid_lib
from mmscale.sweep import grid_config


def _config():
  c = ml_collections.ConfigDict()
  c.model = ml_collections.ConfigDict({"width": 8, "depth": 2})
  c.data = ml_collections.ConfigDict({"batch_size": 4, "seq_len": 16, "mix": "a"})
  c.train = ml_collections.ConfigDict({"lr": 1e-3, "steps": 10})
  c.run = ml_collections.ConfigDict({"name": "x", "tags": ml_collections.ConfigDict()})
  return c


def _stats(config):
  n = 12 * config.model.depth * config.model.width ** 2
  return {"params": n, "active_params": n}, {"6N": 6.0 * n, "6N+attn": 6.0 * n + 100.0}


def _grid(**kw):
  g = {"budgets": (1e7, 1e8), "sizes": {"a": {"model.width": 8}, "b": {"model": {"width": 16}}}}
  g.update(kw)
  return grid_config.make_grid(g)


def test_tokens_follow_budget_through_formula():
  cells, notes = grid_lib.expand(_config(), _grid(), _stats)
  assert len(cells) == 4 and not notes
  for c in cells:
    n = 12 * 2 * {"a": 8, "b": 16}[c.size] ** 2
    assert c.steps == math.ceil(c.budget / (6 * n * 64))
    assert c.flops == pytest.approx(6 * n * c.steps * 64)
    assert c.flops >= c.budget  # Rounded up to whole steps.
  exact, _ = grid_lib.expand(_config(), _grid(flops="6N+attn"), _stats)
  assert all(e.steps <= c.steps for e, c in zip(exact, cells))


def test_budget_range_is_log_spaced():
  assert grid_lib.budgets(_grid(budgets=(), budget_range=(1e6, 1e8, 3))) == pytest.approx(
      [1e6, 1e7, 1e8])
  with pytest.raises(UserError, match="either budgets or budget_range"):
    grid_lib.budgets(_grid(budget_range=(1e6, 1e8, 3)))


def test_rules_and_constraints_drop_cells_with_notes():
  g = _grid(lr_rule=lambda n: 1.0 / n, batch_rule=lambda n: 2 if n < 5000 else 8, min_steps=20,
            tokens_per_param=(0.1, 1e9))
  cells, notes = grid_lib.expand(_config(), g, _stats)
  for c in cells:
    n = c.params["params"]
    assert c.overrides["train.lr"] == 1.0 / n
    assert c.tokens_per_step == (2 if n < 5000 else 8) * 16
    assert c.steps >= 20
  assert len(cells) + len(notes) == 4 and notes
  assert all("min_steps" in n for n in notes)
  cells, notes = grid_lib.expand(_config(), _grid(tokens_per_param=(1.0, 20.0)), _stats)
  assert all(1.0 <= c.tokens / c.params["params"] <= 20.0 for c in cells)
  assert len(cells) + len(notes) == 4 and all("tokens/param" in n for n in notes) and notes


def test_axes_are_crossed_and_unknown_keys_rejected():
  g = _grid(axes={"mix": {"m1": {"data.mix": "b"}, "m2": {}}, "arch": {"deep": {"model.depth": 4}}})
  cells, _ = grid_lib.expand(_config(), g, _stats)
  assert len(cells) == 2 * 1 * 2 * 2
  assert {tuple(sorted(c.axes.items())) for c in cells} == {
      (("arch", "deep"), ("mix", "m1")), (("arch", "deep"), ("mix", "m2"))}
  assert all(c.params["params"] == 12 * 4 * c.overrides["model.width"] ** 2 for c in cells)
  with pytest.raises(UserError, match="no key 'widht'"):
    grid_lib.expand(_config(), _grid(sizes={"a": {"model.widht": 3}}), _stats)


@pytest.mark.parametrize("kw,match", [
    ({"sizes": {}}, "sizes is empty"),
    ({"budgets": ()}, "no budgets"),
    ({"budgets": (-1.0,)}, "positive"),
    ({"min_steps": 10**9}, "infeasible"),
    ({"flops": "7N"}, "grid.flops='7N'"),
    ({"axes": {"mix": {}}}, "axes.mix is empty"),
])
def test_bad_grids_are_one_line_errors(kw, match):
  with pytest.raises(UserError, match=match) as e:
    grid_lib.expand(_config(), _grid(**kw), _stats)
  assert "\n" not in str(e.value)


def test_unknown_grid_field():
  with pytest.raises(UserError, match="no field 'budget'"):
    grid_config.make_grid({"budget": (1,)})


def test_apply_does_not_touch_base():
  c = _config()
  out = grid_lib.apply(c, {"model.width": 99, "run.tags.size": "s"})
  assert c.model.width == 8 and out.model.width == 99 and out.run.tags.size == "s"
  np.testing.assert_equal(grid_lib.flatten({"a": {"b": 1, "c": {"d": 2}}, "e.f": 3}),
                          {"a.b": 1, "a.c.d": 2, "e.f": 3})

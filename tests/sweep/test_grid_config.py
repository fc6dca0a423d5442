"""The sweep stage's config: a study's grid becomes one frozen Grid, checked once before anything
is planned or written (mmscale/sweep/grid_config.py)."""

import dataclasses
import os

import ml_collections
import numpy as np
import pytest

from mmscale import cli
from mmscale.errors import UserError
from mmscale.sweep import grid_config
from mmscale.sweep import study as study_lib

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GOOD = {"budgets": (1e12, 3e12), "sizes": {"s1": {"model.width": 64}}}
ALLOWED = ("axes, batch_rule, budget_range, budgets, cooldown, flops, flops_per_second, lr_rule, "
           "min_steps, name, params_key, sizes, tokens_per_param")


def test_the_grid_is_frozen_and_normalised():
  g = grid_config.make_grid(ml_collections.ConfigDict(
      {"budgets": np.array([1e12, 3e12]), "sizes": {"s1": {"model": {"width": 64}}}}), name="nmm")
  assert g.budgets == (1e12, 3e12) and isinstance(g.budgets, tuple)
  assert g.sizes == {"s1": {"model": {"width": 64}}} and type(g.sizes) is dict
  assert g.name == "nmm"  # The default prefix; a grid's own name wins.
  assert grid_config.make_grid({**GOOD, "name": "mine"}, name="nmm").name == "mine"
  with pytest.raises(dataclasses.FrozenInstanceError):
    g.min_steps = 5


@pytest.mark.parametrize("grid,message", [
    ({**GOOD, "budget": (1,)}, f"s.py: grid has no field 'budget' (allowed: {ALLOWED})"),
    ({**GOOD, "min_steps": 0}, "--config=s.py: grid.min_steps=0: must be an integer >= 1"),
    ({**GOOD, "sizes": {}}, "grid.sizes is empty: a study needs at least one model size"),
    ({**GOOD, "budget_range": (1e12, 1e13, 2)}, "grid: give either budgets or budget_range, not both"),
    ({"sizes": GOOD["sizes"], "budget_range": (1e13, 1e12, 2)},
     "grid.budget_range=(10000000000000.0, 1000000000000.0, 2): need 0 < lo <= hi, num >= 1"),
    ({"sizes": GOOD["sizes"]}, "grid has no budgets: set grid.budgets or grid.budget_range"),
    ({**GOOD, "axes": {"mix": {}}}, "grid.axes.mix is empty"),
])
def test_each_bad_field_is_its_exact_line(grid, message):
  with pytest.raises(UserError) as e:
    grid_config.make_grid(grid, "s.py")
  assert str(e.value) == message


def test_the_planner_receives_the_frozen_grid():
  path = os.path.join(REPO, "experiments", "tiny_isoflop.py")
  module = study_lib.load_module(path)
  g, config = study_lib.load_grid(path, "", module.get_config())
  assert isinstance(g, grid_config.Grid) and "sweep" not in config
  with pytest.raises(dataclasses.FrozenInstanceError):
    g.budgets = ()


def test_a_bad_grid_key_is_exit_2_one_line_and_writes_nothing(tmp_path, capfd):
  study = tmp_path / "study.py"
  study.write_text("from mmscale.config import base_config\n"
                   "def get_config(arg=''):\n  return base_config()\n"
                   "def get_grid(arg=''):\n"
                   "  return {'budgets': (1e12,), 'sizes': {'s': {}}, 'budget': (1e12,)}\n")
  root = tmp_path / "root"
  code = cli.run(["mmscale", "sweep", f"--config={study}", f"--root={root}"])
  err = [l for l in capfd.readouterr().err.splitlines() if l.strip()]
  assert code == 2
  assert err == [f"mmscale: error: {study}: grid has no field 'budget' (allowed: {ALLOWED})"]
  assert not root.exists() and sorted(os.listdir(tmp_path)) == ["study.py"]

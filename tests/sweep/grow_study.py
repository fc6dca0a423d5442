"""fake_study.py's cool-down sweep; arg "bigger" adds a larger budget (its trunks must grow)."""

import importlib.util
import os

_spec = importlib.util.spec_from_file_location(
    "fake_study_for_grow", os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake_study.py"))
fake_study = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fake_study)


def get_config(arg=""):
  return fake_study.get_config("cooldown")


def get_grid(arg=""):
  g = fake_study.get_grid("cooldown")
  if arg == "bigger":
    g["budgets"] = tuple(g["budgets"]) + (1.2e9,)
  return g

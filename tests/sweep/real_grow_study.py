"""real_study.py's sweep; arg "bigger" adds a larger budget, so its trunk must grow."""

import importlib.util
import os

_spec = importlib.util.spec_from_file_location(
    "real_study_for_grow", os.path.join(os.path.dirname(os.path.abspath(__file__)), "real_study.py"))
real_study = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(real_study)


def get_config(arg=""):
  return real_study.get_config()


def get_grid(arg=""):
  g = real_study.get_grid()
  if arg == "bigger":
    g["budgets"] = tuple(g["budgets"]) + (4.5e9,)
  return g

"""One nmm.py model family per arg (experiments/nmm.py's args) at one budget, for the budget tests."""

import importlib.util
import os

_NMM = os.path.join(os.path.dirname(__file__), "..", "..", "experiments", "nmm.py")
_spec = importlib.util.spec_from_file_location("nmm_for_budget_study", _NMM)
nmm = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(nmm)


def get_config(arg=""):
  c = nmm.get_config(arg)
  c.run.name = "budget"
  return c


def get_grid(arg=""):
  return {"budgets": (1.5e11,), "sizes": {"t1": {}}, "min_steps": 1}

"""The fitter's functions the report uses, looked up in one place (mmscale.laws public API).

Each returns None when the laws library (or that function) is absent, so the report can still draw
what needs no fit and say what it could not draw.
"""

import importlib

# Public name -> fallback submodule that defines it.
_WHERE = {"fit_all": "fit", "approach2": "isoflop", "frontier": "isoflop",
          "bootstrap": "bootstrap"}


def get(name: str):
  try:
    laws = importlib.import_module("mmscale.laws")
  except ImportError:
    return None
  fn = getattr(laws, name, None)
  if fn is None or isinstance(fn, type(importlib)):  # a submodule of the same name
    try:
      fn = getattr(importlib.import_module(f"mmscale.laws.{_WHERE[name]}"), name, None)
    except ImportError:
      return None
  return fn

"""Scaling-law fitting: Approaches 1-3, derived laws, bootstrap, held-out checks, multimodal laws.

The public names are loaded on first use: `mmscale fit --help` and a Chinchilla fit should not pay
for importing modules they never call (mixed_modal pulls in jax).
"""

import importlib

_WHERE = {"fit_all": "fit", "approach1": "isoflop", "approach2": "isoflop", "frontier": "isoflop",
          "read_table": "table"}
__all__ = ["read_table", "fit_all", "approach1", "approach2", "frontier"]


def __getattr__(name):
  if name in _WHERE:
    return getattr(importlib.import_module(f"mmscale.laws.{_WHERE[name]}"), name)
  raise AttributeError(f"module 'mmscale.laws' has no attribute {name!r}")

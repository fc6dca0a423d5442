"""Scaling-law fitting: Approaches 1-3, derived laws, bootstrap, held-out checks, multimodal laws.

Names are imported on first use (PEP 562): `mmscale fit --help` imports mmscale.laws.cli, and
the fitter's jax must not load for that.
"""

import importlib

_EXPORTS = {"read_table": "mmscale.laws.table", "fit_all": "mmscale.laws.fit",
            "approach1": "mmscale.laws.isoflop", "approach2": "mmscale.laws.isoflop",
            "frontier": "mmscale.laws.isoflop"}

__all__ = list(_EXPORTS)


def __getattr__(name):
  if name in _EXPORTS:
    return getattr(importlib.import_module(_EXPORTS[name]), name)
  raise AttributeError(f"module 'mmscale.laws' has no attribute {name!r}")

"""The laws `mmscale fit --law` knows: name -> "module:function" that fits it. Names, not functions,
so the flag (and its --help) lists them without loading the fitters (some import jax)."""

import importlib

LAWS = {
    "chinchilla": "mmscale.laws.fit:fit_chinchilla",
    "compression": "mmscale.laws.fit:fit_compression",
    "mixed_modal": "mmscale.laws.fit:fit_mixed_modal",
    "sparsity": "mmscale.laws.fit:fit_sparsity",
}


def fitter(law: str):
  """The function that fits `law`: fit(table, final rows, n_boot, seed, heldout, **options)."""
  module, name = LAWS[law].split(":")
  return getattr(importlib.import_module(module), name)

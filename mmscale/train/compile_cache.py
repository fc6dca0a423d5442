"""The persistent XLA compilation cache, shared by every run on a machine.

Runs of a sweep share shapes (a trunk and its branches, one size across budgets, every eval step),
so each program compiles once. Tiny CPU models compile in well under a second each, which is still
most of a short run's start-up, so every program is cached (min compile time 0).
"""

import os


def enable() -> None:
  """Caches in $MMSCALE_COMPILE_CACHE (default ~/.cache/mmscale/xla); "" disables the cache."""
  import jax

  from mmscale import allocator
  allocator.release_after_compiles()  # A compile's freed memory back to the OS before the step runs.
  path = os.environ.get("MMSCALE_COMPILE_CACHE", os.path.expanduser("~/.cache/mmscale/xla"))
  if path:
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)

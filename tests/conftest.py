"""Test set-up: 8 forced CPU devices so sharding and expert-parallel code runs for real."""

import os
import sys

# Must happen before JAX is imported anywhere.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# tests/helpers.py, shared across folders, is importable as `helpers` (pytest's importlib mode
# puts no test folder on sys.path).
sys.path.append(os.path.dirname(os.path.abspath(__file__)))

from mmscale import allocator  # pylint: disable=g-import-not-at-top

# `make test` starts pytest under tcmalloc (mmscale.allocator run); programs the tests start get the
# system allocator, and `python -m mmscale` children preload tcmalloc again themselves.
allocator.forget_preload()

# In-process programs compile with most XLA optimizations off (LLVM -O0 and none of its expensive
# passes; XLA's own HLO passes, fusion, layouts and sharding, still run): the tests compile hundreds
# of tiny programs and run each a few times, so compilation is most of their CPU time
# (test_model's remat test: 47 -> 29 CPU-s). Only this process: the programs the tests start
# (mmscale train, sweeps, the demo) compile as users' do.
import jax  # pylint: disable=g-import-not-at-top

jax.config.update("jax_disable_most_optimizations", True)

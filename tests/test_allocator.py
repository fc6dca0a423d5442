"""tcmalloc under mmscale's entry points: loaded by a re-exec of the same process, hidden from children."""

import os
import subprocess
import sys

import pytest

from mmscale import allocator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROBE = ("import os, subprocess, sys; from mmscale import allocator; allocator.reexec(); "
         "child = subprocess.run(['sh', '-c', 'echo ${LD_PRELOAD:-none}'], capture_output=True, text=True)"
         ".stdout.strip(); print(os.getpid(), allocator.loaded(), child)")


def _probe(**env):
  clean = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "MMSCALE_TCMALLOC_PRELOADED")}
  proc = subprocess.Popen([sys.executable, "-c", PROBE], cwd=ROOT, env=dict(clean, **env),
                          stdout=subprocess.PIPE, text=True)
  out, _ = proc.communicate(timeout=120)
  assert proc.returncode == 0
  pid, loaded, child = out.split()
  return proc.pid, int(pid), loaded == "True", child


@pytest.mark.skipif(allocator.find() is None, reason="tcmalloc is not installed (make install fetches it)")
def test_reexec_runs_the_same_process_under_tcmalloc_and_children_without_it():
  spawned, pid, loaded, child = _probe()
  assert loaded
  assert pid == spawned  # execve: same pid, so schedulers' signals still reach the run.
  assert child == "none"  # A program the run starts does not inherit the preload.


def test_system_allocator_when_asked():
  _, _, loaded, _ = _probe(MMSCALE_ALLOCATOR="system")
  assert not loaded


def test_forget_preload_keeps_the_users_own_entries(monkeypatch):
  env = allocator.preload_env("/x/libtcmalloc_minimal.so.4", {"LD_PRELOAD": "/usr/lib/libfoo.so"})
  assert env["LD_PRELOAD"] == "/x/libtcmalloc_minimal.so.4:/usr/lib/libfoo.so"
  for k in ("LD_PRELOAD", "MMSCALE_TCMALLOC_PRELOADED"):
    monkeypatch.setenv(k, env[k])
  allocator.forget_preload()
  assert os.environ["LD_PRELOAD"] == "/usr/lib/libfoo.so"
  assert "MMSCALE_TCMALLOC_PRELOADED" not in os.environ


def test_release_names_the_call_that_returned_free_memory():
  # tcmalloc when the test session runs under it (make test), glibc's malloc_trim otherwise.
  want = "MallocExtension_ReleaseFreeMemory" if allocator.loaded() else "malloc_trim"
  assert allocator.release() == want


def test_release_after_compiles_fires_on_long_compiles_only(monkeypatch):
  import jax
  import jax.numpy as jnp

  for old in allocator._releasing:  # pylint: disable=protected-access
    jax.monitoring.unregister_event_duration_listener(old)  # One registered earlier in the session.
  monkeypatch.setattr(allocator, "_releasing", [])
  calls = []
  monkeypatch.setattr(allocator, "release", lambda: calls.append(1))
  x = jnp.arange(7.0).block_until_ready()
  try:
    allocator.release_after_compiles(min_seconds=0.0)
    allocator.release_after_compiles(min_seconds=0.0)  # Idempotent: one listener.
    jax.jit(lambda x: jnp.sin(x) * 3.0 + 1.5)(x).block_until_ready()
    assert len(calls) == 1  # One compile, one release.
    jax.monitoring.unregister_event_duration_listener(allocator._releasing.pop())  # pylint: disable=protected-access
    allocator.release_after_compiles(min_seconds=3600.0)
    jax.jit(lambda x: jnp.cos(x) * 5.0)(x).block_until_ready()
    assert len(calls) == 1  # Under the threshold: no release.
  finally:
    for listener in allocator._releasing:  # pylint: disable=protected-access
      jax.monitoring.unregister_event_duration_listener(listener)

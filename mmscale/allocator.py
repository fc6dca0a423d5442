"""Host memory allocator: mmscale's processes run under tcmalloc where it can be had.

Why: XLA:CPU mallocs each execution's temporary buffer and frees it when the step ends. Above
glibc's largest mmap threshold (32 MiB, a hard cap) every step maps fresh pages and faults them in.
On the t1 model that is one 38 MiB buffer, 9.7k page faults and about 16 ms of kernel time per
20 ms step; tcmalloc keeps freed spans and hands them back, and the same jitted step takes 10.4 ms
(benchmarks/RESULTS.md). TPU VMs and most JAX training setups preload it for the same reason.

How: LD_PRELOAD only acts when a program starts, so an entry point calls `reexec()` first: when
tcmalloc is found and not loaded yet, the process re-executes itself once (same pid, argv and
stdio) with it preloaded. The preload is then dropped from os.environ, so programs mmscale starts
(apt-get, sbatch, a browser) run with the system allocator. `MMSCALE_ALLOCATOR=system` turns it off.

After a compile: `release_after_compiles()` (called by mmscale.train.compile_cache.enable, so by
every training process) returns the allocator's free pages to the OS after each XLA compilation of
at least 0.1 s, so the compile's transient memory and the first step's buffers do not add up in
the run's peak RSS.

Where from: Debian's libtcmalloc-minimal4 when installed, else the same package fetched with
`apt-get download` into the environment (`python -m mmscale.allocator install`, run by the
Makefile; no root needed). Without either, the system allocator is used and nothing else changes.

  python -m mmscale.allocator install        fetch tcmalloc if it is missing; print its path
  python -m mmscale.allocator run CMD ...    run CMD with tcmalloc preloaded (make test uses it)
"""

import glob
import os
import sys

PACKAGE = "libtcmalloc-minimal4"
LIBRARY = "libtcmalloc_minimal.so.4"
_MARK = "MMSCALE_TCMALLOC_PRELOADED"  # Set by reexec()/run: the entry of LD_PRELOAD that is ours.
_SYSTEM_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib",
                "/usr/local/lib")
# tcmalloc prints a line for every allocation above 1 GiB by default; big host arrays are normal here.
_QUIET = {"TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD": str(1 << 40)}


def cache_dir() -> str:
  """Where `install` unpacks the package: inside the Python environment, so `make clean` drops it."""
  return os.path.join(sys.prefix, "share", "mmscale", "tcmalloc")


def find() -> str | None:
  """Path of the tcmalloc shared library, or None."""
  dirs = list(_SYSTEM_DIRS) + glob.glob(os.path.join(cache_dir(), "debian", "usr", "lib", "*"))
  dirs.append(os.path.join(cache_dir(), "debian", "usr", "lib"))
  for d in dirs:
    path = os.path.join(d, LIBRARY)
    if os.path.isfile(path):
      return path
  return None


def loaded() -> bool:
  """Whether tcmalloc is mapped into this process (not merely named in LD_PRELOAD)."""
  try:
    with open("/proc/self/maps", encoding="utf-8") as f:
      return any("libtcmalloc" in line for line in f)
  except OSError:
    return False


def _disabled() -> bool:
  return os.environ.get("MMSCALE_ALLOCATOR", "tcmalloc").lower() == "system" or not sys.platform.startswith("linux")


def preload_env(lib: str, env=None) -> dict:
  """`env` (default os.environ) with `lib` added to LD_PRELOAD and marked as ours."""
  env = dict(os.environ if env is None else env)
  rest = env.get("LD_PRELOAD", "")
  env["LD_PRELOAD"] = f"{lib}:{rest}" if rest else lib
  env[_MARK] = lib
  for k, v in _QUIET.items():
    env.setdefault(k, v)
  return env


def forget_preload() -> None:
  """Drops our LD_PRELOAD entry from os.environ, so child programs start with the system allocator."""
  lib = os.environ.pop(_MARK, None)
  if lib is None:
    return
  rest = [p for p in os.environ.get("LD_PRELOAD", "").split(":") if p and p != lib]
  if rest:
    os.environ["LD_PRELOAD"] = ":".join(rest)
  else:
    os.environ.pop("LD_PRELOAD", None)


def reexec() -> None:
  """Re-executes this Python process under tcmalloc when it can be had and is not loaded yet.

  Call it first thing in an entry point, before threads start or files are opened for writing.
  Returns normally in every other case (already loaded, disabled, not found, exec refused).
  """
  if _MARK in os.environ or _disabled() or loaded():
    forget_preload()
    return
  if "pytest" in sys.modules:  # Never restart a test session that called an entry point in-process.
    return
  lib = find()
  if lib is None:
    return
  argv = [sys.executable] + list(getattr(sys, "orig_argv", [sys.executable] + sys.argv)[1:])
  try:
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, argv, preload_env(lib))
  except OSError:
    return  # Could not exec (a sandbox, an odd interpreter): carry on with the system allocator.


def release() -> str | None:
  """Returns the allocator's free pages to the OS; which call did it (None: neither available).

  tcmalloc: MallocExtension_ReleaseFreeMemory; glibc: malloc_trim(0).
  """
  import ctypes  # pylint: disable=g-import-not-at-top

  process = ctypes.CDLL(None)
  for name, args in (("MallocExtension_ReleaseFreeMemory", ()), ("malloc_trim", (0,))):
    fn = getattr(process, name, None)
    if fn is not None:
      fn(*args)
      return name
  return None


COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"  # jax.monitoring: XLA compile or load.
_releasing = []


def release_after_compiles(min_seconds: float = 0.1) -> None:
  """release() after every XLA compilation that took at least `min_seconds` (idempotent).

  Why: compiling a train step allocates ~200 MiB (t4) and frees it into the allocator's page heap
  in pieces that the step's own temp buffer, one span of tens of MiB, does not fit in; the first
  step then grows the heap and the run's peak RSS is compile + step. Returned to the OS at once,
  the step reuses the pages: the t4 run's peak fell by ~95 MiB (benchmarks/RESULTS.md). Short
  compiles (eager ops, cache loads) are skipped: a release costs a few ms.
  """
  if _releasing:
    return
  import jax  # pylint: disable=g-import-not-at-top

  def listener(event, duration, **_):
    if event == COMPILE_EVENT and duration >= min_seconds:
      release()

  jax.monitoring.register_event_duration_secs_listener(listener)
  _releasing.append(listener)


def install() -> str | None:
  """Makes tcmalloc available (Debian's package, fetched without root when missing); its path."""
  path = find()
  if path is not None or _disabled():
    return path
  from mmscale.packages import InstallError, debian  # pylint: disable=g-import-not-at-top

  try:
    debian([PACKAGE], cache_dir())
  except InstallError as e:
    print(f"mmscale: tcmalloc not installed ({e}); the system allocator will be used", file=sys.stderr)
    return None
  return find()


def main(argv: list[str]) -> int:
  if len(argv) >= 2 and argv[1] == "install":
    path = install()
    print(path or "system allocator")
    return 0
  if len(argv) >= 3 and argv[1] == "run":
    cmd = argv[2:]
    if cmd[0] == "--":
      cmd = cmd[1:]
    lib = None if _disabled() else find()
    env = preload_env(lib) if lib else dict(os.environ)
    os.execvpe(cmd[0], cmd, env)
  print("usage: python -m mmscale.allocator install | run CMD ...", file=sys.stderr)
  return 2


if __name__ == "__main__":
  sys.exit(main(sys.argv))

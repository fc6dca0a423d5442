"""SIGTERM/SIGUSR1 as a flag, from the first moment of a run to its last step.

A scheduler may signal a run at any moment: while Python imports JAX, while XLA compiles, during the
initial evaluation. The default action (die) would leave the run looking crashed, so the handler is
installed before the heavy imports (`mmscale train` and the sweep's runner call `install()` first
thing) and the trainer checks the flag at each stage and after each step: it saves what it has and
exits 143, which a scheduler requeues. Light on purpose: this module imports nothing heavy.
"""

import contextlib
import signal
import sys

SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
_state = {"requested": False, "installed": False}


def _handle(signum, frame):
  del frame
  if not _state["requested"]:
    print(f"received signal {signum}: stopping at the next safe point (checkpoint, exit 143)",
          file=sys.stderr, flush=True)
  _state["requested"] = True


def install() -> bool:
  """Catches SIGTERM/SIGUSR1 from now on; True when this call installed the handler."""
  if _state["installed"]:
    return False
  try:
    for sig in SIGNALS:
      signal.signal(sig, _handle)
  except ValueError:  # Not the main thread: signals stay with whoever owns it.
    return False
  _state["installed"] = True
  signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)  # mmscale.cli holds them until now.
  return True


def requested() -> bool:
  return _state["requested"]


@contextlib.contextmanager
def guard():
  """Catches the signals for the block; a handler installed earlier (and its flag) is kept."""
  old = {sig: signal.getsignal(sig) for sig in SIGNALS}
  fresh = install()
  if fresh:
    _state["requested"] = False  # Nobody caught a signal for us before: start clean.
  try:
    yield
  finally:
    if fresh:
      for sig, handler in old.items():
        signal.signal(sig, handler)
      _state["installed"] = False

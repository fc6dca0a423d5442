"""Atomic run claims, so that any number of workers on one root run every run exactly once.

A claim is `<run_dir>/claim.json`, created with O_CREAT|O_EXCL (atomic on local disks and NFSv3+)
and holding host, pid and a token. The holder refreshes its mtime (the heartbeat) from a thread.
A claim is stale when its heartbeat is older than `stale_after` seconds, or at once when it names a
dead process on this host. Taking over a stale claim goes through a second O_EXCL file
(`claim.takeover`), so that of several workers seeing the same stale claim exactly one replaces it.
"""

import json
import os
import socket
import threading
import time
import uuid

CLAIM = "claim.json"
TAKEOVER = "claim.takeover"
HEARTBEAT_S = 10.0
STALE_AFTER_S = 120.0


def _pid_alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return True


def _read(path: str):
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def _stale(path: str, stale_after: float) -> bool:
  try:
    age = time.time() - os.stat(path).st_mtime
  except FileNotFoundError:
    return False
  info = _read(path)
  if info and info.get("host") == socket.gethostname() and not _pid_alive(int(info.get("pid", 0))):
    return True
  # A claim that cannot be read yet may be mid-write: only its age can make it stale.
  return age > stale_after


def is_held(run_dir: str, stale_after: float = STALE_AFTER_S) -> bool:
  path = os.path.join(run_dir, CLAIM)
  return os.path.exists(path) and not _stale(path, stale_after)


def holder(run_dir: str):
  return _read(os.path.join(run_dir, CLAIM))


class Claim:
  """A held claim; heartbeats until released."""

  def __init__(self, run_dir: str, token: str, heartbeat: float):
    self.run_dir, self.token = run_dir, token
    self.path = os.path.join(run_dir, CLAIM)
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._beat, args=(heartbeat,), daemon=True)
    self._thread.start()

  def _beat(self, every: float):
    while not self._stop.wait(every):
      try:
        os.utime(self.path)
      except FileNotFoundError:
        return

  def release(self) -> None:
    self._stop.set()
    info = _read(self.path)
    if info and info.get("token") == self.token:
      try:
        os.remove(self.path)
      except FileNotFoundError:
        pass

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.release()


def _create(path: str, info: dict) -> bool:
  try:
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
  except FileExistsError:
    return False
  with os.fdopen(fd, "w") as f:
    json.dump(info, f)
    f.flush()
    os.fsync(f.fileno())
  return True


def try_claim(run_dir: str, worker: str = "", heartbeat: float = HEARTBEAT_S,
              stale_after: float = STALE_AFTER_S):
  """Returns a Claim if this process now owns the run, else None."""
  path = os.path.join(run_dir, CLAIM)
  token = uuid.uuid4().hex
  info = {"host": socket.gethostname(), "pid": os.getpid(), "token": token, "worker": worker,
          "time": time.time()}
  if _create(path, info):
    return Claim(run_dir, token, heartbeat)
  if not _stale(path, stale_after):
    return None
  lock = os.path.join(run_dir, TAKEOVER)
  if not _create(lock, info):
    # Another worker is taking over; a takeover lock left by a dead worker expires too.
    if _stale(lock, stale_after):
      try:
        os.remove(lock)
      except FileNotFoundError:
        pass
    return None
  try:
    if not _stale(path, stale_after):  # Re-check under the lock: someone may have won already.
      return None
    try:
      os.remove(path)
    except FileNotFoundError:
      pass
    if _create(path, info):
      return Claim(run_dir, token, heartbeat)
    return None
  finally:
    os.remove(lock)

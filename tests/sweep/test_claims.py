"""Claims: exclusive across racing processes, stale ones taken over exactly once."""

import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import time

import pytest

from mmscale.sweep import claims


def _race(dirs, out_q, all_done):
  won = []
  for d in dirs:
    c = claims.try_claim(d, heartbeat=60)
    if c is not None:
      won.append(d)  # Keep it held: the others must all lose.
  out_q.put(won)
  # Stay alive until every racer is through: a claim naming a dead local process is stale, and a
  # late starter would rightly take it over.
  all_done.wait(60)


# Forked children only touch the filesystem: JAX's threads (imported by other tests) are not used.
@pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")
def test_only_one_process_wins_each_claim(tmp_path):
  dirs = [str(tmp_path / f"r{i}") for i in range(30)]
  for d in dirs:
    os.makedirs(d)
  ctx = mp.get_context("fork")
  q, all_done = ctx.Queue(), ctx.Event()
  procs = [ctx.Process(target=_race, args=(dirs, q, all_done)) for _ in range(4)]
  for p in procs:
    p.start()
  results = [q.get(timeout=60) for _ in procs]
  all_done.set()
  for p in procs:
    p.join()
  won = [d for r in results for d in r]
  assert sorted(won) == sorted(dirs)  # Every run claimed, none twice.


def _write_claim(d, **info):
  path = os.path.join(d, claims.CLAIM)
  with open(path, "w") as f:
    json.dump({"host": socket.gethostname(), "pid": os.getpid(), "token": "t", **info}, f)
  return path


def test_stale_claims_are_taken_over(tmp_path):
  d = str(tmp_path)
  # Held by a live process with a fresh heartbeat: not stale.
  _write_claim(d)
  assert claims.is_held(d) and claims.try_claim(d) is None
  # A dead pid on this host is stale at once.
  dead = subprocess.Popen([sys.executable, "-c", "pass"])
  dead.wait()
  _write_claim(d, pid=dead.pid)
  assert not claims.is_held(d)
  c = claims.try_claim(d)
  assert c is not None and claims.holder(d)["pid"] == os.getpid()
  c.release()
  assert not os.path.exists(os.path.join(d, claims.CLAIM))
  # Another host's claim goes stale only when its heartbeat is old.
  path = _write_claim(d, host="elsewhere", pid=1)
  assert claims.try_claim(d, stale_after=60) is None
  old = time.time() - 120
  os.utime(path, (old, old))
  c = claims.try_claim(d, stale_after=60)
  assert c is not None and claims.holder(d)["token"] == c.token
  assert not os.path.exists(os.path.join(d, claims.TAKEOVER))
  c.release()


def test_heartbeat_keeps_a_claim_fresh(tmp_path):
  d = str(tmp_path)
  c = claims.try_claim(d, heartbeat=0.05)
  path = os.path.join(d, claims.CLAIM)
  old = time.time() - 1000
  os.utime(path, (old, old))
  time.sleep(0.3)
  assert time.time() - os.stat(path).st_mtime < 5
  c.release()
  # Releasing does not remove a claim that someone else took over meanwhile.
  c2 = claims.try_claim(d)
  c.release()
  assert claims.holder(d)["token"] == c2.token
  c2.release()

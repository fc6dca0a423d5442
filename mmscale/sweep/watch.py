"""Live progress of a sweep on the console of `mmscale sweep`, while its launcher runs.

A thread of the sweep process reads the root every `every_s` seconds, as `mmscale status` does
(nothing is sent from the workers), and prints when something changed, or after a minute without
a print:

  sweep 1m20s: 3 done · 2 running · 18 pending · 0 failed · 1 diverged · 12,400 tok/s · ETA 4m10s
    demo_dense_16_trunk-3f9a0c21d4  step 120/400  loss 3.1234  6,200 tok/s  ETA 0m45s

The sweep's ETA divides the compute left by a compute rate: the running runs' current one at first;
once a run has finished since the watcher started (and `observe_s` passed), or when the records
carry no rate, the compute done per second since the start, which counts the runs' start-up,
compilation and evaluation as well.
"""

import sys
import threading
import time

from absl import logging

from mmscale import contract
from mmscale.sweep import status as status_lib


class Watcher:

  def __init__(self, root: str, run_ids: list[str], every_s: float = 10.0, stream=None,
               observe_s: float = 30.0, quiet_s: float = 60.0):
    self.root, self.run_ids, self.every_s, self.observe_s = root, list(run_ids), every_s, observe_s
    self.quiet_s = max(quiet_s, every_s)
    self._printed = 0.0
    self.stream = stream if stream is not None else sys.stdout
    self._stop = threading.Event()
    self._thread = None
    self._start = self._done0 = self._finished0 = None
    self._last = None
    self._warned = False

  def snapshot(self, now: float | None = None) -> str:
    """The progress text at `now` (the first call sets the zero of the observed rate)."""
    now = time.time() if now is None else now
    rows = [status_lib.run_status(self.root, r) for r in self.run_ids]
    done = sum(r["own_flops"] * r["own_progress"] for r in rows)
    if self._start is None:
      self._start, self._done0 = now, done
    finished = {r["run_id"] for r in rows if r["status"] in (*contract.FINISHED, contract.FAILED)}
    if self._finished0 is None:
      self._finished0 = finished
    observed = None
    current = sum(r["flops_per_s"] or 0.0 for r in rows if r["status"] == contract.RUNNING)
    # The observed rate once it spans a whole run (its start-up and compilation included), or
    # when the records carry no rate at all.
    whole_run = bool(finished - self._finished0) and now - self._start >= self.observe_s
    if done > self._done0 and (whole_run or not current):
      observed = (done - self._done0) / (now - self._start)
    t = status_lib.totals(rows, flops_per_s=observed)
    lines = [f"sweep {status_lib.duration(now - self._start)}: {status_lib.format_totals(t)}"]
    lines += [status_lib.format_running(r) for r in rows if r["status"] == contract.RUNNING]
    return "\n".join(lines)

  def tick(self) -> None:
    """Prints the snapshot if anything but the elapsed time changed since the last one printed,
    or `quiet_s` passed without a print (compiling runs change nothing for minutes)."""
    try:
      text = self.snapshot()
    except Exception as e:  # A watcher must never stop a sweep; it says why it shows nothing.
      if not self._warned:
        logging.warning("sweep progress unavailable: %s", e)
        self._warned = True
      return
    key = text.split(":", 1)[1]
    now = time.time()
    if key != self._last or now - self._printed >= self.quiet_s:
      print(text, file=self.stream, flush=True)
      self._last, self._printed = key, now

  def _loop(self) -> None:
    while True:
      self.tick()
      if self._stop.wait(self.every_s):
        return

  def __enter__(self):
    if self.every_s > 0:
      self._thread = threading.Thread(target=self._loop, name="sweep-watch", daemon=True)
      self._thread.start()
    return self

  def __exit__(self, *exc):
    self._stop.set()
    if self._thread is not None:
      self._thread.join()

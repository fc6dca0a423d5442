"""Console progress of one run (primary process only): steps, loss, tokens/s, ETA, and each
evaluation's per-source losses as soon as they are computed.

On a terminal it is one tqdm bar, redrawn in place, with eval results printed above it. Anywhere
else (a pipe, a log file such as a sweep run's train.log) a bar's carriage-return redraws would
pile up, so it prints one plain line per `every_s` seconds and one at the last step instead: each
state appears once.
"""

import math
import sys
import time

from tqdm import tqdm


def _duration(seconds: float) -> str:
  if not math.isfinite(seconds):
    return "-"
  s = int(round(seconds))
  return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def format_eval(step: int, val: dict) -> str:
  """`eval step 20: caption 1.2345 · text 1.9012 nats/token` (+ media losses when recorded)."""
  parts = []
  for source in sorted(val):
    v = val[source]
    media = [f"{k[5:]} {v[k]:.4f}" for k in sorted(v) if k.startswith("loss_") and k != "loss_text"]
    parts.append(f"{source} {v['loss']:.4f}" + (f" ({', '.join(media)})" if media else ""))
  return f"eval step {step}: " + " · ".join(parts) + " nats/token"


class Progress:

  def __init__(self, total: int, start: int, enabled: bool = True, stream=None,
               every_s: float = 30.0):
    self.total, self.start, self.enabled = total, start, enabled
    self.stream = stream if stream is not None else sys.stderr
    self.every_s = every_s
    self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
    self.bar = None  # Created at the first update: start-up logs would break a bar drawn earlier.
    self.last_step, self.last_tokens, self.last_time = start, None, time.time()
    self.started = self.last_time
    self.printed_step, self.printed_time = None, 0.0
    self.state = None  # (step, loss, tokens/s) of the last update.
    self.first = None  # (step, time) of the first update.

  def _write(self, line: str) -> None:
    if self.bar is not None:
      self.bar.write(line, file=self.stream)  # Above the bar, which is redrawn below it.
    else:
      print(line, file=self.stream, flush=True)

  def update(self, step: int, tokens: int, loss: float) -> None:
    if not self.enabled:
      return
    now = time.time()
    rate = None
    if self.last_tokens is not None and now > self.last_time:
      rate = (tokens - self.last_tokens) / (now - self.last_time)
    self.last_tokens, self.last_time = tokens, now
    self.first = self.first or (step, now)
    self.state = (step, loss, rate)
    rate_s = f"{rate:,.0f}" if rate is not None else "-"
    if self.tty:
      postfix = f"loss={loss:.4f} tok/s={rate_s}"
      if self.bar is None:  # Its first draw shows this step, not the start with no loss yet.
        self.bar = tqdm(total=self.total, initial=step, postfix=postfix, file=self.stream,
                        unit="step", dynamic_ncols=True, mininterval=1.0)
      else:
        # The postfix first, so the redraw that update() triggers shows this step's values.
        self.bar.set_postfix_str(postfix, refresh=False)
        self.bar.update(step - self.last_step)
    elif step == self.total or now - self.printed_time >= self.every_s:
      self._print_line(step, loss, rate_s, now)
    self.last_step = step

  def _print_line(self, step, loss, rate_s, now) -> None:
    # The rate since the first logged step: the time before it is compilation, not training.
    first_step, first_time = self.first
    done = step - first_step
    eta = (now - first_time) / done * (self.total - step) if done > 0 else float("nan")
    self._write(f"step {step}/{self.total}  loss {loss:.4f}  {rate_s} tok/s  "
                f"elapsed {_duration(now - self.started)}  ETA {_duration(eta)}")
    self.printed_step, self.printed_time = step, now

  def eval(self, step: int, val: dict) -> None:
    if self.enabled:
      self._write(format_eval(step, val))

  def close(self) -> None:
    if self.bar is not None:
      self.bar.close()
    elif not self.tty and self.state is not None and self.printed_step != self.state[0]:
      step, loss, rate = self.state  # Stopped early (preempted, diverged): its last state, once.
      self._print_line(step, loss, f"{rate:,.0f}" if rate is not None else "-", time.time())

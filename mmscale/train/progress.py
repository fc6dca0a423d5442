"""A progress bar with steps, tokens/s and loss (tqdm), shown by the primary process only."""

import sys
import time

from tqdm import tqdm


class Progress:

  def __init__(self, total: int, start: int, enabled: bool = True):
    self.bar = tqdm(total=total, initial=start, disable=not enabled, file=sys.stderr,
                    unit="step", dynamic_ncols=True, mininterval=1.0)
    self.last_step, self.last_tokens, self.last_time = start, None, time.time()

  def update(self, step: int, tokens: int, loss: float) -> None:
    now = time.time()
    rate = ""
    if self.last_tokens is not None and now > self.last_time:
      rate = f"{(tokens - self.last_tokens) / (now - self.last_time):,.0f}"
    self.bar.update(step - self.last_step)
    self.bar.set_postfix_str(f"loss={loss:.4f} tok/s={rate or '-'}", refresh=False)
    self.last_step, self.last_tokens, self.last_time = step, tokens, now

  def close(self) -> None:
    self.bar.close()

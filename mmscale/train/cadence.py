"""When the training loop evaluates, saves and logs: one "is it time" test for each.

A run evaluates at `eval_points` evenly spaced steps (or every `eval_every`) and always at the
last; saves at `save_steps` (trunk points of cool-down branches), every `checkpoint_every` steps
and at the end; writes a train record every `log_every` steps and wherever it evaluates or saves,
so each eval and checkpoint has a train record at its step.
"""

import dataclasses

EVENTS = ("eval", "save", "log")


def eval_steps(train_cfg) -> list[int]:
  """Steps after which to evaluate: `eval_points` evenly spaced (or every `eval_every`), the last
  included; a cool-down branch starts after its trunk's `init_step`."""
  steps = int(train_cfg.steps)
  if train_cfg.eval_every:
    points = set(range(int(train_cfg.eval_every), steps + 1, int(train_cfg.eval_every)))
  else:
    n = int(train_cfg.eval_points)
    points = {max(1, int(round(k * steps / n))) for k in range(1, n + 1)}
  points.add(steps)
  return sorted(p for p in points if p > int(train_cfg.init_step))


@dataclasses.dataclass(frozen=True)
class Cadence:
  steps: int
  log_every: int
  checkpoint_every: int  # 0: no periodic saves.
  evals: frozenset
  saves: frozenset

  @classmethod
  def of(cls, train_cfg) -> "Cadence":
    steps = int(train_cfg.steps)
    return cls(steps=steps, log_every=int(train_cfg.log_every),
               checkpoint_every=int(train_cfg.checkpoint_every),
               evals=frozenset(eval_steps(train_cfg)),
               saves=frozenset(train_cfg.save_steps) | ({steps} if steps else frozenset()))

  def due(self, event: str, step: int) -> bool:
    """Is it time to `event` ("eval", "save" or "log") at `step` (1-based: after its update)?"""
    if event == "eval":
      return step in self.evals
    if event == "save":
      return step in self.saves or bool(self.checkpoint_every and step % self.checkpoint_every == 0)
    if event == "log":
      return (step % self.log_every == 0 or step == self.steps or self.due("eval", step)
              or self.due("save", step))
    raise ValueError(f"unknown event {event!r}: one of {EVENTS}")

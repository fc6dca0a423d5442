"""The loop's one "is it time" test: when a run evaluates, saves and writes a train record."""

import ml_collections
import pytest

from mmscale.config import train_defaults
from mmscale.train.cadence import Cadence, eval_steps


def _train(**kw) -> ml_collections.ConfigDict:
  c = train_defaults()
  c.update(kw)
  return c


@pytest.mark.parametrize("kw,want", [
    (dict(steps=100, eval_points=4), [25, 50, 75, 100]),
    (dict(steps=10, eval_points=3), [3, 7, 10]),
    (dict(steps=100, eval_every=30), [30, 60, 90, 100]),
    (dict(steps=100, eval_points=4, init_step=50), [75, 100]),  # A branch: after its trunk's.
    (dict(steps=2, eval_points=4), [1, 2]),
])
def test_eval_steps(kw, want):
  assert eval_steps(_train(**kw)) == want


def _when(cadence, event):
  return [s for s in range(1, cadence.steps + 1) if cadence.due(event, s)]


def test_due_steps_of_each_event():
  c = Cadence.of(_train(steps=20, eval_points=2, log_every=6, checkpoint_every=8,
                        save_steps=(5,)))
  assert _when(c, "eval") == [10, 20]
  assert _when(c, "save") == [5, 8, 16, 20]  # save_steps, every 8th and the last.
  # A train record at every 6th step, the last, and wherever an eval or a save is.
  assert _when(c, "log") == [5, 6, 8, 10, 12, 16, 18, 20]


def test_no_periodic_saves_by_default():
  c = Cadence.of(_train(steps=12, eval_points=1, log_every=5))
  assert _when(c, "save") == [12] and _when(c, "log") == [5, 10, 12]


def test_unknown_event():
  with pytest.raises(ValueError, match=r"unknown event 'saev': one of \('eval', 'save', 'log'\)"):
    Cadence.of(_train()).due("saev", 1)

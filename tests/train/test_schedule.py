"""The learning-rate schedule at the points that matter: warm-up end, cool-down start, last step."""

import math

import numpy as np
import pytest

from mmscale.config import train_defaults
from mmscale.train.schedule import cooldown_start, make_schedule


def _cfg(**kw):
  c = train_defaults()
  c.update(dict(steps=1000, lr=1e-3, warmup_steps=100, cooldown_fraction=0.2), **kw)
  return c


def test_cooldown_start_is_last_fraction():
  assert cooldown_start(1000, 0.2) == 800
  assert cooldown_start(10, 0.25) == 8  # round(2.5) = 2 (banker's) -> 8


@pytest.mark.parametrize("shape", ["inv_sqrt", "linear", "cosine"])
def test_wsd_values(shape):
  s = make_schedule(_cfg(cooldown_shape=shape))
  assert float(s(0)) == 0.0
  assert float(s(50)) == pytest.approx(0.5e-3)
  assert float(s(100)) == pytest.approx(1e-3)  # Warm-up end.
  assert float(s(500)) == pytest.approx(1e-3)  # Constant phase.
  assert float(s(800)) == pytest.approx(1e-3)  # Cool-down start: still at the peak.
  last = float(s(999))
  expected = {"inv_sqrt": 1e-3 * (1 - math.sqrt(199 / 200)), "linear": 1e-3 / 200,
              "cosine": 1e-3 * 0.5 * (1 + math.cos(math.pi * 199 / 200))}[shape]
  assert last == pytest.approx(expected, rel=2e-3)  # float32 arithmetic.
  assert float(s(1000)) == pytest.approx(0.0, abs=1e-12)  # Reaches zero one past the last step.


def test_inv_sqrt_below_linear_in_cooldown():
  a, b = make_schedule(_cfg(cooldown_shape="inv_sqrt")), make_schedule(_cfg(cooldown_shape="linear"))
  steps = np.arange(801, 1000)
  # 1 - sqrt(x) < 1 - x on (0, 1): the 1-sqrt cool-down drops faster at first, as in Hägele et al.
  assert all(float(a(t)) <= float(b(t)) + 1e-12 for t in steps)


def test_constant_trunk_matches_wsd_until_cooldown():
  trunk, wsd = make_schedule(_cfg(schedule="constant")), make_schedule(_cfg())
  for t in range(0, 800, 7):
    assert float(trunk(t)) == float(wsd(t))
  assert float(trunk(999)) == pytest.approx(1e-3)

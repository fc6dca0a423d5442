"""Learning-rate schedules: warm-up → constant → cool-down (Hägele et al. 2024).

The cool-down ("WSD") schedule is what makes cheap IsoFLOP grids possible: a constant-LR trunk is
identical to every WSD run of the same size up to that run's cool-down start, so one trunk serves
many token budgets, each finished by a short cool-down branch.
"""


import jax.numpy as jnp
import optax


def cooldown_start(steps: int, fraction: float) -> int:
  """First step of the cool-down: the last `fraction` of the steps cool down."""
  return steps - int(round(fraction * steps))


def _cooldown(peak: float, length: int, shape: str):
  """Decays from `peak` at its step 0 towards zero at step `length` (one past the last step)."""
  if shape == "linear":
    return optax.linear_schedule(peak, 0.0, length)
  if shape == "cosine":
    return optax.cosine_decay_schedule(peak, length)
  if shape == "inv_sqrt":
    # "1 − sqrt" of Hägele et al. 2024: stays high longer than linear, then drops to zero.
    return lambda t: peak * (1.0 - jnp.sqrt(jnp.clip(t / length, 0.0, 1.0)))
  raise ValueError(f"unknown cool-down shape {shape!r}")


def make_schedule(train_cfg) -> optax.Schedule:
  """The learning rate as a function of the global step (0-based), for config.train."""
  steps, peak, warmup = int(train_cfg.steps), float(train_cfg.lr), int(train_cfg.warmup_steps)
  warm = optax.linear_schedule(0.0, peak, max(warmup, 1)) if warmup else optax.constant_schedule(peak)
  if train_cfg.schedule == "constant":
    return optax.join_schedules([warm, optax.constant_schedule(peak)], [warmup])
  if train_cfg.schedule == "cosine":
    return optax.warmup_cosine_decay_schedule(0.0, peak, warmup, steps, end_value=0.0)
  start = max(cooldown_start(steps, float(train_cfg.cooldown_fraction)), warmup)
  cool = _cooldown(peak, max(steps - start, 1), train_cfg.cooldown_shape)
  return optax.join_schedules([warm, optax.constant_schedule(peak), cool], [warmup, start])


def schedule_value(train_cfg, step: int) -> float:
  return float(make_schedule(train_cfg)(step))




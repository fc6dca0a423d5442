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


def _inv_sqrt(peak, length):
  # "1 − sqrt" of Hägele et al. 2024: stays high longer than linear, then drops to zero.
  return lambda t: peak * (1.0 - jnp.sqrt(jnp.clip(t / length, 0.0, 1.0)))


# config.train.cooldown_shape -> (peak, length) -> a decay from `peak` at its step 0 towards zero
# at step `length` (one past the last step). Its keys are the allowed shapes.
COOLDOWNS = {
    "linear": lambda peak, length: optax.linear_schedule(peak, 0.0, length),
    "cosine": optax.cosine_decay_schedule,
    "inv_sqrt": _inv_sqrt,
}


def _constant(t, warm, peak, warmup, steps):
  return optax.join_schedules([warm, optax.constant_schedule(peak)], [warmup])


def _cosine(t, warm, peak, warmup, steps):
  return optax.warmup_cosine_decay_schedule(0.0, peak, warmup, steps, end_value=0.0)


def _wsd(t, warm, peak, warmup, steps):
  start = max(cooldown_start(steps, float(t.cooldown_fraction)), warmup)
  cool = COOLDOWNS[t.cooldown_shape](peak, max(steps - start, 1))
  return optax.join_schedules([warm, optax.constant_schedule(peak), cool], [warmup, start])


# config.train.schedule -> the schedule's builder; its keys are the allowed schedules.
SCHEDULES = {"wsd": _wsd, "constant": _constant, "cosine": _cosine}


def make_schedule(train_cfg) -> optax.Schedule:
  """The learning rate as a function of the global step (0-based), for config.train."""
  steps, peak, warmup = int(train_cfg.steps), float(train_cfg.lr), int(train_cfg.warmup_steps)
  warm = optax.linear_schedule(0.0, peak, max(warmup, 1)) if warmup else optax.constant_schedule(peak)
  return SCHEDULES[train_cfg.schedule](train_cfg, warm, peak, warmup, steps)


def schedule_value(train_cfg, step: int) -> float:
  return float(make_schedule(train_cfg)(step))




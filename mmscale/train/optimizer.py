"""AdamW with decoupled weight decay, global-norm clipping and a per-group learning-rate factor.

The learning rate itself is not part of the optimizer: the transformation ends at a unit rate (times
the group's factor) and the train step multiplies its updates by the step's rate, an input
(mmscale/train/step.py). A schedule baked into the compiled step makes every run of a sweep (each
size and budget has its own peak and cool-down) a new executable; as an input, all runs of one shape
share one entry of the compilation cache.

Late fusion trains its vision encoder at `model.encoder.lr_factor` times the decoder's rate
(Shukor et al. 2025); that is an optax.multi_transform over parameter labels that the model gives.
Weight decay skips vectors (norm scales, biases), as is standard.

The optimizer is a stage of its own config: it receives config.train (frozen, mmscale/stages.py)
and, as explicit inputs, the parameter-group labels and the encoder's rate factor, never the run
config.
"""

import jax
import optax


def _decay_mask(params):
  return jax.tree.map(lambda p: getattr(p, "ndim", 0) >= 2, params)


def _adamw(train_cfg, lr_factor: float = 1.0):
  # `lr_factor` stands where the rate stood: the step's rate multiplies the result (see above).
  return optax.adamw(lr_factor, b1=train_cfg.b1, b2=train_cfg.b2, eps=train_cfg.eps,
                     weight_decay=train_cfg.weight_decay, mask=_decay_mask)


def make_optimizer(train, param_labels=None,
                   encoder_lr_factor: float = 1.0) -> optax.GradientTransformation:
  """train: config.train. param_labels: a pytree like params with "encoder"/"decoder" labels (late
  fusion), or None. encoder_lr_factor: the "encoder" group's rate factor (model.encoder.lr_factor),
  used only with labels."""
  clip = optax.clip_by_global_norm(train.clip_norm)
  if param_labels is None:
    return optax.chain(clip, _adamw(train))
  groups = {"decoder": _adamw(train), "encoder": _adamw(train, float(encoder_lr_factor))}
  return optax.chain(clip, optax.multi_transform(groups, param_labels))

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from mmscale.models import param_groups
from mmscale.stages import build_model
from tests.models.conftest import tiny_config


def _labels(fusion):
  model = nnx.eval_shape(lambda: build_model(tiny_config(fusion=fusion), nnx.Rngs(0)))
  params = nnx.state(model, nnx.Param)
  return params, param_groups(params)


def test_late_fusion_encoders_are_labelled():
  params, labels = _labels("late")
  flat = dict(zip(map(tuple, [p for p, _ in nnx.to_flat_state(params)]),
                  jax.tree.leaves(labels)))
  assert {k for k, v in flat.items() if v == "encoder"} == {
      k for k in flat if k[0] == "encoders"}
  assert any(v == "encoder" for v in flat.values()) and any(v == "decoder" for v in flat.values())
  _, early = _labels("early")
  assert set(jax.tree.leaves(early)) == {"decoder"}  # The early patch projection is the decoder's.


def test_multi_transform_applies_the_encoder_lr_factor():
  model = build_model(tiny_config(fusion="late"), nnx.Rngs(0))
  params = nnx.state(model, nnx.Param)
  labels = param_groups(params)
  tx = optax.multi_transform({"encoder": optax.sgd(0.1 * 0.5), "decoder": optax.sgd(0.1)}, labels)
  grads = jax.tree.map(jnp.ones_like, params)
  updates, _ = tx.update(grads, tx.init(params), params)
  for (path, _), u in zip(nnx.to_flat_state(params), jax.tree.leaves(updates)):
    expected = -0.05 if path[0] == "encoders" else -0.1
    np.testing.assert_allclose(np.asarray(u), expected, rtol=1e-6)

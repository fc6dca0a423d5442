"""The data pipeline, the optimizer and the metric writers each receive only their own frozen
section (mmscale/stages.py), plus the values they need from elsewhere as explicit inputs."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from mmscale import config as config_lib
from mmscale import stages
from mmscale.data import pipeline
from mmscale.train import metrics
from mmscale.train.optimizer import make_optimizer
from tests.data.conftest import make_config


def _same_batches(a, b):
  for x, y in zip(a, b, strict=True):
    assert x.keys() == y.keys()
    for k in x:
      np.testing.assert_array_equal(x[k], y[k], err_msg=k)


def _augmented(seed):
  c = make_config(mix_by="tokens")
  c.seed = seed
  c.data.augment.random_resized_crop, c.data.augment.flip = True, 0.5  # The seed picks the crops.
  return c


def test_the_pipeline_from_the_data_section_alone_equals_the_whole_configs():
  c = _augmented(seed=3)
  data = stages.Frozen(c.data)  # No seed, no train section: those are explicit inputs.
  assert "seed" not in data and "train" not in data
  for pi, pc in ((0, 1), (1, 2)):
    whole = pipeline.make_train_iterator(c, pi, pc)
    alone = pipeline.train_iterator(data, 3, pi, pc)
    _same_batches([next(whole) for _ in range(3)], [next(alone) for _ in range(3)])
    assert whole.realised() == alone.realised()
  # The seed is the input that moves the order (and the crops), not a field the pipeline reads.
  other = pipeline.train_iterator(data, 4)
  assert not np.array_equal(next(other)["tokens"], next(pipeline.make_train_iterator(c))["tokens"])
  # Evaluation: the number of batches (train.eval_batches) is an input too.
  _same_batches(pipeline.make_eval_batches(c, "caption"), pipeline.eval_batches(data, "caption", 2))
  assert len(pipeline.eval_batches(data, "caption", 1)) == 1
  assert pipeline.stream_names(data) == ["caption", "interleaved", "text"]


def test_the_data_section_is_frozen():
  data = stages.split(_with_sections(make_config())).data
  with pytest.raises(AttributeError, match="immutable"):
    data.batch_size = 8


def _with_sections(c):
  whole = config_lib.base_config()
  whole.data = c.data
  whole.data.tokenizer = "byte"
  return whole


def _grads_and_params():
  params = {"decoder": {"w": jnp.ones((3, 4)), "b": jnp.zeros(4)},
            "encoders": {"w": jnp.full((4, 2), 0.5)}}
  grads = jax.tree.map(lambda p: jnp.linspace(-1.0, 2.0, p.size).reshape(p.shape), params)
  labels = {"decoder": {"w": "decoder", "b": "decoder"}, "encoders": {"w": "encoder"}}
  return params, grads, labels


def _updates(tx, params, grads, steps=3):
  """The updates of `steps` steps at fixed params (so only the optimizer's state moves)."""
  state = tx.init(params)
  out = []
  for _ in range(steps):
    u, state = tx.update(grads, state, params)
    out.append(u)
  return out


def test_the_optimizer_takes_config_train_and_explicit_group_inputs():
  train = stages.Frozen(config_lib.train_defaults())  # config.train alone: no model section.
  params, grads, labels = _grads_and_params()
  plain = _updates(make_optimizer(train), params, grads)
  grouped = _updates(make_optimizer(train, labels, 1.0), params, grads)
  halved = _updates(make_optimizer(train, labels, 0.5), params, grads)
  for p, g, h in zip(plain, grouped, halved, strict=True):
    # Factor 1 is the ungrouped optimizer; a factor scales the encoder's updates by exactly that
    # (the unit-rate AdamW update is linear in its rate) and leaves the decoder's alone.
    for a, b in zip(jax.tree.leaves(p), jax.tree.leaves(g), strict=True):
      np.testing.assert_allclose(a, b, rtol=1e-6)  # Eager ops in another order: an ulp apart.
    np.testing.assert_array_equal(h["decoder"]["w"], g["decoder"]["w"])
    np.testing.assert_allclose(h["encoders"]["w"], 0.5 * g["encoders"]["w"], rtol=1e-6)
  # Weight decay skips vectors: a zero gradient moves a matrix (decay) but not a bias.
  zero = jax.tree.map(jnp.zeros_like, grads)
  [u] = _updates(make_optimizer(train), params, zero, steps=1)
  assert float(jnp.abs(u["decoder"]["w"]).sum()) > 0 and float(jnp.abs(u["decoder"]["b"]).sum()) == 0


def test_param_labels_come_from_the_model_section():
  late = stages.Frozen({"fusion": "late"})
  params = {"encoders": {"image": {"w": 1}}, "embed": {"w": 2}}
  assert stages.param_labels(late, params) == {"encoders": {"image": {"w": "encoder"}},
                                                "embed": {"w": "decoder"}}
  assert stages.param_labels(stages.Frozen({"fusion": "early"}), params) is None


def test_metric_writers_take_config_run_alone(tmp_path):
  run = stages.Frozen(config_lib.base_config().run)
  w = metrics.MetricWriter(run, str(tmp_path), "r", 0)
  w.write({"kind": "train", "step": 1, "tokens": 10, "loss": 2.0, "lr": 0.1, "grad_norm": 1.0})
  w.close()
  assert any(n.startswith("events.out.tfevents") for n in tmp_path.iterdir() for n in [n.name])
  off = ml_collections.ConfigDict(config_lib.base_config().run.to_dict())
  off.tensorboard = False
  w = metrics.MetricWriter(stages.Frozen(off), str(tmp_path / "off"), "r", 0)
  w.close()
  assert not (tmp_path / "off").exists()

"""Each stage receives only its own config: frozen sections cut from the run config by
mmscale.stages, plus the few values it takes from other stages as explicit inputs."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from mmscale import config as config_lib
from mmscale import flops, parallel, stages
from mmscale.errors import ConfigError
from mmscale.models import NMM, moe
from mmscale.models.config import ModelInputs
from mmscale.models.loss import loss_fn
from tests.models.conftest import make_batch, tiny_config


def _params(model):
  return jax.tree.leaves(nnx.state(model, nnx.Param))


def test_model_inputs_are_the_data_and_train_values_it_needs():
  c = tiny_config()
  c.seed, c.train.dtype = 7, "bfloat16"
  inputs = stages.model_inputs(c)
  assert inputs == ModelInputs(vocab_size=64, seq_len=16, patch_dim=12, patches_per_image=4,
                               dtype="bfloat16", seed=7)
  c.model.vocab_size = 0  # Then the vocabulary comes from the tokenizer, or is passed.
  assert stages.model_inputs(c, vocab_size=300).vocab_size == 300


@pytest.mark.parametrize("image_loss", ["none", "vq"])
def test_the_model_builds_without_the_data_and_train_sections(image_loss):
  c = tiny_config(fusion="late", ffn="moe", image_loss=image_loss)
  c.model.moe.update(experts=4, top_k=2)
  c.seed = 3
  batch = make_batch()
  sample = [batch, make_batch(seed=1)]
  whole = stages.build_model(c, nnx.Rngs(0), sample_batches=sample)
  inputs = stages.model_inputs(c)
  model_only = tiny_config(fusion="late", ffn="moe", image_loss=image_loss)
  model_only.model.moe.update(experts=4, top_k=2)
  del model_only["data"], model_only["train"], model_only["seed"]
  assert set(model_only.keys()) == {"model"}
  alone = NMM(stages.Frozen(model_only.model), inputs, nnx.Rngs(0), sample_batches=sample)
  # Same parameters (and VQ codebooks: the seed is an input) as the model of the whole config.
  for a, b in zip(_params(whole), _params(alone), strict=True):
    np.testing.assert_array_equal(a, b)
  if image_loss == "vq":
    np.testing.assert_array_equal(whole.codebooks["image"].codes[...],
                                  alone.codebooks["image"].codes[...])
  np.testing.assert_array_equal(whole(batch)["logits"], alone(batch)["logits"])
  # The loss reads only config.model too.
  loss_whole, _ = loss_fn(whole, batch, c.model)
  loss_alone, _ = loss_fn(alone, batch, stages.Frozen(model_only.model))
  assert float(loss_whole) == float(loss_alone)


def test_the_compute_dtype_is_an_input():
  c = tiny_config()
  model, inputs = stages.model_stage(c)
  batch = make_batch()
  f32 = NMM(model, inputs, nnx.Rngs(0))
  bf16 = NMM(model, dataclasses.replace(inputs, dtype="bfloat16"), nnx.Rngs(0))
  assert bf16.embed(batch["tokens"]).dtype == jnp.bfloat16
  assert f32.embed(batch["tokens"]).dtype == jnp.float32
  for a, b in zip(_params(f32), _params(bf16), strict=True):  # Params stay float32.
    assert a.dtype == b.dtype == jnp.float32


def test_moe_layers_take_the_model_section_and_a_dtype():
  c = tiny_config(ffn="moe")
  layer = moe.MoEFeedForward(stages.Frozen(c.model), nnx.Rngs(0), dtype="bfloat16")
  x = jnp.ones((2, 4, c.model.width))
  y, _ = layer(x, jnp.zeros((2, 4), jnp.int32), jnp.ones((2, 4), bool))
  assert y.dtype == jnp.bfloat16 and layer.router.dtype == jnp.float32


def test_stage_configs_are_frozen():
  c = config_lib.base_config()
  c.data.tokenizer = "byte"
  s = stages.split(config_lib.resolve(c))
  assert s.model.width == c.model.width and s.train.lr == c.train.lr
  assert s.model_inputs.vocab_size == config_lib.vocab_size(c)
  with pytest.raises(AttributeError, match="immutable"):
    s.model.width = 1
  with pytest.raises(AttributeError, match="immutable"):
    s.model.moe.experts = 2  # Nested sections too.
  with pytest.raises(AttributeError, match="immutable"):
    s.train.lr = 1.0
  with pytest.raises(dataclasses.FrozenInstanceError):
    s.model_inputs.seq_len = 1
  hash(s.model)  # Frozen sections are hashable (usable as static arguments).


def test_the_mesh_stage_takes_batch_size_and_experts_explicitly():
  mesh_cfg = parallel.defaults()
  mesh_cfg.expert = 2
  mesh = parallel.make_mesh(mesh_cfg, batch_size=8)
  assert dict(mesh.shape) == {"data": 4, "fsdp": 1, "expert": 2}
  parallel.validate(mesh_cfg, batch_size=8, experts=4)
  with pytest.raises(ConfigError, match=r"^config.mesh.expert=2: must divide "
                     r"config.model.moe.experts=3$"):
    parallel.validate(mesh_cfg, batch_size=8, experts=3)
  c = tiny_config(ffn="moe")
  c.model.moe.experts = 6
  assert stages.experts(c) == 6 and stages.batch_size(c) == 2
  assert stages.experts(tiny_config(ffn="dense")) is None  # The count only binds MoE models.


def test_flops_count_from_the_model_stage_matches_the_built_model():
  c = tiny_config(fusion="late", image_loss="next_patch")
  model = nnx.eval_shape(lambda: stages.build_model(c, nnx.Rngs(0)))
  n = sum(int(np.prod(x.shape)) for x in _params(model))
  assert flops.param_counts(c)["params"] == n

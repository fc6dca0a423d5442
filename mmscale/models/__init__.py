"""Model families of mmscale: early/late fusion native multimodal decoders (Flax NNX)."""

import jax
from flax import nnx

from mmscale.models.nmm import NMM


def build_model(config, rngs: nnx.Rngs, sample_batches=None, vocab_size: int = 0) -> NMM:
  """The model of config.model (+ config.data sizes). sample_batches: training batches for VQ;
  vocab_size: the tokenizer's, used when model.vocab_size is 0 (mmscale.config.vocab_size)."""
  return NMM(config, rngs, sample_batches=sample_batches, vocab_size=vocab_size)


def param_groups(model_state):
  """Optimizer labels: "encoder" for late-fusion encoder parameters (model.encoders), "decoder"
  for the rest. model_state: any pytree from the model (nnx.State of params, or its pure dict);
  the result has the same structure with a label string at each leaf, for optax.multi_transform.
  """
  def label(path, _):
    first = path[0] if path else None
    name = getattr(first, "key", getattr(first, "name", None))
    return "encoder" if name == "encoders" else "decoder"

  return jax.tree_util.tree_map_with_path(label, model_state)

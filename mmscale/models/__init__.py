"""Model families of mmscale: early/late fusion native multimodal decoders (Flax NNX)."""

import jax

# NMM(model, inputs, rngs): built from config.model and ModelInputs only; from a whole run config
# with mmscale.stages.build_model.
from mmscale.models.fusion import encoder_attrs
from mmscale.models.nmm import NMM


def param_groups(model_state):
  """Optimizer labels: "encoder" for the parameters of a fusion's encoder towers (model.encoders
  for late fusion; mmscale/models/fusion.py says which attributes hold encoders), "decoder" for
  the rest. model_state: any pytree from the model (nnx.State of params, or its pure dict); the
  result has the same structure with a label string at each leaf, for optax.multi_transform.
  """
  encoders = encoder_attrs()

  def label(path, _):
    first = path[0] if path else None
    name = getattr(first, "key", getattr(first, "name", None))
    return "encoder" if name in encoders else "decoder"

  return jax.tree_util.tree_map_with_path(label, model_state)

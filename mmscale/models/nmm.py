"""The native multimodal model (Shukor et al. 2025): early or late fusion into one decoder.

Early fusion: text tokens through an embedding table, each media modality's patches through its
own linear projection, all into one sequence for a single decoder. Late fusion: each media
modality's patches go through its own ViT-style encoder (bidirectional within each media block),
then a linear connector into the decoder. The decoder is causal over text and bidirectional within
a media block (attention.decoder_mask); its output head is untied from the embedding.

The model receives only its own config section (frozen, mmscale/stages.py) and ModelInputs: the
vocabulary size, the data's seq_len and patch sizes, the compute dtype and the seed.

Media heads (config.model.image_loss, applied to every media modality): next_patch regresses the
next normalised patch; vq predicts the next patch's k-means code (vq.Codebook) with its own head.

Late-fusion encoders run over the whole [B, L] sequence and are masked to media positions: shapes
stay static; the wasted text-position compute is not counted in FLOPs (flops.py counts D_v).
"""

import jax.numpy as jnp
from flax import nnx

from mmscale.models import attention, blocks, layers, vq
from mmscale.models import config as model_config
from mmscale.models.fusion import FUSIONS


def modality_id(name: str) -> int:
  return model_config.MODALITIES.index(name)


class NMM(nnx.Module):
  """model: config.model (frozen); inputs: model_config.ModelInputs; sample_batches: training
  batches to fit the VQ codebooks on (image_loss="vq")."""

  def __init__(self, model, inputs: model_config.ModelInputs, rngs: nnx.Rngs,
               sample_batches=None):
    self.dims = d = model_config.dims(model, inputs)
    m, dec = model, d.decoder
    self.attention_impl = m.attention_impl
    dtype = jnp.dtype(inputs.dtype)
    scale = float(m.init_scale)
    kw = dict(rngs=rngs, scale=scale, dtype=dtype)
    self.embed = layers.Embed(d.vocab_size, dec.width, **kw)
    # Early fusion: one linear patch projection per media modality (decoder params), as
    # self.media_in; late fusion: one encoder per media modality (the "encoder" param group,
    # vision_params), as self.encoders (mmscale/models/fusion.py).
    fusion = FUSIONS[d.fusion]
    setattr(self, fusion.attr, nnx.Dict({mod: fusion.build(m, d, rngs=rngs, dtype=dtype)
                                         for mod in d.modalities}))
    group = int(m.moe.every) if d.ffn == "moe" else 1
    self.decoder = blocks.Stack(m, dec, d.ffn, rngs=rngs, dtype=dtype, group=group,
                                remat=m.remat)
    self.final_norm = layers.RMSNorm(dec.width, eps=m.norm_eps, dtype=dtype)
    self.head = layers.Dense((dec.width,), (d.vocab_size,), ("embed", "vocab"), **kw)
    self.media_head = nnx.Dict()
    self.codebooks = nnx.Dict()
    for mod in d.modalities:
      if d.image_loss == "next_patch":
        self.media_head[mod] = layers.Dense((dec.width,), (d.patch_dim,), ("embed", "patch"), **kw)
      elif d.image_loss == "vq":
        self.media_head[mod] = layers.Dense((dec.width,), (d.codebook_size,), ("embed", "vocab"),
                                            **kw)
        self.codebooks[mod] = vq.Codebook.fit(m, d, inputs.seed, mod, sample_batches, rngs=rngs)

  def __call__(self, batch, *, train: bool = False):
    """batch: dict of [B, L] arrays (mmscale/data/packing.py). Returns the ModelOutput dict."""
    del train  # No dropout; MoE layers see the same routing in train and eval.
    d = self.dims
    tokens, modality = batch["tokens"], batch["modality"]
    seg, pos, blk = batch["segment_ids"], batch["positions"], batch["block_ids"]
    x = self.embed(tokens)
    fusion = FUSIONS[d.fusion]
    media = getattr(self, fusion.attr)
    for mod in d.modalities:
      here = (modality == modality_id(mod))[..., None]
      h = fusion.apply(media[mod], batch["patches"], pos, seg, jnp.where(here[..., 0], blk, 0))
      x = jnp.where(here, h.astype(x.dtype), x)
    mask = attention.make_mask(seg, blk, "decoder", self.attention_impl)
    x, aux = self.decoder(x, pos, mask, modality, seg > 0)
    h = self.final_norm(x)
    out = {"logits": self.head(h).astype(jnp.float32), "aux": {}}
    if d.image_loss != "none":
      out["image_pred"] = {mod: self.media_head[mod](h).astype(jnp.float32)
                           for mod in d.modalities}
    if aux:
      out["aux"] = {"moe_lb_loss": aux["lb_loss"], "moe_z_loss": aux["z_loss"],
                    "dropped": aux["dropped"], "routing": {"counts": aux["counts"]}}
    return out

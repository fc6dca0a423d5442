"""Parameter counts and training FLOPs, analytic from the config (no model is built).

Counting convention (stated in every record through `flops_formula`):
  params               every trainable parameter (nnx.Param leaves), encoders included. The VQ
                       codebook is fitted state, not a parameter.
  embedding_params     the vocabulary-sized matrices: text embedding table (V*d) and output head
                       (d*V). Media input projections and media heads are compute-bearing linear
                       maps and count as non-embedding.
  non_embedding_params params - embedding_params.
  vision_params        late fusion: every encoder's parameters (patch projection, blocks, final
                       norm, connector into the decoder); 0 for early fusion.
  active_params        parameters used per token: MoE layers count top_k experts (+ shared expert,
                       + router); modality FFNs count one FFN. Equals params for dense models.
FLOPs per token (forward + backward = 3 x forward, 2 FLOPs per multiply-add):
  "6N"       6 * N with N = active decoder params, embeddings included (Kaplan et al. 2020;
             Hoffmann et al. 2022);
  "6N+attn"  6 * N + 12 * L * T * d_attn, the attention score and value products over a context of
             T = seq_len (Hoffmann et al. 2022 appendix F; no causal halving),
             d_attn = heads*head_dim.
Training FLOPs: early fusion C = 6 * N * D (D = all non-pad tokens); late fusion
C = 6 * (N_v * D_v + N * D) (Shukor et al. 2025) with N the decoder's active params, N_v the
modality's encoder params and D_v its tokens (summed over media modalities).
Which of the two a fusion kind is, its entry in mmscale/models/fusion.py FUSIONS says
(`Fusion.encoder`), so a new kind is counted without an edit here.
"""

from mmscale import stages
from mmscale.models import config as model_config
from mmscale.models import fusion as fusion_lib


def tower_block_params(t, ffn_params: int) -> int:
  attn = 4 * t.width * t.attn_dim + (2 * t.head_dim if t.qk_norm else 0)
  return attn + 2 * t.width + ffn_params  # + the two RMSNorm scales


def swiglu_params(width: int, hidden: int) -> int:
  return 3 * width * hidden


def moe_layer_params(model, t) -> tuple[int, int]:
  """(total, active) params of one MoE FFN (mmscale/models/moe.py: SwiGLU experts of
  moe.expert_hidden (0 = the decoder's ffn_hidden), a bias-free router [d, E], an optional shared
  expert of the experts' shape). model: config.model."""
  moe = model.moe
  expert = swiglu_params(t.width, int(moe.get("expert_hidden", 0)) or t.ffn_hidden)
  shared = expert if moe.shared_expert else 0
  router = t.width * int(moe.experts)
  return (int(moe.experts) * expert + router + shared,
          int(moe.top_k) * expert + router + shared)


def _ffn_params(model, dims) -> tuple[int, int]:
  """(total, active) FFN params summed over the decoder's layers."""
  t = dims.decoder
  dense = swiglu_params(t.width, t.ffn_hidden)
  if dims.ffn == "dense":
    return t.depth * dense, t.depth * dense
  if dims.ffn == "modality":  # One FFN per modality the model sees (text + its media).
    n = 1 + len(dims.modalities)
    return t.depth * n * dense, t.depth * dense
  every = int(model.moe.every)
  n_moe = t.depth // every
  total, active = moe_layer_params(model, t)
  n_dense = t.depth - n_moe
  return n_dense * dense + n_moe * total, n_dense * dense + n_moe * active


def encoder_params(dims) -> int:
  e = dims.encoder
  blocks = e.depth * tower_block_params(e, swiglu_params(e.width, e.ffn_hidden))
  return dims.patch_dim * e.width + blocks + e.width + e.width * dims.decoder.width


def _model(config):
  """(config.model, Dims): the model stage's section and dimensions, once per public call. Only
  read here, so not frozen (a FrozenConfigDict copy costs ~2 ms, and a sweep's plan counts every
  cell)."""
  return config.model, model_config.dims(config.model, stages.model_inputs(config))


def param_counts(config) -> dict:
  return _param_counts(*_model(config))


def _param_counts(model, dims) -> dict:
  t, v, n_media = dims.decoder, dims.vocab_size, len(dims.modalities)
  ffn_total, ffn_active = _ffn_params(model, dims)
  blocks_wo_ffn = t.depth * tower_block_params(t, 0)
  embedding = 2 * v * t.width
  heads = 0
  if dims.image_loss == "next_patch":
    heads = n_media * t.width * dims.patch_dim
  elif dims.image_loss == "vq":
    heads = n_media * t.width * dims.codebook_size
  # Media enter through an encoder tower per modality (vision params) or a linear projection
  # into the decoder (decoder params).
  encoded = fusion_lib.has_encoder(dims.fusion)
  vision = n_media * encoder_params(dims) if encoded else 0
  media_in = 0 if encoded else n_media * dims.patch_dim * t.width
  decoder = embedding + media_in + blocks_wo_ffn + t.width + heads  # + the final norm
  total = decoder + ffn_total + vision
  return {
      "params": total,
      "embedding_params": embedding,
      "non_embedding_params": total - embedding,
      "active_params": decoder + ffn_active + vision,
      "vision_params": vision,
      "decoder_params": decoder + ffn_total,
      "decoder_active_params": decoder + ffn_active,
  }


def flops_per_token(config) -> dict:
  """Training FLOPs per decoder token (see module docstring); encoders are counted apart, per
  media token ("6N_v")."""
  return _flops_per_token(*_model(config))


def _flops_per_token(model, dims) -> dict:
  n = _param_counts(model, dims)["decoder_active_params"]
  t = dims.decoder
  attn = 12 * t.depth * dims.seq_len * t.attn_dim
  out = {"6N": 6.0 * n, "6N+attn": 6.0 * n + attn, "N": float(n)}
  if fusion_lib.has_encoder(dims.fusion):
    e = dims.encoder
    n_v = encoder_params(dims)
    out["6N_v"] = 6.0 * n_v  # Per media token, per modality's encoder.
    out["6N_v+attn"] = 6.0 * n_v + 12 * e.depth * dims.patches_per_image * e.attn_dim
  return out


def training_flops(config, tokens, tokens_by_modality=None, convention="6N") -> tuple[float, str]:
  """-> (FLOPs, formula) for `tokens` decoder tokens, of which tokens_by_modality[m] are media m."""
  if convention not in ("6N", "6N+attn"):
    raise ValueError(f"unknown FLOPs convention {convention!r}")
  model, dims = _model(config)
  per = _flops_per_token(model, dims)
  flops = per[convention] * float(tokens)
  if not fusion_lib.has_encoder(dims.fusion):
    return flops, "C=6ND" if convention == "6N" else "C=(6N+12LTd_attn)D"
  tokens_by_modality = tokens_by_modality or {}
  d_v = sum(float(tokens_by_modality.get(m, 0)) for m in dims.modalities)
  flops += per["6N_v" if convention == "6N" else "6N_v+attn"] * d_v
  return flops, ("C=6(N_v*D_v+N*D)" if convention == "6N"
                 else "C=(6N_v+12L_vT_vd_v)D_v+(6N+12LTd_attn)D")

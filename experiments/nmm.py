"""Native multimodal model families (Shukor et al. 2025): fusion x FFN x image objective x size.

Command:   mmscale train --config=experiments/nmm.py:fusion=early,ffn=moe,size=t1 --workdir=/tmp/nmm
           args (comma-separated key=value, all optional):
             fusion=early|late   ffn=dense|moe|modality   image_loss=none|next_patch|vq
             size=t1..t4 (CPU) | p1..p6 (the paper's)     experts=8  top_k=1  routing=agnostic|aware
             vocab=N (0 = the data tokenizer's)           steps=N
             audio=W (add the procedural audio stream with mixture weight W, and an audio input)
Hardware:  t1..t4: 2 CPU cores, a few minutes for the default 200 steps (t1 about a minute).
           p1..p6: accelerators (depth 24, 14x14 patches of 224 px images, 1k context).
Expected:  text loss on the procedural streams falls well below its initial ~5.6 nats/token;
           records carry params / active_params (< params for MoE) / vision_params (> 0 for late).

Paper sizes (depth 24; head_dim near 64-100, even; heads do not change the parameter count):
  early fusion widths 800, 1088, 1632, 2208, 2624, 3232 (275M ... 3.35B in the paper);
  late fusion decoder widths 768, 1024, 1536, 2048, 2464, 3072 with vision-encoder widths
  384, 512, 768, 1024, 1184, 1536, encoder depth 24 (289M ... 3.7B).
benchmarks/param_table.py prints our counts beside the paper's.
"""

from mmscale.config import base_config
from mmscale.data.config import stream
from mmscale.errors import UserError

# name: (width, heads) per fusion; late also (encoder width, encoder heads). Depth in DEPTH.
TINY = {
    "t1": dict(early=(64, 4), late=(64, 4, 32, 2), depth=2, enc_depth=2),
    "t2": dict(early=(96, 4), late=(96, 4, 48, 2), depth=3, enc_depth=2),
    "t3": dict(early=(128, 4), late=(128, 4, 64, 4), depth=4, enc_depth=2),
    "t4": dict(early=(192, 6), late=(160, 5, 96, 4), depth=4, enc_depth=3),
}
PAPER = {
    "p1": dict(early=(800, 10), late=(768, 12, 384, 6)),
    "p2": dict(early=(1088, 17), late=(1024, 16, 512, 8)),
    "p3": dict(early=(1632, 17), late=(1536, 24, 768, 12)),
    "p4": dict(early=(2208, 24), late=(2048, 32, 1024, 16)),
    "p5": dict(early=(2624, 41), late=(2464, 28, 1184, 16)),
    "p6": dict(early=(3232, 16), late=(3072, 48, 1536, 24)),
}
# The paper's reported total parameter counts (early, late), for benchmarks/param_table.py.
PAPER_PARAMS = {
    "p1": (275e6, 289e6), "p2": (464e6, 494e6), "p3": (932e6, 1.0e9),
    "p4": (1.63e9, 1.75e9), "p5": (2.28e9, 2.43e9), "p6": (3.35e9, 3.7e9),
}
SIZES = tuple(TINY) + tuple(PAPER)
ARGS = ("fusion", "ffn", "image_loss", "size", "experts", "top_k", "routing", "vocab", "steps",
        "audio")


def parse_arg(arg: str) -> dict:
  out = {}
  for part in filter(None, (arg or "").split(",")):
    key, sep, value = part.partition("=")
    if not sep or key not in ARGS:
      raise UserError(f"experiments/nmm.py: bad argument {part!r} "
                      f"(allowed keys: {', '.join(ARGS)})")
    out[key] = value
  return out


def _int_arg(key, value) -> int:
  try:
    return int(value)
  except ValueError:
    raise UserError(f"experiments/nmm.py: {key}={value!r} must be an integer") from None


def apply_size(c, size: str):
  """Sets the model (and, for paper sizes, the data geometry) of a named size."""
  fusion = c.model.fusion
  if size in TINY:
    s = TINY[size]
    c.model.depth, c.model.encoder.depth = s["depth"], s["enc_depth"]
    c.model.vq_codebook_size = 64  # A k-means fit needs >= 4 x codes patches in the sample.
  elif size in PAPER:
    s = PAPER[size]
    c.model.depth = c.model.encoder.depth = 24
    c.data.image_size, c.data.patch_size = 224, 14  # 16 x 16 = 256 patches of 14 x 14 x 3.
    c.data.patch_dim = 14 * 14 * 3
    c.data.seq_len = 1024
    c.model.vq_codebook_size = 1024
  else:
    raise UserError(f"experiments/nmm.py: unknown size {size!r} (allowed: {', '.join(SIZES)})")
  if fusion == "early":
    c.model.width, c.model.heads = s["early"]
  else:
    c.model.width, c.model.heads, c.model.encoder.width, c.model.encoder.heads = s["late"]
  return c


def get_config(arg: str = ""):
  a = parse_arg(arg)
  c = base_config()
  c.model.fusion = a.get("fusion", "early")
  c.model.ffn = a.get("ffn", "dense")
  c.model.image_loss = a.get("image_loss", "none")
  for key in ("experts", "top_k"):
    if key in a:
      c.model.moe[key] = _int_arg(key, a[key])
  if "routing" in a:
    c.model.moe.routing = a["routing"]
  if "vocab" in a:
    c.model.vocab_size = _int_arg("vocab", a["vocab"])
  if "audio" in a:
    try:
      weight = float(a["audio"])
    except ValueError:
      raise UserError(f"experiments/nmm.py: audio={a['audio']!r} must be a number") from None
    c.model.modalities = ("image", "audio")
    c.data.streams.audio = stream("procedural", "audio", weight)
  size = a.get("size", "t1")
  apply_size(c, size)
  c.data.batch_size = 8
  c.data.seq_len = c.data.seq_len if size in PAPER else 128
  c.train.steps = _int_arg("steps", a.get("steps", "200"))
  c.train.warmup_steps = min(20, c.train.steps // 5)
  c.train.lr = 3e-3 if size in TINY else 1e-3
  c.train.eval_points = 2
  c.train.eval_batches = 2
  c.run.name = f"nmm-{c.model.fusion}-{c.model.ffn}-{c.model.image_loss}-{size}"
  c.run.tags = dict(size=size, fusion=c.model.fusion, ffn=c.model.ffn,
                    image_loss=c.model.image_loss)
  return c

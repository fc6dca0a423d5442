"""The demo study: early-fusion dense vs early-fusion MoE (8 experts, top-1) on real data, on CPU.

Command:   make demo     (= mmscale demo: data prepare, sweep, collect, fit, report, headline)
           mmscale sweep --config=experiments/demo.py --root=demo_out/sweep --dry-run   (the plan)
Hardware:  2 CPU cores, no accelerator.
Runtime:   about 9-10 minutes with 2 workers (sweep ~7 min, fit with bootstrap ~2 min).
Expected:  32 runs done; dense has its IsoFLOP minimum inside the sizes at every budget, the
           frontier L ∝ C^c fits with R² ≥ 0.95 (c ≈ -0.11); at this scale MoE does not yet beat
           dense at equal active parameters (README "The demo" has a full printout).

Data: the real default mixture from `mmscale data prepare` (45-45-10 image-caption / interleaved /
text: Fashion-MNIST + Tux Paint stamps, the GIMP manual, the Brown corpus), BPE tokens, 16-px
images in 4×4 patches. Grid: 3 log-spaced budgets × 4 widths at fixed depth (Shukor et al.'s
shape rule), crossed with the FFN (dense | moe); one constant-LR trunk per size and architecture,
one cool-down branch per budget (Hägele et al. 2024). The MoE has the dense model's width and
expert hidden size, so both have the same active parameters and FLOPs per token; C = 6ND with N
the active parameters, embeddings included.
"""

import os

from mmscale.config import base_config
from mmscale.data.config import corpora_streams

WIDTHS = {"w12": 12, "w16": 16, "w24": 24, "w32": 32}
DATA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "demo_out", "data")


def get_config(arg: str = ""):
  del arg
  c = base_config()
  c.run.name = "demo"
  c.data.streams = corpora_streams()
  del c.data.streams["asterisk"]  # Audio is not part of this study's mixture (weight 0 there).
  c.data.data_dir = DATA_DIR
  c.data.tokenizer = "byte"
  c.data.seq_len = 128
  c.data.batch_size = 16
  c.model.depth = 2
  c.model.heads = 2
  c.model.ffn_multiple = 16
  c.model.moe.experts = 8
  c.model.moe.top_k = 1
  c.train.warmup_steps = 10
  c.train.eval_points = 2
  c.train.eval_batches = 4
  c.train.log_every = 25
  c.train.checkpoint_every = 100
  return c


def get_grid(arg: str = ""):
  del arg
  return {
      "name": "demo",
      "budget_range": (1e11, 4e11, 3),
      "sizes": {name: {"model": {"width": w}} for name, w in WIDTHS.items()},
      "axes": {"ffn": {"dense": {}, "moe": {"model": {"ffn": "moe"}}}},
      "lr_rule": lambda n: 3e-3 * (1e5 / n) ** 0.5,
      "flops": "6N",
      "min_steps": 30,
      "cooldown": True,
      "flops_per_second": 5e9,
  }

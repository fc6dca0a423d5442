"""The demo study: the seed papers' four questions at CPU scale, on real data.

Command:   make demo     (= mmscale demo: data prepare, sweep, collect, fit, report, headline)
           mmscale sweep --config=experiments/demo.py --root=demo_out/sweep --dry-run   (the plan)
           experiments/demo.py:quick is the same study reduced (2 budgets x 3 sizes, independent
           runs) for tests/test_demo.py.
Hardware:  2 CPU cores, no accelerator.
Runtime:   see README "The demo" and benchmarks/RESULTS.md "Demo" (per stage, CPU-seconds).

Questions (mmscale/report/headline.py answers each with a 95 % bootstrap interval and a verdict):
  1. MoE vs dense at equal active parameters (Shukor et al. 2025 §4): axis arch=early_moe vs
     early_dense; the MoE (8 experts, top-1, dropless) has the dense model's width and expert
     hidden size, so active parameters and FLOPs per token are equal.
  2. early vs late fusion at equal compute (Shukor et al. 2025 §3): arch=late_dense adds a
     one-layer ViT encoder of half the decoder's width; the grid counts its FLOPs as the records
     do, C = 6(N_v*D_v + N*D), so a late cell trains fewer tokens at the same budget.
  3. per-modality IsoFLOP (Tong et al. 2026): the image objective is on (model.image_loss=vq, a
     64-code k-means codebook, so image losses are code lengths in bits like text's) and the
     mixture is image-heavy, so each budget has a valley in the text loss and one in the image loss.
  4. bits per raw byte across modalities (compression-normalised scaling): every loss is recorded
     per modality in bits per raw byte.

Data: the real corpora of `mmscale data prepare` mixed by tokens: Fashion-MNIST captions 45 %,
Tux Paint stamps 15 %, the GIMP manual 25 %, the Brown corpus 15 %; 28-px images (Fashion-MNIST's
own size) in 4x4 patches (49 per image), byte-level text.

Grid: 4 log-spaced budgets (5e10 ... 4e11 FLOPs) x 6 widths (8 ... 48) at depth 2 x 3
architectures, in a band of 3 ... 700 training tokens per active parameter around the valleys
(grid.tokens_per_param drops w48 at the two smallest budgets and w8 at the largest): 63 cells, 5-6
sizes per budget; one constant-LR trunk per (size, architecture) and a cool-down branch per budget
(Hägele et al. 2024): 81 runs, 7.7e12 FLOPs (35 % less than independent runs). N counts every
parameter (embeddings included; active ones for MoE).

Pilots (losses are deterministic, so these hold on any machine):
  - image share, `mmscale data stats --config=experiments/demo.py --sequences 1000`: the previous
    demo's 45-45-10 mixture by examples (16-px images) gave 2.7 % image positions (issue 20): a
    Brown or GIMP document fills whole 128-token sequences with bytes; by examples with 60 %
    Fashion-MNIST still 2.97 %; by tokens with 28-px images: 41.7 % image but only 88.7 % of
    the 128-position sequences filled, and the grid counts early fusion's FLOPs per position, so
    early-fusion runs trained 10 % under budget while late fusion (whose share is measured) hit it;
    with 256 positions (this config): 34.8 % image, 65.2 % text, 96.5 % filled.
  - learning rate: lr = 9e-3 * (1e5 / N)^0.5 with N the active parameters (MoE at its dense twin's
    rate), from the pilot `mmscale sweep --config=experiments/demo.py:pilot` (the previous rule
    3e-3 * (1e5 / N)^0.5 times 1/3, 1, 3, 9 at 1e11 FLOPs; early_dense and early_moe at w8, w24,
    w48; 2026-11-30). Pooled validation loss, text / image nats per target:
        early_dense w8   1/3: 2.551/1.497   1: 2.450/1.242   3: 2.412/0.511   9: 2.427/1.088
        early_dense w24  1/3: 2.580/1.730   1: 2.443/1.135   3: 2.351/0.570   9: 2.394/0.622
        early_dense w48  1/3: 2.807/2.171   1: 2.546/1.687   3: 2.435/1.430   9: 2.466/1.535
        early_moe   w8   1/3: 2.448/1.621   1: 2.371/1.248   3: 2.248/0.470
        early_moe   w24  1/3: 2.543/1.828   1: 2.407/1.181   3: 2.357/1.273   9: 2.459/1.487
        early_moe   w48  1/3: 2.767/2.200   1: 2.509/1.769   3: 2.444/1.777   9: 2.526/1.831
    3x the old rule has the lowest text loss at every size (9x is worse at all five where it ran),
    and the image loss gains most from it; so the rule is 3x the old one, its N-exponent kept (one
    multiplier serves w8 to w48). Not piloted: the exponent itself, and late fusion (its
    decoder's rate is the dense one's; its encoder trains at model.encoder.lr_factor).
  - sizes: the quick variant's runs (experiments/demo.py:quick, 2026-11-30) had every
    architecture's lowest text loss at its smallest width, w8 (7.2k parameters), at both 5e9 and
    1e10 FLOPs (early_dense text loss w8/w12/w16 at 1e10: 2.766/2.836/2.951 nats). With
    N_opt ∝ C^0.5 that puts N_opt near 16k at 5e10 and near 45k at 4e11, at the top of the
    widths 8 ... 32 first planned; so the widths are 8/16/24/32/48 (7k ... 86k dense parameters),
    which also drops w12's 2,300-step trunks (30.8k trained steps instead of 39.8k). The headline
    prints, per architecture, at how many budgets the minimum is at an interior size.
  - w12 and the band: that grid (w8/16/24/32/48, every cell) bracketed early_moe's text minimum at
    only 2 of 4 budgets: at 5e10 and 1e11 w8 and w16 were within 0.013 nats and pooling put the
    minimum at w8 (early_moe text loss w8/w16: 2.203/2.190 and 2.034/2.026 averaged over sources).
    A valley that flat between w8 and w16 has its bottom between them, so w12 went in; it costs
    2,300-2,500 trunk steps per architecture, paid for by the band: w8's trunk to 4e11 (1,270
    tokens/param, the sweep's most expensive and least informative cell) and w48's cells below 2e11
    (1-2 tokens/param) are dropped, 32.8k trained steps instead of 30.7k. With w12 every
    architecture's minimum is interior at 4/4 budgets (`mmscale demo` on the grid, 2026-11-30).
"""

import os

from mmscale.config import base_config
from mmscale.data.config import corpora_streams

WIDTHS = {"w8": 8, "w12": 12, "w16": 16, "w24": 24, "w32": 32, "w48": 48}
TOKENS_PER_PARAM = (3, 700)  # Per active parameter (see "sizes" in the docstring).
QUICK_WIDTHS = {"w8": 8, "w12": 12, "w16": 16}
ARCHS = {
    "early_dense": {},
    "early_moe": {"model": {"ffn": "moe"}},
    # Encoder: one block at half the decoder's width (set per size in get_grid).
    "late_dense": {"model": {"fusion": "late"}},
}
MIXTURE = {"fashion_mnist": 0.45, "tuxpaint": 0.15, "gimp": 0.25, "brown": 0.15}  # By tokens.
DATA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "demo_out", "data")


def get_config(arg: str = ""):
  del arg
  c = base_config()
  c.run.name = "demo"
  c.data.streams = corpora_streams()
  del c.data.streams["asterisk"]  # Audio is not part of this study.
  for name, weight in MIXTURE.items():
    c.data.streams[name].weight = weight
  c.data.modalities = ("text", "image")
  c.data.data_dir = DATA_DIR
  c.data.mix_by = "tokens"  # By examples, a Brown document weighs as much as a 49-patch image.
  c.data.image_size = 28  # Fashion-MNIST's own resolution: 7 x 7 = 49 patches of 4 x 4 x 3.
  c.data.tokenizer = "byte"
  # 256 positions pack three 49-patch images where 128 fit one: 96.5 % of positions are filled
  # against 88.7 %, and early fusion's C = 6ND counts every position, padding included.
  c.data.seq_len = 256
  c.data.batch_size = 8
  c.model.depth = 2
  # One head of the full width: a second doubles the 256 x 256 score maps (22-23 % of a w8-w32 step's CPU).
  c.model.heads = 1
  c.model.ffn_multiple = 16
  c.model.remat = "none"  # Activations of these models are kilobytes: recomputing them only costs time.
  c.model.image_loss = "vq"
  c.model.vq_codebook_size = 64
  c.model.encoder.depth = 1
  c.model.encoder.heads = 1
  c.model.moe.experts = 8
  c.model.moe.top_k = 1
  c.train.warmup_steps = 10
  c.train.eval_points = 1
  c.train.eval_batches = 4
  c.train.log_every = 25
  c.train.checkpoint_every = 0
  return c


def _size(width: int) -> dict:
  return {"model": {"width": width, "encoder": {"width": max(4, width // 2)}}}


def lr_rule(n: float) -> float:
  """The demo's learning rate for N active parameters (pilot in the module docstring)."""
  return 9e-3 * (1e5 / n) ** 0.5


def _pilot_rule(n: float) -> float:  # The rule the pilot scaled: the previous demo's.
  return 3e-3 * (1e5 / n) ** 0.5


PILOT_MULTIPLIERS = {"lo": 1 / 3, "mid": 1.0, "hi": 3.0, "max": 9.0}


def _pilot_grid():
  """The learning-rate pilot: lr_rule x {1/3, 1, 3, 9} at one budget, small/middle/large widths,
  dense and MoE (MoE at the dense model's rate: equal active parameters, equal rate)."""
  from mmscale import config as config_lib  # pylint: disable=g-import-not-at-top
  from mmscale import flops  # pylint: disable=g-import-not-at-top
  sizes = {}
  for name in ("w8", "w24", "w48"):
    over = _size(WIDTHS[name])
    c = get_config()
    c.model.width, c.model.encoder.width = over["model"]["width"], over["model"]["encoder"]["width"]
    n = flops.param_counts(config_lib.resolve(c))["params"]
    for tag, mult in PILOT_MULTIPLIERS.items():
      sizes[f"{name}_lr{tag}"] = {**over, "train": {"lr": _pilot_rule(n) * mult}}
  return {"name": "demo_pilot", "budgets": (1e11,), "sizes": sizes,
          "axes": {"arch": {k: ARCHS[k] for k in ("early_dense", "early_moe")}},
          "flops": "6N", "min_steps": 20, "cooldown": False, "flops_per_second": 5e9}


def get_grid(arg: str = ""):
  if arg == "pilot":
    return _pilot_grid()
  quick = arg == "quick"
  widths = QUICK_WIDTHS if quick else WIDTHS
  return {
      "name": "demo_quick" if quick else "demo",
      "budget_range": (5e9, 1e10, 2) if quick else (5e10, 4e11, 4),
      "sizes": {name: _size(w) for name, w in widths.items()},
      "axes": {"arch": ARCHS},
      "lr_rule": lr_rule,
      "params_key": "active_params",  # MoE trains at its dense twin's rate (equal active parameters).
      "flops": "6N",
      "min_steps": 20,
      "cooldown": not quick,
      # The IsoFLOP band: sizes far off the optimum at a budget are dropped (a w8 trunk to 4e11 would
      # be a quarter of the sweep's CPU for a point 1,270 tokens/param from the valley).
      **({} if quick else {"tokens_per_param": TOKENS_PER_PARAM}),
      "flops_per_second": 5e9,
  }

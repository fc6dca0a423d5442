"""Mixed-modal scaling (Aghajanyan et al. 2023) end to end from mmscale's own runs.

Command:   mmscale data prepare --out demo_out/data --corpora=brown,fashion_mnist   (make demo does)
           mmscale sweep --config=experiments/mixed_modal.py --root=runs/mixed_modal --workers=2
           mmscale collect --root=runs/mixed_modal --out=runs/mixed_modal.csv
           mmscale fit --records=runs/mixed_modal.csv --law=mixed_modal --json=mixed_modal.json
           experiments/mixed_modal.py:quick is the same study reduced (3 sizes x 2 budgets x 4
           mixtures = 24 runs) for tests/data/test_mixed_modal_study.py.
Hardware:  2 CPU cores, no accelerator.
Runtime:   quick (24 runs, 1.1e11 FLOPs): 3.3 CPU-minutes, about 8 CPU-s per run, most of it
           process start and compilation (2026-11-30: 12m43s wall with 2 workers on 2 cores shared
           at load 8-17); `mmscale fit` 0.6 CPU-minutes. Full grid (60 runs, 1.41e12 FLOPs): not
           run yet; by the same per-run cost plus 13x the compute, an estimated 15 CPU-minutes.

Data: two uni-modal streams of the prepared corpora, mixed by tokens: "text" = the Brown corpus,
"image" = the Fashion-MNIST images without their captions (a corpus stream with fields="image"
keeps only the image parts). Their markers (BOS, begin/end of image, EOS) are text positions with
no raw bytes, so `mmscale fit` tells the image-only runs by bytes_text = 0.

Grid: the `mix` axis trains text-only runs (text=100), image-only runs (image=100) and bimodal runs
at image shares 25, 50 and 75 % of the tokens, at 4 widths x 3 budgets. Every run is evaluated on
both validation sources, so `mmscale fit --law=mixed_modal` takes each modality's loss on its own
source: L_text from the text-only runs, L_image from the image-only runs, and for the bimodal runs
the mean of the two, which the interaction law
  L(N, D_t, D_i) = [L_t(N, D_t) + L_i(N, D_i)]/2 - C + A/N^alpha + B/(D_t + D_i)^beta
describes (C > 0: synergy). The image objective is next_patch, whose targets are the same in every
run (vq fits its codebook on each run's own batches, so a text-only run would have none).
Text loss is in nats per byte token, image loss in nats per patch (a Gaussian density: a
differential code length). The law is fitted on those as they are; mixing units only shifts the
bimodal mean, which C and the per-modality laws absorb.
"""

import os

from mmscale.config import base_config
from mmscale.data.config import stream

# The corpora `make demo` prepares (the demo's data folder), so one prepare serves both studies.
DATA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "demo_out", "data")

WIDTHS = {"w8": 8, "w16": 16, "w24": 24, "w32": 32}
QUICK_WIDTHS = {"w8": 8, "w12": 12, "w16": 16}
MIXES = {  # Token shares (data.mixture with data.mix_by="tokens"); unnamed streams get 0.
    "text": "text=100",
    "image": "image=100",
    "img25": "text=75,image=25",
    "img50": "text=50,image=50",
    "img75": "text=25,image=75",
}
QUICK_MIXES = ("text", "image", "img25", "img75")


def get_config(arg: str = ""):
  c = base_config()
  c.run.name = "mixed_modal"
  c.data.streams = {
      "text": stream("corpus", "brown", 0.5),
      "image": stream("corpus", "fashion_mnist", 0.5, fields="image"),
  }
  c.data.modalities = ("text", "image")
  c.data.data_dir = DATA_DIR
  c.data.mix_by = "tokens"
  c.data.tokenizer = "byte"
  c.data.image_size = 28  # Fashion-MNIST's own size: 7 x 7 = 49 patches of 4 x 4 x 3.
  c.data.seq_len = 256  # Four 53-position images per row.
  c.data.batch_size = 8
  c.model.depth = 2
  c.model.heads = 2
  c.model.ffn_multiple = 16
  c.model.remat = "none"
  c.model.image_loss = "next_patch"
  c.train.warmup_steps = 5
  c.train.eval_points = 1
  c.train.eval_batches = 2
  c.train.log_every = 25
  c.train.checkpoint_every = 0
  c.run.tensorboard = arg != "quick"  # The test's runs: seconds each, the writer's start-up shows.
  return c


def get_grid(arg: str = ""):
  quick = arg == "quick"
  widths = QUICK_WIDTHS if quick else WIDTHS
  mixes = {k: v for k, v in MIXES.items() if not quick or k in QUICK_MIXES}
  return {
      "name": "mixed_modal_quick" if quick else "mixed_modal",
      "budgets": (3e9, 6e9) if quick else (1e10, 2e10, 4e10),
      "sizes": {name: {"model": {"width": w}} for name, w in widths.items()},
      "axes": {"mix": {k: {"data": {"mixture": v}} for k, v in mixes.items()}},
      "lr_rule": lambda n: 3e-3 * (1e5 / n) ** 0.5,
      "flops": "6N",
      "min_steps": 10,
      "flops_per_second": 5e9,
  }

"""A tiny IsoFLOP study: 3 budgets x 4 sizes as cool-down branches of 4 constant-LR trunks.

Command:   mmscale sweep --config=experiments/tiny_isoflop.py --root=/tmp/tiny_iso --workers=2
           mmscale collect --root=/tmp/tiny_iso --out=/tmp/tiny_iso.csv
           (--dry-run prints the plan: run ids, N, D, C, est. time, FLOPs saved by branching;
            experiments/tiny_isoflop.py:independent runs every cell from scratch instead)
Hardware:  2 CPU cores, no accelerator.
Runtime:   about 6 minutes with 2 workers (16 runs: 4 trunks + 12 branches; each run pays ~15 s
           of start-up and compilation).
Expected:  every run "done"; per budget the final validation loss is U-shaped in model size
           only roughly at this scale; the table has one row per run x eval point x stream.

The model is experiments/tiny.py's early-fusion model at width 16..48, depth 2; budgets are
log-spaced and C = 6ND (N = all parameters, embeddings included). The learning rate shrinks with
width (a muP-like 1/width rule) so that every size trains stably at the same schedule.
"""

from mmscale.config import base_config

WIDTHS = {"w16": 16, "w24": 24, "w32": 32, "w48": 48}


def get_config(arg: str = ""):
  del arg
  c = base_config()
  c.run.name = "tiny_iso"
  c.model.depth = 2
  c.model.heads = 2
  c.model.ffn_multiple = 16
  c.data.seq_len = 128
  c.data.batch_size = 8
  c.train.warmup_steps = 5
  c.train.eval_points = 2
  c.train.eval_batches = 2
  c.train.log_every = 10
  c.train.checkpoint_every = 25
  return c


def get_grid(arg: str = ""):
  return {
      "name": "tiny_iso",
      "budget_range": (2e10, 8e10, 3),
      "sizes": {name: {"model": {"width": w}} for name, w in WIDTHS.items()},
      "lr_rule": lambda n: 3e-3 * (2e4 / n) ** 0.5,
      "flops": "6N",
      "min_steps": 15,
      "cooldown": arg != "independent",
      "flops_per_second": 6e8,  # Measured: 16 runs in 5.3 min with 2 workers on 2 cores.
  }

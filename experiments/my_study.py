"""The README's "Define a study" example: an IsoFLOP grid of 3 budgets x 4 widths, on CPU.

Command:   mmscale sweep --config=experiments/my_study.py --root=runs/my_study --workers=2
Hardware:  2 CPU cores, no accelerator.
Runtime:   about 3 minutes with 2 workers (4 constant-LR trunks + 12 cool-down branches; measured
           3 min 50 s of CPU for the whole sweep).
Expected:  16 runs done, all 12 cells kept; at every budget the lowest final loss is at an inner
           width (`mmscale fit` finds each minimum bracketed).
"""

from mmscale.config import base_config


def get_config(arg=""):
  c = base_config()
  c.run.name = "my_study"                             # runs are named my_study_<axes>_<size>_...
  c.model.depth, c.model.heads, c.model.ffn_multiple = 2, 2, 16
  c.data.seq_len, c.data.batch_size = 128, 8          # procedural data: nothing to download
  c.train.warmup_steps, c.train.eval_points = 5, 2
  return c


def get_grid(arg=""):
  return {
      "budgets": (1e10, 2e10, 4e10),                      # FLOPs (or budget_range=(lo, hi, num))
      "sizes": {f"w{w}": {"model.width": w} for w in (8, 12, 16, 24)},   # width at fixed depth
      # "axes": {"ffn": {"dense": {}, "moe": {"model.ffn": "moe"}}},   # crossed with the grid
      "lr_rule": lambda params: 3e-3 * (2e4 / params) ** 0.5,
      "flops": "6N",                                      # C = 6ND, or an exact per-token count
      "min_steps": 20, "tokens_per_param": (1, 1000),     # infeasible cells are dropped with a note
      "cooldown": True,                                   # one constant-LR trunk per size + branches
      "flops_per_second": 5e8,                            # for --dry-run's time estimate
  }

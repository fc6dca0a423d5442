"""A minimal study for tests with the real trainer: 1 size, 2 budgets as cool-down branches of
one constant-LR trunk (3 runs, ~40 steps each, seconds per run after compilation)."""

from mmscale.config import base_config


def get_config(arg=""):
  c = base_config()
  c.run.name = "real"
  c.model.width = 16
  c.model.depth = 1
  c.model.heads = 2
  c.model.ffn_multiple = 16
  c.data.seq_len = 128
  c.data.batch_size = 8
  c.train.warmup_steps = 3
  c.train.eval_points = 2
  c.train.eval_batches = 1
  c.train.log_every = 5
  c.train.checkpoint_every = 10
  return c


def get_grid(arg=""):
  return {"name": "real", "budgets": (1.5e9, 3e9), "sizes": {"w16": {}}, "cooldown": True,
          "min_steps": 10}

"""A small study for the sweep tests: 2 sizes x 3 budgets (arg "cooldown": trunks + branches;
"infeasible": min_steps no cell meets; "empty": no sizes; "axes": a mixture axis crossed; "two": 2 runs;
"three": a third size)."""

from mmscale.config import base_config


def get_config(arg=""):
  c = base_config()
  c.run.name = "fake"
  c.model.vocab_size = 264  # The byte tokenizer's vocabulary: smaller is refused.
  c.model.depth = 1
  c.data.batch_size = 1
  c.data.seq_len = 128
  c.train.warmup_steps = 2
  c.train.eval_points = 3
  c.train.checkpoint_every = 4
  return c


def get_grid(arg=""):
  g = {"name": "fake", "budgets": (1.5e8, 3e8, 6e8), "min_steps": 5, "cooldown": "cooldown" in arg,
       "lr_rule": lambda n: 0.5 * (1e4 / n) ** 0.5}
  # Both override spellings: nested and dotted.
  g["sizes"] = {"s16": {"model": {"width": 16, "heads": 2}},
                "s32": {"model.width": 32, "model.heads": 2}}
  if "axes" in arg:
    g["axes"] = {"mix": {"text": {"data.streams.text.weight": 1.0}, "base": {}}}
  if "three" in arg:  # Three sizes: 9 runs per axis value, enough to fit with one left out.
    g["sizes"]["s24"] = {"model.width": 24, "model.heads": 2}
  if "two" in arg:  # 2 runs: one size, two budgets.
    g["sizes"] = {"s16": g["sizes"]["s16"]}
    g["budgets"] = (3e8, 6e8)
  if "infeasible" in arg:
    g["min_steps"] = 10**9
  if "empty" in arg:
    g["sizes"] = {}
  return g

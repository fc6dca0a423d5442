"""A tiny early-fusion native multimodal model that trains on a laptop CPU.

Command:   mmscale train --config=experiments/tiny.py --workdir=/tmp/run1
           (variants: experiments/tiny.py:steps=50, --config.model.width=64, ...)
Hardware:  2 CPU cores, no accelerator.
Runtime:   about 2 minutes (compile included).
Expected:  validation text loss on every procedural stream falls from ~5.6 nats/token
           (uniform over the byte vocabulary) to well below 2 nats/token; records.jsonl holds
           4 eval records, summary.json says "done".

The data is the built-in procedural mixture (45-45-10 caption / interleaved / text): images of
coloured shapes with captions describing them, so text loss on captions can only fall far if the
model reads the image patches.
"""

from mmscale.config import base_config


def get_config(arg: str = ""):
  c = base_config()
  c.run.name = "tiny"
  c.model.width = 128
  c.model.depth = 4
  c.model.heads = 4
  c.data.seq_len = 256
  c.data.batch_size = 16
  c.train.steps = 300
  c.train.warmup_steps = 30
  c.train.lr = 3e-3
  c.train.eval_points = 4
  c.train.eval_batches = 4
  for part in filter(None, arg.split(",")):
    key, _, value = part.partition("=")
    if key != "steps":
      raise ValueError(f"experiments/tiny.py: unknown argument {key!r} (allowed: steps=N)")
    c.train.steps = int(value)
  return c

"""The train loop's records: one per log step and per boundary (eval, save, end), counts that add up.

The loop reads a log step's metrics back only after the next step is queued (so the device never
waits for the record); these check that the deferral loses, duplicates and reorders nothing.
"""

import json
import os

import pytest

from experiments import nmm
from mmscale.train import loop


@pytest.mark.slow
def test_records_at_log_steps_and_boundaries_with_consistent_counts(tmp_path):
  c = nmm.get_config("size=t1,steps=11")
  c.train.warmup_steps, c.train.log_every, c.train.eval_points, c.train.eval_batches = 1, 3, 2, 1
  c.train.checkpoint_every = 4
  summary = loop.train(c, str(tmp_path))
  with open(os.path.join(tmp_path, "records.jsonl")) as f:
    rows = [json.loads(l) for l in f]
  train = [r for r in rows if r["kind"] == "train"]
  evals = {r["step"]: r for r in rows if r["kind"] == "eval"}
  # Log steps 3, 6, 9; eval steps 6 (of 11, rounded) and 11; saves at 4, 8 and the end.
  assert [r["step"] for r in train] == [3, 4, 6, 8, 9, 11]
  assert sorted(evals) == [6, 11]
  assert [r["kind"] for r in rows] == ["init_eval", "train", "train", "train", "eval", "train",
                                       "train", "train", "eval"]
  per_step = 8 * 128  # t1: 8 rows of 128 positions; padding is not counted.
  assert 0 < train[0]["tokens"] <= 3 * per_step
  for a, b in zip(train, train[1:]):
    assert 0 < b["tokens"] - a["tokens"] <= (b["step"] - a["step"]) * per_step
  for step, e in evals.items():
    assert e["tokens"] == next(r["tokens"] for r in train if r["step"] == step)
    assert sum(e["tokens_by_modality"].values()) == e["tokens"]
  assert summary["tokens"] == train[-1]["tokens"]
  times = [r["wall_time"] for r in train]
  assert times == sorted(times)

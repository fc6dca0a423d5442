"""Each model family trains a few steps from experiments/nmm.py and records the right accounting."""

import json
import os

import pytest

from experiments import nmm
from mmscale import flops
from mmscale.train import loop


@pytest.mark.slow
@pytest.mark.parametrize("arg", [
    "fusion=early,ffn=dense,image_loss=none",
    "fusion=late,ffn=moe,image_loss=vq,experts=4,top_k=1",
    "fusion=early,ffn=modality,image_loss=next_patch",
])
def test_family_trains_and_records_accounting(arg, tmp_path):
  c = nmm.get_config(arg + ",size=t1,steps=2")
  c.train.warmup_steps, c.train.eval_points, c.train.eval_batches = 1, 1, 1
  summary = loop.train(c, str(tmp_path))
  assert summary["status"] == "done"
  with open(os.path.join(tmp_path, "records.jsonl")) as f:
    evals = [r for r in map(json.loads, f) if r["kind"] == "eval"]
  r = evals[-1]
  counts = flops.param_counts(c)
  for key in ("params", "active_params", "vision_params", "embedding_params"):
    assert r[key] == counts[key]
  assert (r["vision_params"] > 0) == ("late" in arg)
  assert (r["active_params"] < r["params"]) == ("dense" not in arg)
  expected, formula = flops.training_flops(c, r["tokens"], r["tokens_by_modality"])
  assert r["flops"] == pytest.approx(expected) and r["flops_formula"] == formula
  val = r["val"]["caption"]
  if "image_loss=none" in arg:
    assert "loss_image" not in val or val["loss_image"] == 0
  else:
    assert val["loss_image"] > 0 and val["bpb_image"] > 0

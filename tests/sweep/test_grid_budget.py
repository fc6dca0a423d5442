"""The grid counts FLOPs as the records do: every run lands within 1 % of its budget.

The records' FLOPs come from the tokens the train step counts (non-pad positions per modality)
through mmscale.flops.training_flops; here the same counts are taken from the run's own batches.
"""

import ml_collections
import numpy as np
import pytest

from mmscale import config as config_lib
from mmscale import flops
from mmscale.data import pipeline
from mmscale.data.modalities import MODALITIES
from mmscale.sweep import study as study_lib

from sweep_helpers import HERE

STUDY = f"{HERE}/budget_study.py"
KINDS = ["fusion=early,ffn=dense", "fusion=early,ffn=moe", "fusion=early,ffn=modality",
         "fusion=late,ffn=dense", "fusion=late,ffn=moe", "fusion=late,ffn=modality"]


def _recorded_flops(spec) -> tuple[float, float]:
  """(FLOPs the records would report at the end of the run, the decoder-only part)."""
  config = ml_collections.ConfigDict(spec.config)
  config.data.modalities = tuple(config.data.modalities)
  config.model.modalities = tuple(config.model.modalities)
  config.data.prefetch = 0
  it = pipeline.make_train_iterator(config)
  tokens, by_modality = 0, {m: 0 for m in MODALITIES}
  for _ in range(spec.steps):
    b = next(it)
    real = np.asarray(b["segment_ids"]) > 0
    tokens += int(real.sum())
    for i, m in enumerate(MODALITIES):
      by_modality[m] += int((real & (np.asarray(b["modality"]) == i)).sum())
  total, _ = flops.training_flops(config, tokens, by_modality)
  return total, flops.flops_per_token(config)["6N"] * tokens


@pytest.mark.parametrize("kind", KINDS)
def test_every_run_within_one_percent_of_its_budget(kind):
  module = study_lib.load_module(STUDY)
  study = study_lib.build(STUDY, kind, module.get_config(kind))
  (spec,) = study.specs
  assert spec.steps >= 100  # Whole steps: the rounding alone stays under 1 %.
  recorded, decoder_only = _recorded_flops(spec)
  assert recorded == pytest.approx(1.5e11, rel=0.01), (kind, recorded)
  assert spec.flops == pytest.approx(recorded, rel=0.01)
  if "late" in kind:  # Counting the decoder alone (the old grid) misses the encoders' share.
    assert recorded / decoder_only > 1.01


def test_moe_tokens_per_param_bounds_use_active_params():
  from mmscale.sweep import grid as grid_lib
  from mmscale.sweep import grid_config
  module = study_lib.load_module(STUDY)
  config = module.get_config("ffn=moe")
  params = flops.param_counts(config)
  assert params["active_params"] < params["params"] / 3
  tpp = 1.5e11 / 6 / params["active_params"] ** 2  # About the cell's tokens per active param.
  g = grid_config.make_grid({"budgets": (1.5e11,), "sizes": {"t1": {}},
                          "tokens_per_param": (tpp / 1.5, tpp * 1.5)})
  cells, notes = grid_lib.expand(config, g, study_lib.default_stats)
  assert len(cells) == 1 and not notes  # Total params would put it at a third of this: dropped.

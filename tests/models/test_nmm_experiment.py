import jax
import numpy as np
import pytest
from flax import nnx

from experiments import nmm
from mmscale import config as config_lib
from mmscale import flops
from mmscale.errors import UserError
from mmscale.stages import build_model


@pytest.mark.parametrize("fusion", ["early", "late"])
@pytest.mark.parametrize("ffn", ["dense", "moe", "modality"])
@pytest.mark.parametrize("image_loss", ["none", "next_patch", "vq"])
def test_every_family_validates(fusion, ffn, image_loss):
  c = nmm.get_config(f"fusion={fusion},ffn={ffn},image_loss={image_loss},size=t1,experts=4")
  config_lib.validate(c)
  counts = flops.param_counts(c)
  assert (counts["vision_params"] > 0) == (fusion == "late")
  assert (counts["active_params"] < counts["params"]) == (ffn in ("moe", "modality"))
  assert c.run.tags.ffn == ffn


@pytest.mark.parametrize("arg,match", [
    ("fusion=early,colour=red", "bad argument 'colour=red'"),
    ("size=huge", "unknown size 'huge'"),
    ("experts=many", "experts='many' must be an integer"),
])
def test_bad_arguments_are_user_errors(arg, match):
  with pytest.raises(UserError, match=match):
    nmm.get_config(arg)


@pytest.mark.parametrize("fusion,col", [("early", 0), ("late", 1)])
def test_paper_sizes_match_the_paper(fusion, col):
  """nnx.eval_shape of each paper size: the real leaves equal the analytic count, and with an
  untied 50k vocabulary the totals are within 3% of the paper's (tests/models/PAPER_SIZES.md)."""
  for size, paper in nmm.PAPER_PARAMS.items():
    c = nmm.get_config(f"fusion={fusion},size={size},vocab=50000")
    config_lib.validate(c)
    model = nnx.eval_shape(lambda: build_model(c, nnx.Rngs(0)))
    real = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
    counts = flops.param_counts(c)
    assert real == counts["params"]
    assert abs(counts["params"] / paper[col] - 1) < 0.03, (size, counts["params"], paper[col])
    assert c.model.depth == 24 and c.data.seq_len == 1024 and c.data.patch_size == 14


def test_audio_stream_gets_its_own_input():
  c = nmm.get_config("audio=0.1,fusion=late")
  config_lib.validate(c)
  assert c.model.modalities == ("image", "audio") and c.data.streams.audio.weight == 0.1
  counts = flops.param_counts(c)
  one = flops.param_counts(nmm.get_config("fusion=late"))
  assert counts["vision_params"] == 2 * one["vision_params"]  # One encoder per media modality.

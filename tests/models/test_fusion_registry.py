"""A fusion kind is one entry of mmscale/models/fusion.py FUSIONS: the model, its parameter and
FLOPs counts and the optimizer's parameter groups all ask the entry, never the kind's name."""

import os

import jax
import numpy as np
import pytest
from flax import nnx

from mmscale import flops
from mmscale.models import fusion, param_groups
from mmscale.stages import build_model
from helpers import name_compares, name_compares_in  # pylint: disable=g-import-not-at-top  (tests/helpers.py)
from tests.models.conftest import tiny_config

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def new_kinds(monkeypatch):
  """Two kinds no module names: an encoder kind whose towers live under another attribute, and a
  projection kind; each is only a registry entry."""
  monkeypatch.setitem(fusion.FUSIONS, "towers", fusion.FUSIONS["late"]._replace(attr="towers"))
  monkeypatch.setitem(fusion.FUSIONS, "project", fusion.FUSIONS["early"]._replace(attr="proj"))


def _leaves(c):
  params = nnx.state(nnx.eval_shape(lambda: build_model(c, nnx.Rngs(0))), nnx.Param)
  return params, {path: int(np.prod(v.shape)) for path, v in nnx.to_flat_state(params)}


@pytest.mark.parametrize("new,like", [("towers", "late"), ("project", "early")])
@pytest.mark.parametrize("image_loss", ["none", "vq"])
def test_a_new_entry_is_counted_as_the_kind_it_copies(new_kinds, new, like, image_loss):
  c_new = tiny_config(fusion=new, image_loss=image_loss, modalities=("image", "audio"))
  c_like = tiny_config(fusion=like, image_loss=image_loss, modalities=("image", "audio"))
  assert flops.param_counts(c_new) == flops.param_counts(c_like)
  assert flops.flops_per_token(c_new) == flops.flops_per_token(c_like)
  d = {"text": 600, "image": 300, "audio": 100}
  assert flops.training_flops(c_new, 1000, d) == flops.training_flops(c_like, 1000, d)
  # And the count is the real model's: the new kind's modules live under its own attribute.
  params, sizes = _leaves(c_new)
  attr = fusion.FUSIONS[new].attr
  assert sum(sizes.values()) == flops.param_counts(c_new)["params"]
  under = sum(n for path, n in sizes.items() if path[0] == attr)
  assert under > 0
  if fusion.FUSIONS[new].encoder:  # Its towers are the vision params and the "encoder" group.
    assert flops.param_counts(c_new)["vision_params"] == under
    labels = dict(zip(sizes, jax.tree.leaves(param_groups(params))))
    assert {p for p, lab in labels.items() if lab == "encoder"} == {p for p in sizes if p[0] == attr}
  else:
    assert flops.param_counts(c_new)["vision_params"] == 0
    assert set(jax.tree.leaves(param_groups(params))) == {"decoder"}


def test_the_shipped_kinds_counts_by_hand():
  # Pinned values (d=32, L=2, V=64, patch_dim 12, encoder d=16, L=2): a change in how an entry is
  # counted shows here, whatever the kind is called.
  early, late = (flops.param_counts(tiny_config(fusion=f)) for f in ("early", "late"))
  assert (early["params"], early["vision_params"]) == (37_440, 0)
  assert late["params"] - late["vision_params"] == early["params"] - 12 * 32
  enc_block = 4 * 16 * 16 + 2 * 8 + 2 * 16 + 3 * 16 * 64
  assert late["vision_params"] == 12 * 16 + 2 * enc_block + 16 + 16 * 32



def fusion_name_compares(source: str) -> list[int]:
  """Lines comparing something with a fusion kind's name (`x == "late"`, `"early" != y`)."""
  return name_compares(source, fusion.FUSIONS)


def test_the_check_finds_a_planted_name_comparison():
  source = ('vision = 0 if dims.fusion == "early" else 1\n'
            'groups = labels if "late" != config.model.fusion else None\n'
            'doc = "late fusion counts encoders"\n')
  assert fusion_name_compares(source) == [1, 2]


def test_no_module_compares_fusion_names():
  """Counting and grouping ask the registry: no `== "late"` / `== "early"` outside fusion.py."""
  found = name_compares_in(REPO, ("mmscale", "launch"), fusion.FUSIONS, skip=("fusion.py",))
  assert not found, "ask mmscale.models.fusion's registry instead: " + ", ".join(found)

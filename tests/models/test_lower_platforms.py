"""The real train step lowers for CUDA and TPU on this CPU machine (8 forced devices as the mesh):
lowering errors that only those platforms hit (the Pallas kernel's Triton lowering, shard_map with
all-to-all dispatch, ragged_dot) show up here, without a device."""

import functools
import re

import jax
import pytest

from experiments import nmm
from mmscale import config as config_lib
from mmscale import parallel
from mmscale.models import flash_attention
from mmscale.train import aot


def _lowered_text(platform, fusion, ffn, attention, mesh):
  c = nmm.get_config(f"fusion={fusion},ffn={ffn},size=t1,experts=8")
  c.mesh.update(mesh)
  c.model.attention_impl = attention
  if ffn == "moe":
    c.model.moe.grouped_matmul = "ragged_dot"  # What "auto" picks on GPU and TPU.
  c = config_lib.resolve(c)
  m = parallel.make_mesh(c.mesh, c.data.batch_size)
  step, args = aot.train_step(c, m)
  with jax.set_mesh(m):
    return step.trace(*args).lower(lowering_platforms=(platform,)).as_text()


@pytest.fixture
def compiled_flash(monkeypatch):
  """The flash kernel picks the Pallas interpreter from jax's default backend (cpu here); a GPU
  target needs its compiled (Triton) path."""
  monkeypatch.setattr(flash_attention, "flash_attention",
                      functools.partial(flash_attention.flash_attention, interpret=False))


@pytest.mark.parametrize("platform,attention", [("cuda", "pallas"), ("tpu", "xla")])
def test_moe_step_lowers_with_all_to_all_and_ragged_dot(platform, attention, compiled_flash):
  text = _lowered_text(platform, "early", "moe", attention, dict(data=1, fsdp=1, expert=8))
  # Dispatch and combine in the forward, and their transposes in the backward.
  assert text.count("stablehlo.all_to_all") >= 4
  assert "chlo.ragged_dot" in text
  # Forward (again in the remat's recompute), delta preprocess, dk/dv and dq kernels: Triton.
  triton = text.count("xla.gpu.triton")
  assert triton >= 4 if attention == "pallas" else triton == 0


# cudnn is left out: jax checks for an installed cuDNN while lowering its fused attention.
@pytest.mark.parametrize("platform", ["cuda", "tpu"])
def test_late_fusion_fsdp_step_lowers(platform):
  text = _lowered_text(platform, "late", "dense", "xla", dict(data=1, fsdp=8, expert=1))
  assert '"fsdp"=8' in text  # The mesh, and parameters split over its fsdp axis (Shardy).
  assert re.search(r'sharding<@mesh, \[[^\]]*\{"fsdp"\}', text)


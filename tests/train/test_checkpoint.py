"""RunCheckpoints: an async save captures the state as it was, and a corrupt latest is skipped."""

import os

import jax
import jax.numpy as jnp
import numpy as np

from mmscale.train.checkpoint import RunCheckpoints


def _abstract(state):
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), state)


def test_save_captures_values_at_call_time(tmp_path):
  ckpt = RunCheckpoints(tmp_path / "c", keep=3)
  state = {"w": jnp.arange(4.0)}
  meta = {"step": 5, "tokens_by_modality": {"text": 10}}
  data_state = {"pos": [1, 2]}
  ckpt.save(5, state, data_state, meta)
  meta["tokens_by_modality"]["text"] = 999  # The loop goes on while the save runs.
  data_state["pos"].append(3)
  ckpt.wait()
  step, restored, data, m = ckpt.restore(_abstract(state))
  ckpt.close()
  assert step == 5
  np.testing.assert_array_equal(restored["w"], np.arange(4.0))
  assert m["tokens_by_modality"] == {"text": 10}
  assert data == {"pos": [1, 2]}


def test_corrupt_latest_falls_back_to_previous(tmp_path):
  ckpt = RunCheckpoints(tmp_path / "c", keep=3)
  for s in (1, 2):
    ckpt.save(s, {"w": jnp.full((3,), float(s))}, {"s": s}, {"step": s})
  ckpt.close()
  state_dir = tmp_path / "c" / "2" / "state"
  for root, _, files in os.walk(state_dir):
    for f in files:
      open(os.path.join(root, f), "wb").close()  # Truncate every file of the newest checkpoint.
  ckpt = RunCheckpoints(tmp_path / "c", keep=3)
  step, restored, data, meta = ckpt.restore(_abstract({"w": jnp.zeros((3,))}))
  ckpt.close()
  assert step == 1 and data == {"s": 1} and meta == {"step": 1}
  np.testing.assert_array_equal(restored["w"], np.full((3,), 1.0))

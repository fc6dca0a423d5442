"""RunCheckpoints: an async save captures the state as it was, and a corrupt latest is skipped."""

import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

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


def _two_checkpoints(directory):
  ckpt = RunCheckpoints(directory, keep=3)
  for s in (1, 2):
    ckpt.save(s, {"w": jnp.full((3,), float(s))}, {"s": s}, {"step": s})
  ckpt.close()


def _files(directory):
  return [os.path.join(r, f) for r, _, fs in os.walk(directory) for f in fs]


def _truncate(step_dir):
  big = max(_files(step_dir / "state"), key=os.path.getsize)
  with open(big, "r+b") as f:
    f.truncate(os.path.getsize(big) // 2)


def _delete_metadata(step_dir):
  for path in _files(step_dir):
    if "metadata" in os.path.basename(path).lower():
      os.remove(path)


def _zero_fill(step_dir):
  for path in _files(step_dir):
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
      f.write(b"\0" * size)


def _empty(step_dir):
  import shutil
  for name in os.listdir(step_dir):
    p = step_dir / name
    shutil.rmtree(p) if p.is_dir() else os.remove(p)


@pytest.mark.parametrize("corrupt", [_truncate, _delete_metadata, _zero_fill, _empty])
def test_unreadable_latest_is_moved_aside_and_its_step_saved_again(tmp_path, corrupt):
  _two_checkpoints(tmp_path / "c")
  corrupt(tmp_path / "c" / "2")
  before = sorted(os.path.relpath(p, tmp_path / "c" / "2") for p in _files(tmp_path / "c" / "2"))
  ckpt = RunCheckpoints(tmp_path / "c", keep=3)
  step, restored, data, meta = ckpt.restore(_abstract({"w": jnp.zeros((3,))}))
  assert step == 1 and data == {"s": 1} and meta == {"step": 1}
  np.testing.assert_array_equal(restored["w"], np.full((3,), 1.0))
  # Renamed, never deleted: the step's files (and its iterator state) sit in checkpoints.unreadable.
  aside = os.listdir(tmp_path / "checkpoints.unreadable")
  assert len(aside) == 1 and aside[0].startswith("2.")
  moved = tmp_path / "checkpoints.unreadable" / aside[0]
  assert sorted(os.path.relpath(p, moved) for p in _files(moved)) == sorted(
      before + ["data_state.2.p0.json"])
  # The run gets to step 2 again and saves it: no StepAlreadyExistsError.
  ckpt.save(2, {"w": jnp.full((3,), 7.0)}, {"s": 22}, {"step": 2})
  ckpt.close()
  ckpt = RunCheckpoints(tmp_path / "c", keep=3)
  step, restored, data, _ = ckpt.restore(_abstract({"w": jnp.zeros((3,))}))
  ckpt.close()
  assert step == 2 and data == {"s": 22}
  np.testing.assert_array_equal(restored["w"], np.full((3,), 7.0))


def test_iterator_states_are_removed_with_their_checkpoints(tmp_path):
  ckpt = RunCheckpoints(tmp_path / "c", keep=2, save_steps=(3,))
  for s in range(1, 8):
    ckpt.save(s, {"w": jnp.full((3,), float(s))}, {"s": s}, {"step": s})
  ckpt.close()
  kept = sorted(int(d) for d in os.listdir(tmp_path / "c") if d.isdigit())
  assert kept == [3, 6, 7]  # The last two, plus a listed branch point.
  assert sorted(os.listdir(tmp_path / "c" / "data_state")) == [f"{s}.p0.json" for s in kept]


def test_failed_save_is_one_line_naming_step_and_cause(tmp_path, monkeypatch):
  import errno

  from mmscale.train import checkpoint

  ckpt = RunCheckpoints(tmp_path / "c", keep=2)
  ckpt.save(1, {"w": jnp.ones(3)}, {"s": 1}, {"step": 1})
  ckpt.wait()

  def full(path, obj):
    raise OSError(errno.ENOSPC, "No space left on device", path)

  monkeypatch.setattr(checkpoint, "write_json_atomic", full)
  ckpt.save(2, {"w": jnp.ones(3)}, {"s": 2}, {"step": 2})
  with pytest.raises(checkpoint.SaveError) as e:
    for _ in range(200):  # The loop polls once per step; the failure shows up without a save.
      ckpt.raise_failed_save()
      time.sleep(0.05)
  msg = str(e.value)
  assert "\n" not in msg and e.value.exit_code == 1
  assert msg.startswith(f"checkpoint save at step 2 into {tmp_path / 'c'} failed: no space left on "
                        "the device (No space left on device)")
  ckpt.close()  # Already shut down: closing again does not raise the same failure twice.
  assert sorted(d for d in os.listdir(tmp_path / "c") if d.isdigit()) == ["1"]

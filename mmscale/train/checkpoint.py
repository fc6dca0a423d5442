"""Orbax checkpoints of a run: params, optimizer state, step and the data-iterator state.

Saves are asynchronous (the step loop only blocks while device arrays are copied to host), the last
`keep` are kept plus any step listed in `save_steps` (the branch points of cool-down branches).
The data-iterator state is small JSON per process; it is written beside Orbax's items, one file per
process, so every host of a multi-host run restores its own stream position.
If the latest checkpoint cannot be read (a crash during a non-atomic copy, a truncated file), that is
reported and the one before it is used.
"""

import concurrent.futures
import copy
import json
import os

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp
from absl import logging
from etils import epath
from orbax.checkpoint import checkpoint_managers as cm

from mmscale.train.records import write_json_atomic


@jax.jit
def _snapshot(state):
  """A device-side copy: the loop donates the live buffers to the next step while this is saved."""
  return jax.tree.map(jnp.copy, state)


class RunCheckpoints:
  """The checkpoints of one run directory."""

  def __init__(self, directory, keep: int = 2, save_steps=(), read_only: bool = False):
    self.directory = epath.Path(directory)
    policies = [cm.LatestN(keep)]
    if save_steps:
      policies.append(cm.CustomSteps(list(save_steps)))
    options = ocp.CheckpointManagerOptions(
        create=not read_only, read_only=read_only, enable_async_checkpointing=True,
        preservation_policy=cm.AnyPreservationPolicy(policies))
    self.manager = ocp.CheckpointManager(self.directory, options=options)
    self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="checkpoint")
    self._pending = None

  def _data_path(self, step: int, process: int) -> str:
    return os.fspath(self.directory / "data_state" / f"{step}.p{process}.json")

  def save(self, step: int, state: dict, data_state: dict, meta: dict) -> None:
    """Starts an async save of `state` (a pytree of arrays) with the iterator state and metadata.

    Orbax's own async save still blocks its caller for its synchronous prologue (a new event loop
    and a handful of threads per save: most of the 50-180 ms it stalled the step loop here). The
    loop only pays for an on-device snapshot (the live buffers are donated to the next step); the
    rest, Orbax's prologue included, runs on a background thread. Saves are serialised there.
    """
    snapshot = _snapshot(state)
    # The loop keeps mutating its (nested) metadata while the save runs: freeze copies now.
    data_state, meta = copy.deepcopy(data_state), copy.deepcopy(meta)
    self._join()
    self._pending = self._executor.submit(self._save, step, snapshot, data_state, meta)

  def _save(self, step, state, data_state, meta) -> None:
    path = self._data_path(step, jax.process_index())
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_json_atomic(path, data_state)  # Before Orbax commits the step, so a committed step has it.
    self.manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)), force=True)

  def _join(self) -> None:
    if self._pending is not None:
      self._pending.result()  # Re-raises a failed save here, in the loop's thread.
      self._pending = None

  def wait(self) -> None:
    self._join()
    self.manager.wait_until_finished()

  def steps(self) -> list[int]:
    self._join()
    return sorted(self.manager.all_steps())

  def restore(self, abstract_state, step: int | None = None):
    """Restores (step, state, data_state, meta), newest readable first; None when there is none."""
    candidates = [step] if step is not None else list(reversed(self.steps()))
    for s in candidates:
      try:
        restored = self.manager.restore(s, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore()))
        with open(self._data_path(s, jax.process_index()), encoding="utf-8") as f:
          data_state = json.load(f)
        return s, restored["state"], data_state, restored["meta"]
      except Exception as e:  # Orbax raises many types for unreadable checkpoints.
        if step is not None:
          raise
        logging.warning("checkpoint at step %d in %s is unreadable (%s: %s); trying the previous one",
                        s, self.directory, type(e).__name__, str(e).splitlines()[0][:200])
    return None

  def close(self) -> None:
    self.wait()
    self._executor.shutdown()
    self.manager.close()

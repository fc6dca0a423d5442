"""Orbax checkpoints of a run: params, optimizer state, step and the data-iterator state.

Saves are asynchronous (the step loop only blocks while device arrays are copied to host), the last
`keep` are kept plus any step listed in `save_steps` (the branch points of cool-down branches).
The data-iterator state is small JSON per process; it is written beside Orbax's items, one file per
process, so every host of a multi-host run restores its own stream position.
If the latest checkpoint cannot be read (a crash during a non-atomic copy, a truncated file, a
deleted metadata file, an emptied step folder), it is moved aside into `checkpoints.unreadable/`
beside the checkpoints (renamed, never deleted: the user decides), with a warning, and the one before
it is used; the run then saves that step anew when it gets there. A save that fails (a full disk)
stops the run with one line naming the step and the cause.
"""

import concurrent.futures
import copy
import errno
import json
import os
import time

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp
from absl import logging
from etils import epath
from orbax.checkpoint import checkpoint_managers as cm

from mmscale.contract import CHECKPOINTS_DIR
from mmscale.errors import UserError
from mmscale.train.records import write_json_atomic

ASIDE = CHECKPOINTS_DIR + ".unreadable"  # A sibling of checkpoints/: Orbax never lists it.


class SaveError(UserError):
  """A checkpoint could not be written. Not bad input, but one line all the same: exit 1."""

  exit_code = 1


def _cause(e: BaseException) -> str:
  """The root of a (wrapped) save failure in a few words: Orbax wraps OSErrors in its own types."""
  seen = e
  while seen is not None:
    if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
      return f"no space left on the device ({seen.strerror or 'ENOSPC'})"
    if "No space left on device" in str(seen):  # TensorStore reports it as text in its own errors.
      return "no space left on the device (No space left on device)"
    seen = seen.__cause__ or seen.__context__
  text = str(e).strip().splitlines()
  return f"{type(e).__name__}: {text[0][:200] if text else ''}"


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
    self._pending = None  # (step, future) of the save running in the background.
    self._closed, self.read_only = False, read_only
    if not read_only:
      # A step folder Orbax does not list (its metadata was deleted, it was emptied) would make
      # the save of that step fail later with StepAlreadyExistsError.
      listed = {str(s) for s in self.manager.all_steps()}
      for name in sorted(os.listdir(self.directory)) if self.directory.exists() else []:
        if name.isdigit() and name not in listed:
          self._set_aside(int(name), "Orbax does not recognise it as a finished checkpoint")

  def _data_path(self, step: int, process: int) -> str:
    return os.fspath(self.directory / "data_state" / f"{step}.p{process}.json")

  def _set_aside(self, step: int, why: str) -> None:
    """Moves step `step` (and its data-iterator state) into checkpoints.unreadable/, renamed."""
    if self.read_only or jax.process_index() != 0:
      return
    aside = os.path.join(os.path.dirname(os.fspath(self.directory)), ASIDE)
    os.makedirs(aside, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    target = os.path.join(aside, f"{step}.{stamp}")
    os.replace(os.fspath(self.directory / str(step)), target)
    data_dir = os.fspath(self.directory / "data_state")
    for name in os.listdir(data_dir) if os.path.isdir(data_dir) else []:
      if name.startswith(f"{step}.p"):
        os.replace(os.path.join(data_dir, name), os.path.join(target, f"data_state.{name}"))
    logging.warning("checkpoint at step %d in %s is unreadable (%s); moved it to %s",
                    step, self.directory, why, target)

  def _prune_data_states(self, keep=()) -> None:
    """Removes this process's iterator-state files whose checkpoint Orbax has rotated away."""
    data_dir = os.fspath(self.directory / "data_state")
    if self.read_only or not os.path.isdir(data_dir):
      return
    live = set(self.manager.all_steps()) | set(keep)
    suffix = f".p{jax.process_index()}.json"
    for name in os.listdir(data_dir):
      step = name[:-len(suffix)]
      if name.endswith(suffix) and step.isdigit() and int(step) not in live:
        try:
          os.remove(os.path.join(data_dir, name))
        except FileNotFoundError:
          pass

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
    if jax.process_count() > 1:
      # Orbax's save runs cross-process work (barriers, copies of sharded arrays): beside the next
      # steps' collectives on another thread, a 2-process gang hung at its first mid-run save.
      try:
        self._save(step, snapshot, data_state, meta, wait=False)
      except Exception as e:  # As a background failure would be reported.
        self._pending = (step, concurrent.futures.Future())
        self._pending[1].set_exception(e)
        self._join()
      return
    self._pending = (step, self._executor.submit(self._save, step, snapshot, data_state, meta))

  def _save(self, step, state, data_state, meta, wait: bool = True) -> None:
    path = self._data_path(step, jax.process_index())
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_json_atomic(path, data_state)  # Before Orbax commits the step, so a committed step has it.
    self.manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)), force=True)
    # Waiting here (off the loop's thread) makes a failed commit fail this future, which the loop
    # sees within a step, rather than at the next save.
    if wait:
      self.manager.wait_until_finished()
    self._prune_data_states(keep=(step,))

  def _join(self) -> None:
    if self._pending is not None:
      step, future = self._pending
      self._pending = None
      try:
        future.result()  # Re-raises a failed save here, in the loop's thread.
      except Exception as e:  # Orbax wraps the OSError of a full disk in its own types.
        self._close_quietly()
        raise SaveError(f"checkpoint save at step {step} into {self.directory} failed: {_cause(e)}; "
                        "the records and the earlier checkpoints are intact: fix the cause and run "
                        "the same command again to resume") from None

  def raise_failed_save(self) -> None:
    """Raises SaveError now if the background save has already failed (cheap: no waiting)."""
    if self._pending is not None and self._pending[1].done():
      self._join()

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
        lines = str(e).splitlines() or [""]
        self._set_aside(s, f"{type(e).__name__}: {lines[0][:200]}")
        self.manager.reload()  # Forget the step, so that it can be saved again.
    return None

  def _close_quietly(self) -> None:
    """Shuts down after a failed save without raising again (the failure is already reported)."""
    self._closed = True
    for fn in (self.manager.wait_until_finished, self.manager.close):
      try:
        fn()
      except Exception:  # The same failure, reported once by the caller.
        pass
    self._executor.shutdown(wait=False)

  def close(self) -> None:
    if self._closed:
      return
    self.wait()
    self._prune_data_states()
    self._executor.shutdown()
    self.manager.close()
    self._closed = True

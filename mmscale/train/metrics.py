"""Metric writers: every record a run appends to records.jsonl also goes to TensorBoard event files
(tensorboardX, no TensorFlow) in the run's workdir and, optionally, to Weights & Biases.

records.jsonl stays the source of truth (fits read it); the writers only make a run watchable, so
`tensorboard --logdir ROOT` shows every run of a sweep as one TensorBoard run named by its run id.
Scalars per record kind:
  train:            train/loss, train/lr, train/grad_norm, train/tokens_per_s (between two train
                    records of this process, so the first record after a (re)start has none)
  init_eval, eval:  val/<source>/<key> for every value of every source (loss, bpb, loss_<m>, ...),
                    routing/specialization/layer<i>, data_shares/<...> (numeric leaves)
Config (presentation only; neither changes what is trained): run.tensorboard (bool),
run.wandb (W&B project; "" = off) and run.wandb_mode ("offline" or "online").

The writers receive config.run alone (mmscale/stages.py) plus explicit inputs: the workdir, the run
id, the start step and, for W&B's run page, the resolved config as a plain dict.
"""

import numbers
import os
import time

FLUSH_S = 10  # Event files reach disk at least this often, so a sweep can be watched live.


def _flatten(prefix: str, value, out: dict) -> None:
  if isinstance(value, dict):
    for k, v in value.items():
      _flatten(f"{prefix}/{k}", v, out)
  elif isinstance(value, numbers.Real) and not isinstance(value, bool):
    out[prefix] = float(value)


def scalars(record: dict, previous_train: dict | None = None) -> dict[str, float]:
  """The scalars of one record, by TensorBoard tag (see the module docstring)."""
  out = {}
  kind = record.get("kind")
  if kind == "train":
    for key in ("loss", "lr", "grad_norm"):
      if key in record:
        out[f"train/{key}"] = float(record[key])
    prev = previous_train
    if prev and "wall_time" in record and "wall_time" in prev:
      dt = float(record["wall_time"]) - float(prev["wall_time"])
      if dt > 0:
        out["train/tokens_per_s"] = (int(record["tokens"]) - int(prev["tokens"])) / dt
  elif kind in ("eval", "init_eval"):
    _flatten("val", record.get("val", {}), out)
    for i, s in enumerate(record.get("routing", {}).get("specialization", [])):
      out[f"routing/specialization/layer{i}"] = float(s)
    _flatten("data_shares", record.get("data_shares", {}), out)
  return out


class MetricWriter:
  """Writes records as scalars; a no-op on non-primary processes and when nothing is enabled.

  `start_step` is the step the run (re)starts from: TensorBoard hides the events of later steps
  written before a restart (tensorboardX's purge_step), as records.jsonl drops those records.
  """

  def __init__(self, run, workdir: str, run_id: str, start_step: int, primary: bool = True,
               logged_config: dict | None = None):
    """run: config.run. logged_config: what W&B shows as the run's config (the resolved config)."""
    self._tb = self._wandb = None
    self._previous_train = None
    if not primary:
      return
    if run.get("tensorboard", True):
      from tensorboardX import SummaryWriter

      # The suffix keeps two starts within one second (same host and timestamp in the file name)
      # from truncating each other's files.
      self._tb = SummaryWriter(logdir=os.fspath(workdir), purge_step=start_step + 1, flush_secs=FLUSH_S,
                               filename_suffix=f".{os.getpid()}.{time.time_ns()}")
    if run.get("wandb", ""):
      self._wandb = _start_wandb(run, workdir, run_id, logged_config or {})

  def write(self, record: dict) -> None:
    if self._tb is None and self._wandb is None:
      return
    values = scalars(record, self._previous_train)
    if record.get("kind") == "train":
      self._previous_train = record
    step = int(record["step"])
    if self._tb is not None:
      for tag, v in values.items():
        self._tb.add_scalar(tag, v, global_step=step)
    if self._wandb is not None and values:
      self._wandb.log(values, step=step)

  def close(self) -> None:
    if self._tb is not None:
      self._tb.close()
      self._tb = None
    if self._wandb is not None:
      self._wandb.finish()
      self._wandb = None


def _start_wandb(run, workdir: str, run_id: str, logged_config: dict):
  import wandb  # mmscale.config.validate checked that it is installed.

  # The W&B run id is the run id, so a resumed run continues its W&B run (resume="allow").
  return wandb.init(project=run.wandb, id=run_id, name=run_id, dir=workdir,
                    mode=run.get("wandb_mode", "offline"), resume="allow", config=logged_config,
                    settings=wandb.Settings(silent=True))

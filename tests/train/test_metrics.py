"""Metric writers: TensorBoard event files (and offline W&B) read back equal records.jsonl."""

import json
import math
import os
import struct

import ml_collections
import numpy as np
import pytest

from mmscale import config as config_lib
from mmscale.errors import ConfigError
from mmscale.train import metrics
from mmscale.train import records as rec


def _event_scalars(logdir: str) -> dict[str, dict[int, float]]:
  """{tag: {step: value}} as TensorBoard shows it (restarts purged)."""
  from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

  acc = EventAccumulator(logdir, size_guidance={"scalars": 0})
  acc.Reload()
  out = {}
  for tag in acc.Tags()["scalars"]:
    events = acc.Scalars(tag)
    steps = [e.step for e in events]
    assert len(steps) == len(set(steps)), f"{tag}: a step shown twice: {steps}"
    out[tag] = {e.step: e.value for e in events}
  return out


def _expected(records: list[dict]) -> dict[str, dict[int, float]]:
  """What the event files must hold, derived from records.jsonl by hand (not by metrics.scalars)."""
  want = {}

  def put(tag, step, value):
    want.setdefault(tag, {})[step] = value

  train = [r for r in records if r["kind"] == "train"]
  for prev, r in zip([None] + train, train):
    for key in ("loss", "lr", "grad_norm"):
      put(f"train/{key}", r["step"], r[key])
    if prev is not None and prev["step"] < r["step"]:
      put("train/tokens_per_s", r["step"],
          (r["tokens"] - prev["tokens"]) / (r["wall_time"] - prev["wall_time"]))
  for r in records:
    if r["kind"] not in ("eval", "init_eval"):
      continue
    for source, values in r["val"].items():
      for key, v in values.items():
        put(f"val/{source}/{key}", r["step"], v)
    for i, s in enumerate(r.get("routing", {}).get("specialization", [])):
      put(f"routing/specialization/layer{i}", r["step"], s)
    for group, shares in r.get("data_shares", {}).items():
      if isinstance(shares, dict):
        for name, v in shares.items():
          if isinstance(v, (int, float)):
            put(f"data_shares/{group}/{name}", r["step"], v)
      elif isinstance(shares, (int, float)):
        put(f"data_shares/{group}", r["step"], shares)
  return want


def _assert_equal_float32(got: dict, want: dict) -> None:
  assert sorted(got) == sorted(want)
  for tag in want:
    assert sorted(got[tag]) == sorted(want[tag]), tag
    for step, v in want[tag].items():
      # Event files store float32: equal after the same rounding (NaN stays NaN).
      np.testing.assert_array_equal(np.float32(got[tag][step]), np.float32(v), err_msg=f"{tag}@{step}")


def _train(step, loss, tokens, wall):
  return {"kind": "train", "run_id": "r", "step": step, "tokens": tokens, "loss": loss,
          "grad_norm": 0.5 * loss, "lr": 1e-3 * step, "wall_time": wall}


def _eval(step, loss):
  return {"kind": "eval", "run_id": "r", "step": step, "train_loss": loss,
          "val": {"caption": {"loss": loss, "bpb": loss / math.log(2), "loss_image": 2 * loss,
                              "targets_image": 64},
                  "text": {"loss": loss + 1, "bpb": float("nan")}},
          "routing": {"specialization": [0.25, 0.5 * loss]},
          "data_shares": {"tokens": {"caption": 0.45, "text": 0.55}, "steps": step,
                          "skipped": {}}}


def test_scalars_of_each_record_kind():
  prev = _train(2, 3.0, 200, 1.0)
  assert metrics.scalars(_train(4, 2.5, 600, 3.0), prev) == {
      "train/loss": 2.5, "train/lr": 0.004, "train/grad_norm": 1.25, "train/tokens_per_s": 200.0}
  assert "train/tokens_per_s" not in metrics.scalars(_train(4, 2.5, 600, 3.0), None)
  got = metrics.scalars(_eval(4, 2.0))
  assert got.pop("val/text/bpb") != got.get("val/text/bpb")  # NaN is kept: a diverged source shows.
  assert got == {"val/caption/loss": 2.0, "val/caption/bpb": 2.0 / math.log(2),
                 "val/caption/loss_image": 4.0, "val/caption/targets_image": 64.0,
                 "val/text/loss": 3.0, "routing/specialization/layer0": 0.25,
                 "routing/specialization/layer1": 1.0, "data_shares/tokens/caption": 0.45,
                 "data_shares/tokens/text": 0.55, "data_shares/steps": 4.0}


def test_event_files_equal_the_records_across_a_restart(tmp_path):
  """A run killed after its checkpoint at step 4 redoes steps 5-6 with other values: records.jsonl
  drops the old ones, and TensorBoard must show the new ones only (purge_step)."""
  d, path = str(tmp_path), os.path.join(tmp_path, "records.jsonl")
  config = config_lib.base_config()
  w = metrics.MetricWriter(config.run, d, "r", 0)
  for r in [{"kind": "init_eval", "run_id": "r", "step": 0, "val": {"text": {"loss": 5.0, "bpb": 7.0}}},
            _train(2, 4.0, 100, 1.0), _train(4, 3.0, 210, 2.0), _eval(4, 3.1),
            _train(6, 2.0, 330, 3.5)]:
    rec.append_record(path, r)
    w.write(r)
  w.close()
  rec.keep_records_until(path, 4)  # What the trainer does on resume from the step-4 checkpoint.
  w = metrics.MetricWriter(config.run, d, "r", 4)
  for r in [_train(6, 2.2, 340, 4.0), _eval(6, 2.1), _train(8, 1.9, 450, 5.0)]:
    rec.append_record(path, r)
    w.write(r)
  w.close()
  records = rec.read_records(path)
  want = _expected(records)
  del want["train/tokens_per_s"][6]  # The first train record after a restart has no predecessor.
  _assert_equal_float32(_event_scalars(d), want)


def test_writers_are_off_on_other_processes_and_when_disabled(tmp_path):
  config = config_lib.base_config()
  for cfg_tb, primary in ((True, False), (False, True)):
    config.run.tensorboard = cfg_tb
    w = metrics.MetricWriter(config.run, str(tmp_path), "r", 0, primary=primary)
    w.write(_train(1, 1.0, 10, 1.0))
    w.close()
  assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("key,value,message", [
    ("tensorboard", 1, "config.run.tensorboard=1: must be True or False"),
    ("wandb", 0, "config.run.wandb=0: must be a W&B project name, or '' for no W&B"),
    ("wandb_mode", "cloud", "config.run.wandb_mode='cloud': must be one of 'offline', 'online'"),
])
def test_bad_writer_keys_are_one_line_errors(key, value, message):
  config = config_lib.base_config()
  run = config.run.to_dict()
  run[key] = value  # As a run.json written by hand would hold it (ConfigDict overrides type-check).
  config.run = ml_collections.ConfigDict(run)
  with pytest.raises(ConfigError) as e:
    config_lib.validate_run(config)
  assert str(e.value) == message


def test_writer_keys_do_not_change_the_run_id():
  a = config_lib.base_config()
  b = config_lib.base_config()
  b.run.tensorboard, b.run.wandb, b.run.wandb_mode = False, "my-project", "online"
  assert config_lib.run_id(a) == config_lib.run_id(b)


# -- Weights & Biases, offline


def _wandb_history(path: str) -> list[dict]:
  """Rows of an offline W&B run file (run-<id>.wandb): a LevelDB-format log (32 KiB blocks, 7-byte
  chunk headers) of wandb_internal_pb2.Record protobufs after a 7-byte ':W&B' file header.
  wandb 0.31 ships no reader of its own."""
  from wandb.proto import wandb_internal_pb2

  with open(path, "rb") as f:
    data = f.read()
  assert data[:4] == b":W&B"
  blobs, partial, pos, block, header = [], b"", 7, 32768, 7
  while pos + header <= len(data):
    left = block - pos % block
    if left < header:  # Block trailer padding.
      pos += left
      continue
    _, length, kind = struct.unpack("<IHB", data[pos:pos + header])
    chunk = data[pos + header:pos + header + length]
    pos += header + length
    if kind == 1:  # FULL
      blobs.append(chunk)
    elif kind == 2:  # FIRST
      partial = chunk
    elif kind == 3:  # MIDDLE
      partial += chunk
    elif kind == 4:  # LAST
      blobs.append(partial + chunk)
    else:
      break
  rows = []
  for blob in blobs:
    r = wandb_internal_pb2.Record()
    r.ParseFromString(blob)
    if r.WhichOneof("record_type") == "history":
      rows.append({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in r.history.item})
  return rows


def test_wandb_offline_run_logs_the_same_scalars(tmp_path, monkeypatch):
  pytest.importorskip("wandb")  # The `wandb` extra; `make install` installs it with `test`.
  monkeypatch.setenv("WANDB_MODE", "offline")  # Belt and braces: the config says offline too.
  config = config_lib.base_config()
  config.run.tensorboard, config.run.wandb = False, "mmscale-test"
  records = [_train(2, 4.0, 100, 1.0), _train(4, 3.0, 210, 2.0), _eval(4, 3.1)]
  w = metrics.MetricWriter(config.run, str(tmp_path), "run-abc123", 0)
  for r in records:
    w.write(r)
  w.close()
  import wandb
  # wandb-core writes the run file behind finish(); its teardown (at exit in a real run) flushes it.
  wandb.teardown()
  [run_dir] = [n for n in os.listdir(tmp_path / "wandb") if n.startswith("offline-run-")]
  assert run_dir.endswith("-run-abc123")  # The W&B run id is the run id: a resume continues it.
  rows = _wandb_history(os.path.join(tmp_path, "wandb", run_dir, "run-run-abc123.wandb"))
  got = {}
  for row in rows:
    for k, v in row.items():
      if not k.startswith("_"):
        got.setdefault(k, {})[row["_step"]] = float("nan") if v == "NaN" else v
  want = _expected(records)
  assert sorted(got) == sorted(want)
  for tag in want:
    np.testing.assert_array_equal([got[tag][s] for s in sorted(want[tag])],
                                  [want[tag][s] for s in sorted(want[tag])], err_msg=tag)


@pytest.mark.slow
def test_a_training_run_writes_events_equal_to_its_records_and_prints_each_eval(tmp_path, capsys):
  from experiments import nmm
  from mmscale.train import loop

  c = nmm.get_config("size=t1,ffn=moe,steps=6")  # MoE, so routing specialization is written too.
  c.train.warmup_steps, c.train.log_every, c.train.eval_points, c.train.eval_batches = 1, 2, 2, 1
  loop.train(c, str(tmp_path))
  records = rec.read_records(os.path.join(tmp_path, "records.jsonl"))
  want = _expected(records)
  assert "routing/specialization/layer0" in want and "val/text/bpb" in want
  _assert_equal_float32(_event_scalars(str(tmp_path)), want)
  # Each evaluation on the console as it is computed, once: the initial one, steps 3 and 6.
  err = capsys.readouterr().err
  evals = [l for l in err.splitlines() if l.startswith("eval step")]
  assert [l.split(":")[0] for l in evals] == ["eval step 0", "eval step 3", "eval step 6"]
  final = next(r for r in records if r["kind"] == "eval" and r["step"] == 6)
  assert f"text {final['val']['text']['loss']:.4f}" in evals[-1]
  # Not a terminal: plain progress lines, the last step's once (a tqdm bar drew it twice here,
  # with two different losses).
  last = [r for r in records if r["kind"] == "train"][-1]
  assert [l for l in err.splitlines() if l.startswith("step 6/6")] == [
      l for l in err.splitlines() if l.startswith(f"step 6/6  loss {last['loss']:.4f}  ")]
  assert len([l for l in err.splitlines() if l.startswith("step 6/6")]) == 1 and "\r" not in err

"""A run whose loss or gradient norm turns non-finite stops as "diverged" (exit 3) with every kept
checkpoint from before the divergence; a vocabulary below the tokenizer's is refused up front."""

import json
import math
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMALL = ["--config=experiments/tiny.py:steps=24", "--config.model.width=32", "--config.model.depth=1",
         "--config.model.heads=2", "--config.data.seq_len=128", "--config.data.batch_size=4",
         "--config.train.warmup_steps=2", "--config.train.log_every=1", "--config.train.eval_points=3",
         "--config.train.eval_batches=1"]


def _train(workdir, *extra):
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=1")
  return subprocess.run([sys.executable, "-m", "mmscale", "train", *SMALL, *extra,
                         f"--workdir={workdir}"], cwd=ROOT, env=env, capture_output=True, text=True,
                        timeout=300)


@pytest.mark.slow
def test_diverged_run_stops_before_saving_the_diverged_state(tmp_path):
  workdir = tmp_path / "run"
  # lr 1e30: the first full-LR update blows the weights up (NaN from step 3 or so).
  r = _train(workdir, "--config.train.lr=1e30", "--config.train.checkpoint_every=1")
  assert r.returncode == 3, r.stderr[-3000:]
  summary = json.load(open(workdir / "summary.json"))
  records = [json.loads(l) for l in open(workdir / "records.jsonl")]
  train = [x for x in records if x["kind"] == "train"]
  bad = [x for x in train if not (math.isfinite(x["loss"]) and math.isfinite(x["grad_norm"]))]
  first = bad[0]["step"]
  assert summary["status"] == "diverged" and summary["diverged_step"] == first
  what, value = ("training loss", bad[0]["loss"]) if not math.isfinite(bad[0]["loss"]) else (
      "gradient norm", bad[0]["grad_norm"])
  assert summary["reason"] == f"{what} is {value} at step {first}"
  assert summary["step"] <= first + 1  # Stopped within a step of it (the read-back lags one step).
  assert all(x["step"] <= summary["step"] for x in records)
  assert not [x for x in records if x["kind"] == "eval" and x["step"] >= first]
  # Saved every step until then, none after: the two kept are the last two before the divergence.
  kept = sorted(int(d) for d in os.listdir(workdir / "checkpoints") if d.isdigit())
  assert kept == [first - 2, first - 1]
  assert sorted(os.listdir(workdir / "checkpoints" / "data_state")) == [f"{s}.p0.json" for s in kept]
  assert r.stderr.strip().splitlines()[-1] == (
      f"mmscale: error: run diverged: {summary['reason']}; stopped at step {summary['step']}, "
      f"the checkpoints in {workdir} are from before it")


def test_vocabulary_below_the_tokenizers_is_one_line_before_anything_is_written(tmp_path):
  workdir = tmp_path / "run"
  r = _train(workdir, "--config.model.vocab_size=16")
  assert r.returncode == 2
  assert r.stderr.strip().splitlines() == [
      "mmscale: error: config.model.vocab_size=16: must be 0 (the tokenizer's) or at least the "
      "tokenizer's vocabulary of 264 (data.tokenizer='byte')"]
  assert not workdir.exists()


def test_parameters_are_checked_for_finiteness_before_a_save():
  import jax.numpy as jnp
  import numpy as np

  from mmscale.train.loop import _all_finite

  state = {"w": jnp.ones((3, 2)), "b": {"x": jnp.zeros(4, jnp.bfloat16)}, "n": jnp.arange(3)}
  assert bool(_all_finite(state))
  for bad in (np.inf, -np.inf, np.nan):
    assert not bool(_all_finite({**state, "b": {"x": jnp.zeros(4, jnp.bfloat16).at[2].set(bad)}}))

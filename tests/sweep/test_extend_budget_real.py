"""With the real trainer: an extended trunk continues from its last checkpoint and ends exactly
where a trunk trained to the larger budget from scratch ends (CPU training is bit-reproducible)."""

import json
import os
import shutil
import sys

import pytest

from mmscale.sweep import registry
from sweep_helpers import HERE, run

pytestmark = pytest.mark.slow
STUDY = os.path.join(HERE, "real_grow_study.py")


def _sweep(root, arg=""):
  r = run([sys.executable, "-m", "mmscale", "sweep", f"--config={STUDY}:{arg}" if arg else
           f"--config={STUDY}", f"--root={root}", "--poll_s=0.2"], timeout=1200)
  assert r.returncode == 0, r.stderr[-3000:]
  return r


def _study(arg):
  from mmscale.sweep import study as study_lib
  return study_lib.build(STUDY, arg, study_lib.load_module(STUDY).get_config(arg))


def _records(root, run_id):
  with open(os.path.join(root, run_id, "records.jsonl")) as f:
    return [json.loads(line) for line in f]


def test_extended_trunk_matches_a_trunk_trained_to_the_larger_budget(tmp_path, real_sweep):
  grown, fresh = str(tmp_path / "grown"), str(tmp_path / "fresh")
  # The study without "bigger" is real_study.py (same runs, same ids): a copy of the session's
  # finished sweep of it (tests/sweep/conftest.py), which this sweep finds done.
  shutil.copytree(real_sweep, grown)
  assert "3 runs: 3 done" in _sweep(grown).stdout
  (trunk,) = [n for n in os.listdir(grown) if "_trunk-" in n]
  branches = sorted(n for n in os.listdir(grown) if "_C" in n)
  kept = {b: os.path.getmtime(os.path.join(grown, b, "summary.json")) for b in branches}
  old_steps = json.load(open(os.path.join(grown, trunk, "run.json")))["steps"]

  r = _sweep(grown, "bigger")
  assert f"trunk {trunk}: extended from {old_steps}" in r.stdout
  for b, mtime in kept.items():  # The branches of the old budgets were not run again.
    assert os.path.getmtime(os.path.join(grown, b, "summary.json")) == mtime
  # Same ids as a fresh sweep of the larger study: the trunk kept its id.
  specs = {s.run_id: s for s in _study("bigger").specs}
  assert sorted(specs) == sorted(n for n in os.listdir(grown)
                                 if os.path.exists(os.path.join(grown, n, registry.RUN_FILE)))
  # The reference: that trunk trained from scratch, alone (its branches are not compared).
  registry.write_specs(fresh, [specs[trunk]])
  r = run([sys.executable, "-m", "mmscale.sweep.runner", registry.run_dir(fresh, trunk)], timeout=1200)
  assert r.returncode == 0, r.stderr[-3000:]

  def train_losses(root):
    return {r["step"]: r["loss"] for r in _records(root, trunk) if r["kind"] == "train"}

  a, b = train_losses(grown), train_losses(fresh)
  # Records are written every log_every steps and at eval points, which follow the run's length.
  common = set(a) & set(b)
  assert max(a) == max(b) > old_steps and len(common) >= 5 and max(a) in common
  assert {s: a[s] for s in common} == {s: b[s] for s in common}  # Bit for bit the one-go run.
  summary = json.load(open(os.path.join(grown, trunk, "summary.json")))
  assert summary["status"] == "done" and summary["step"] > old_steps

"""A larger budget added to a finished cool-down sweep: trunks continue, branches are kept."""

import json
import os
import shutil
import sys

import pytest

from sweep_helpers import FAKE_TRAIN, HERE, run, starts

STUDY = os.path.join(HERE, "grow_study.py")


def _sweep(root, arg="", *extra):
  return [sys.executable, "-m", "mmscale", "sweep", f"--config={STUDY}:{arg}" if arg else
          f"--config={STUDY}", f"--root={root}", f"--train_fn={FAKE_TRAIN}", "--poll_s=0.1", *extra]


def _resumes(root):
  path = os.path.join(root, "resumes.log")
  return open(path).read().split("\n") if os.path.exists(path) else []


@pytest.mark.slow
def test_a_larger_budget_runs_only_the_new_compute(tmp_path, fake_cooldown_sweep):
  root = str(tmp_path / "root")
  # The study without "bigger" is fake_study.py:cooldown (same runs, same ids): a copy of the
  # session's finished sweep of it (conftest.py), which this sweep finds done.
  shutil.copytree(fake_cooldown_sweep[0], root)
  r = run(_sweep(root))
  assert "8 runs: 8 done" in r.stdout
  assert r.returncode == 0, r.stderr
  before = sorted(starts(root))
  assert len(before) == 8  # 2 trunks + 6 branches.
  trunks = {n: json.load(open(os.path.join(root, n, "run.json")))["steps"]
            for n in os.listdir(root) if "_trunk-" in n}

  r = run(_sweep(root, "bigger", "--dry-run"))
  assert r.returncode == 0, r.stderr
  rows = [line.split() for line in r.stdout.splitlines() if line.startswith("fake_")]
  status = {row[0]: row[-1] for row in rows}
  assert len(rows) == 10 and all(status[t] == "extend" for t in trunks)
  assert sum(s == "done" for s in status.values()) == 6 and sum(s == "new" for s in status.values()) == 2
  reuse = [line for line in r.stdout.splitlines() if line.startswith("reuses ")]
  assert len(reuse) == 1 and "FLOPs already computed" in reuse[0]

  r = run(_sweep(root, "bigger"))
  assert r.returncode == 0, r.stderr
  assert r.stdout.count("extended from") == 2
  new = sorted(starts(root))
  added = list(new)
  for name in before:
    added.remove(name)
  # Only the two trunks (again, continuing) and the two new branches started.
  assert sorted(added) == sorted(list(trunks) + [n for n in status if status[n] == "new"])
  for trunk, old_steps in trunks.items():
    spec = json.load(open(os.path.join(root, trunk, "run.json")))
    assert spec["steps"] > old_steps
    assert f"{trunk} {old_steps}" in " ".join(_resumes(root))  # From its last checkpoint.
    assert json.load(open(os.path.join(root, trunk, "summary.json")))["status"] == "done"

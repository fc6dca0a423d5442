"""A diverged run in a sweep: recorded with its step and reason, shown, carried, left out by name.

The fake trainer makes one run's loss NaN at its last step but one and ends it "diverged", as the
real trainer does (tests/train/test_divergence.py checks the trainer itself).
"""

import csv
import json
import os

import pytest

from helpers import csv_rows
from sweep_helpers import PY, run, sweep_cmd

DIVERGING = "fake_text_s32_C6e8"  # One run of the mix=text group.


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("sweep"))
  r = run(sweep_cmd(root, "axes,three", 2), FAKE_DIVERGE=DIVERGING)
  return root, r


def _status(root):
  r = run([PY, "-m", "mmscale", "status", f"--root={root}", "--json"])
  assert r.returncode == 0, r.stderr[-2000:]
  return {x["run_id"]: x for x in json.loads(r.stdout)}


@pytest.mark.slow
def test_sweep_marks_it_diverged_and_goes_on(sweep):
  root, r = sweep
  assert r.returncode == 0, r.stderr[-2000:]  # Diverging is an outcome, not a failed sweep.
  status = _status(root)
  diverged = {k: v for k, v in status.items() if v["status"] == "diverged"}
  assert len(status) == 18 and len(diverged) == 1
  (run_id, row), = diverged.items()
  assert run_id.startswith(DIVERGING)
  summary = json.load(open(os.path.join(root, run_id, "summary.json")))
  step = summary["diverged_step"]
  assert row["step"] == step == row["steps"] - 1
  assert row["reason"] == summary["reason"] == f"training loss is nan at step {step}"
  assert all(v["status"] == "done" for k, v in status.items() if k != run_id)
  assert not os.path.exists(os.path.join(root, run_id, "worker_error.json"))
  text = run([PY, "-m", "mmscale", "status", f"--root={root}"]).stdout
  assert "18 runs: 1 diverged, 17 done" in text
  assert f"{run_id} diverged: training loss is nan at step {step}" in text
  # Re-running the sweep does not run it again (it would diverge again the same way).
  again = run(sweep_cmd(root, "axes,three", 2), FAKE_DIVERGE=DIVERGING)
  assert again.returncode == 0
  assert open(os.path.join(root, "starts.log")).read().split().count(run_id) == 1


@pytest.mark.slow
def test_collect_carries_status_and_fit_leaves_the_run_out_per_group(sweep, tmp_path):
  root, _ = sweep
  out = str(tmp_path / "records.csv")
  r = run([PY, "-m", "mmscale", "collect", f"--root={root}", f"--out={out}"])
  assert r.returncode == 0, r.stderr[-2000:]
  rows = csv_rows(out)
  by_status = {}
  for row in rows:
    by_status.setdefault(row["status"], set()).add(row["run_id"])
  assert set(by_status) == {"done", "diverged"}
  (run_id,) = by_status["diverged"]
  reason = json.load(open(os.path.join(root, run_id, "summary.json")))["reason"]
  assert {row["status_reason"] for row in rows if row["run_id"] == run_id} == {reason}
  assert {row["final"] for row in rows if row["run_id"] == run_id} == {"False"}
  fit_json = str(tmp_path / "fit.json")
  r = run([PY, "-m", "mmscale", "fit", f"--records={out}", "--group_by=mix", f"--json={fit_json}"],
          timeout=300)
  assert r.returncode == 0, r.stderr[-2000:]
  assert f"group mix=text: left out 1 run: {run_id} (diverged: {reason})" in r.stdout.splitlines()
  assert "group mix=base: left out" not in r.stdout
  fit = json.load(open(fit_json))
  assert sorted(fit["groups"]) == ["mix=base", "mix=text"]  # Both fitted; text on its 8 others.
  assert fit["left_out"] == {"mix=text": {run_id: f"diverged: {reason}"}}
  assert fit["groups"]["mix=text"]["n_points"] == 8 and fit["groups"]["mix=base"]["n_points"] == 9


@pytest.mark.slow
def test_a_group_with_no_healthy_run_left_does_not_stop_the_others(sweep, tmp_path):
  root, _ = sweep
  out = str(tmp_path / "records.csv")
  assert run([PY, "-m", "mmscale", "collect", f"--root={root}", f"--out={out}"]).returncode == 0
  rows = csv_rows(out)
  for row in rows:  # As if every text run had diverged.
    if row["mix"] == "text":
      row["status"], row["status_reason"] = "diverged", "training loss is nan at step 3"
  bad = str(tmp_path / "all_text_diverged.csv")
  with open(bad, "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
  r = run([PY, "-m", "mmscale", "fit", f"--records={bad}", "--group_by=mix"], timeout=300)
  assert r.returncode == 0, r.stderr[-2000:]
  lines = r.stdout.splitlines()
  assert any(l.startswith("group mix=text: left out 9 runs: ") for l in lines)
  assert "group mix=text: not fitted: no run left to fit (after leaving out its diverged runs)" in lines
  assert any(l.startswith("mix=base:") for l in lines)  # The healthy group's fit line.


def _law_table(path):
  """A Chinchilla-shaped table (3 sizes x 3 budgets, finished), one diverged run, one all-NaN run."""
  rows = []
  for i, n in enumerate((1e6, 3e6, 1e7)):
    for j, c in enumerate((1e15, 3e15, 1e16)):
      d = c / (6 * n)
      rows.append({"run_id": f"r{i}{j}", "step": 100, "source": "text", "params": n, "tokens": d,
                   "flops": c, "loss": 1.7 + 400 / n ** 0.34 + 400 / d ** 0.28, "final": True,
                   "status": "done", "status_reason": ""})
  rows.append({**rows[4], "run_id": "blown", "step": 50, "final": False, "status": "diverged",
               "status_reason": "gradient norm is inf at step 61"})
  rows.append({**rows[4], "run_id": "nan", "loss": float("nan")})
  with open(path, "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)


@pytest.mark.slow
def test_report_names_the_runs_it_left_out(tmp_path):
  _law_table(tmp_path / "records.csv")
  r = run([PY, "-m", "mmscale", "report", f"--records={tmp_path / 'records.csv'}",
           f"--out={tmp_path / 'report'}"], timeout=300)
  assert r.returncode == 0, r.stderr[-2000:]
  note = ("left out 2 runs: blown (diverged: gradient norm is inf at step 61); "
          "nan (no row with a finite loss and positive params and tokens)")
  assert f"report: {note}" in r.stdout.splitlines()
  assert "9 finished runs" in r.stdout
  assert f"not drawn or fitted: {note}" in open(tmp_path / "report" / "index.html").read()


@pytest.mark.slow
def test_branches_a_diverged_trunk_never_reached_are_blocked(tmp_path):
  root = str(tmp_path)
  r = run(sweep_cmd(root, "cooldown", 1), FAKE_DIVERGE="fake_s32_trunk")
  assert r.returncode == 1, r.stderr[-2000:]  # Not every run could be done.
  status = _status(root)
  trunk = next(k for k in status if k.startswith("fake_s32_trunk"))
  assert status[trunk]["status"] == "diverged"
  branches = {k: v for k, v in status.items() if k.startswith("fake_s32_C")}
  ready = {k: os.path.isdir(os.path.join(root, trunk, "checkpoints",
                                          str(json.load(open(os.path.join(root, k, "run.json")))[
                                              "depends_step"]))) for k in branches}
  assert sorted(ready.values()) == [False, True, True]  # The last branch point was never reached.
  for k, v in branches.items():
    assert v["status"] == ("done" if ready[k] else "blocked"), (k, v)
  assert all(v["status"] == "done" for k, v in status.items() if "s16" in k)

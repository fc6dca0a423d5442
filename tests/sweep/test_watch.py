"""Watching a sweep: per-run step, loss, throughput and ETA, totals per status, the sweep's ETA,
in `mmscale status` and live on the console of `mmscale sweep`."""

import io
import json
import os
import time

import pytest

from mmscale.sweep import claims, registry
from mmscale.sweep import status as status_lib
from mmscale.sweep import watch
from mmscale.train import records as rec

from sweep_helpers import PY, load_fake_study, run, sweep_cmd


def _train(step, tokens, wall, loss):
  return {"kind": "train", "run_id": "x", "step": step, "tokens": tokens, "loss": loss,
          "grad_norm": 1.0, "lr": 1e-3, "wall_time": wall}


@pytest.fixture
def root(tmp_path):
  """The cool-down fake study on disk: s16's trunk done, s32's trunk running at step 10 of 18,
  one branch diverged, one failed, the other four pending."""
  st = load_fake_study("cooldown")
  root = str(tmp_path)
  registry.write_specs(root, st.specs)
  specs = {s.run_id: s for s in st.specs}
  by = lambda pred: next(s for s in st.specs if pred(s))
  done = by(lambda s: s.kind == "trunk" and s.tags["size"] == "s16")
  running = by(lambda s: s.kind == "trunk" and s.tags["size"] == "s32")
  diverged = by(lambda s: s.kind == "branch" and s.tags["size"] == "s16" and s.tags["budget"] == 6e8)
  failed = by(lambda s: s.kind == "branch" and s.tags["size"] == "s16" and s.tags["budget"] == 3e8)
  d = lambda s: registry.run_dir(root, s.run_id)
  rec.write_json_atomic(os.path.join(d(done), "summary.json"), {"status": "done", "step": done.steps})
  for r in (_train(done.steps, 999, 9.0, 1.25),):
    rec.append_record(os.path.join(d(done), "records.jsonl"), r)
  for r in (_train(4, 400, 1.0, 3.0), _train(8, 800, 3.0, 2.5), _train(10, 1050, 3.5, 2.25)):
    rec.append_record(os.path.join(d(running), "records.jsonl"), r)
  rec.write_json_atomic(os.path.join(d(diverged), "summary.json"),
                        {"status": "diverged", "step": 40, "reason": "training loss is nan at step 40"})
  rec.write_json_atomic(os.path.join(d(failed), registry.ERROR_FILE), {"exit_code": 1})
  claim = claims.try_claim(d(running), "test")  # Held by this (live) process: "running".
  info = claims.holder(d(running))
  info["time"] = 0.0  # Claimed before its records were written: they are this attempt's.
  with open(os.path.join(d(running), claims.CLAIM), "w") as f:
    json.dump(info, f)
  yield root, specs, running
  claim.release()


def test_status_per_run_and_in_total(root):
  root, specs, running = root
  rows = {r["run_id"]: r for r in status_lib.table(root)}
  r = rows[running.run_id]
  assert (r["status"], r["step"], r["loss"]) == ("running", 10, 2.25)
  # From the last two train records: 2 steps and 250 tokens in 0.5 s.
  assert r["tokens_per_s"] == 500.0
  assert r["eta_s"] == pytest.approx((running.steps - 10) / 4.0)
  assert r["flops_per_s"] == pytest.approx(4.0 * running.own_flops / running.steps)
  t = status_lib.totals(list(rows.values()))
  assert t["counts"] == {"done": 1, "running": 1, "pending": 4, "failed": 1, "diverged": 1}
  # Compute left: the running trunk's 8 of 18 steps plus every pending branch's cool-down (a
  # branch's own FLOPs; the failed and diverged runs wait for nobody).
  pending = [s for s in specs.values() if rows[s.run_id]["status"] == "pending"]
  left = running.own_flops * (running.steps - 10) / running.steps + sum(s.own_flops for s in pending)
  assert t["remaining_flops"] == pytest.approx(left)
  assert t["eta_s"] == pytest.approx(left / r["flops_per_s"])
  text = status_lib.format_table(list(rows.values()))
  assert (f"total: 1 done · 1 running · 4 pending · 1 failed · 1 diverged · 500 tok/s · "
          f"ETA {status_lib.duration(t['eta_s'])}") in text
  line = next(l for l in text.splitlines() if l.startswith(running.run_id))
  assert " 10/18 " in line and " 2.2500 " in line and " 500 " in line
  done_line = next(l for l in text.splitlines() if l.startswith("fake_s16_trunk"))
  assert " 1.2500 " in done_line  # A finished run keeps its last loss.


def test_a_resumed_run_that_has_not_logged_yet_shows_no_rate(root):
  """Its records are older than its claim: their rate is the previous attempt's."""
  root, specs, running = root
  path = os.path.join(registry.run_dir(root, running.run_id), claims.CLAIM)
  info = json.load(open(path))
  info["time"] = time.time() + 5
  with open(path, "w") as f:
    json.dump(info, f)
  r = status_lib.run_status(root, running.run_id)
  assert (r["status"], r["step"], r["loss"]) == ("running", 10, 2.25)
  assert r["tokens_per_s"] is r["flops_per_s"] is r["eta_s"] is None


def test_a_status_mmscale_does_not_know_is_still_counted():
  rows = [{"status": "done", "own_flops": 1.0, "own_progress": 1.0, "tokens_per_s": None},
          {"status": "quarantined", "own_flops": 1.0, "own_progress": 0.0, "tokens_per_s": None}]
  assert status_lib.format_totals(status_lib.totals(rows)) == (
      "1 done · 0 running · 0 pending · 0 failed · 0 diverged · 1 quarantined · - tok/s · ETA 0m00s")


def test_watcher_eta_from_the_compute_done_since_it_started(root):
  root, specs, running = root
  out = io.StringIO()
  w = watch.Watcher(root, list(specs), every_s=1, stream=out, observe_s=30)
  w.tick()
  w.tick()  # Nothing changed: printed once.
  first = out.getvalue().splitlines()
  assert first[0].startswith("sweep 0m00s: 1 done · 1 running · 4 pending · 1 failed · 1 diverged")
  assert first[1:] == [f"  {running.run_id}  step 10/18  loss 2.2500  500 tok/s  ETA 0m02s"]
  assert len(first) == 2
  # 60 s later the trunk is at step 16: the ETA uses its current rate (no run finished yet).
  path = os.path.join(registry.run_dir(root, running.run_id), "records.jsonl")
  rec.append_record(path, _train(16, 1650, 5.0, 2.0))
  rows = lambda: [status_lib.run_status(root, r) for r in specs]
  now = status_lib.run_status(root, running.run_id)
  left = status_lib.totals(rows())["remaining_flops"]
  assert now["flops_per_s"] == pytest.approx(4.0 * running.own_flops / running.steps)
  assert w.snapshot(now=w._start + 60).startswith(
      f"sweep 1m00s: 1 done · 1 running · 4 pending · 1 failed · 1 diverged · 400 tok/s · "
      f"ETA {status_lib.duration(left / now['flops_per_s'])}")
  # At 120 s it is done: the rate is now the compute done since the start (8 of its 18 steps'
  # FLOPs in 120 s, start-up included), over what the pending branches still have to do.
  rec.write_json_atomic(os.path.join(registry.run_dir(root, running.run_id), "summary.json"),
                        {"status": "done", "step": running.steps})
  rate = running.own_flops * 8 / running.steps / 120
  left = status_lib.totals(rows())["remaining_flops"]
  assert w.snapshot(now=w._start + 120) == (
      f"sweep 2m00s: 2 done · 0 running · 4 pending · 1 failed · 1 diverged · - tok/s · "
      f"ETA {status_lib.duration(left / rate)}")


def test_sweep_prints_its_progress_as_it_goes(tmp_path):
  root = str(tmp_path)
  r = run(sweep_cmd(root, "two", 1, "--progress_s=0.2"), FAKE_STEP_S=0.05)
  assert r.returncode == 0, r.stderr[-2000:]
  lines = r.stdout.splitlines()
  reports = [l for l in lines if l.startswith("sweep ")]
  assert reports[0].split(": ", 1)[1].startswith("0 done · 0 running · 2 pending · 0 failed · 0 diverged")
  assert any(": 1 done · 1 running · 0 pending" in l for l in reports)
  assert "2 done · 0 running · 0 pending · 0 failed · 0 diverged" in reports[-1]
  # Each running run's step and last loss, as they change.
  running = [l for l in lines if l.startswith("  fake_s16_") and " step " in l and "loss -" not in l]
  assert len(running) >= 2
  blocks = []
  for l in lines:
    if l.startswith("sweep "):
      blocks.append([l.split(": ", 1)[1]])
    elif l.startswith("  ") and blocks:
      blocks[-1].append(l)
  assert all(a != b for a, b in zip(blocks, blocks[1:]))  # Printed only when something changed.
  status = run([PY, "-m", "mmscale", "status", f"--root={root}"])
  assert "total: 2 done · 0 running · 0 pending · 0 failed · 0 diverged · - tok/s · ETA 0m00s" in status.stdout
  rows = json.loads(run([PY, "-m", "mmscale", "status", f"--root={root}", "--json"]).stdout)
  assert all(row["loss"] is not None and row["own_progress"] == 1.0 for row in rows)


@pytest.mark.slow
def test_the_readme_tensorboard_command_shows_every_run_of_a_root(tmp_path):
  """`tensorboard --logdir ROOT` (README, "Watch a sweep"): one TensorBoard run per run id."""
  import re
  import signal
  import subprocess
  import sys
  import time
  import urllib.request

  from mmscale import config as config_lib
  from mmscale.train.metrics import MetricWriter

  losses = {"study_a-0123456789": [3.0, 2.5], "study_b-9876543210": [4.0, 3.25]}
  for run_id, values in losses.items():
    w = MetricWriter(config_lib.base_config().run, str(tmp_path / run_id), run_id, 0)
    for i, v in enumerate(values):
      w.write(_train(10 * (i + 1), 100 * (i + 1), float(i + 1), v))
    w.close()
  cmd = [os.path.join(os.path.dirname(sys.executable), "tensorboard"), f"--logdir={tmp_path}",
         "--port=0"]
  p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  try:
    port = None
    for line in p.stdout:  # "TensorBoard 2.21.0 at http://localhost:PORT/ (Press CTRL+C to quit)"
      m = re.search(r"http://[^:]+:(\d+)/", line)
      if m:
        port = int(m.group(1))
        break
    assert port, "tensorboard did not start"
    get = lambda path: json.load(urllib.request.urlopen(f"http://localhost:{port}{path}", timeout=10))
    deadline = time.time() + 60
    while sorted(get("/data/runs")) != sorted(losses) and time.time() < deadline:
      time.sleep(0.5)
    assert sorted(get("/data/runs")) == sorted(losses)
    for run_id, values in losses.items():
      points = get(f"/data/plugin/scalars/scalars?run={run_id}&tag=train/loss")
      while len(points) < 2 and time.time() < deadline:
        time.sleep(0.5)
        points = get(f"/data/plugin/scalars/scalars?run={run_id}&tag=train/loss")
      assert [(step, value) for _, step, value in points] == [(10, values[0]), (20, values[1])]
  finally:
    p.send_signal(signal.SIGINT)
    try:
      p.wait(timeout=10)
    except subprocess.TimeoutExpired:
      p.kill()

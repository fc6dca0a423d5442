"""`mmscale demo` end to end on the reduced study (experiments/demo.py:quick): real data, 18 runs,
fit, report, and a headline whose every line is computed from the collected records."""

import csv
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from mmscale.laws import table as tbl
from mmscale.report import headline as hl

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
  out = tmp_path_factory.mktemp("demo")
  # As `make demo` runs it: one CPU device (conftest forces 8 for the sharding tests).
  env = {**{k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}, "JAX_PLATFORMS": "cpu"}
  proc = subprocess.run(
      [sys.executable, "-m", "mmscale", "demo", f"--out={out}", "--study=experiments/demo.py:quick",
       "--bootstrap=4"], cwd=REPO, env=env, capture_output=True, text=True, timeout=3600)
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  return out, proc.stdout


from helpers import csv_rows as _rows  # pylint: disable=g-import-not-at-top  (tests/helpers.py)


@pytest.mark.slow
def test_headline_is_the_records_answer(demo):
  out, stdout = demo
  table = tbl.read_table(os.path.join(out, "records.csv"))
  printed = [line for line in hl.lines(hl.answers(table))]
  for line in printed:  # Every headline line, recomputed from the table, is what the demo printed.
    assert line in stdout, line
  assert stdout.count("   verdict:  ") == 4
  for verdict in (line.split("verdict:  ")[1] for line in printed if "verdict:" in line):
    assert verdict in ("agrees", "disagrees", "not resolved at this scale")
  assert "time per stage" in stdout and "sweep" in stdout.split("time per stage")[1]
  assert os.path.exists(os.path.join(out, "report", "index.html"))


@pytest.mark.slow
def test_moe_effect_recomputed_by_hand_and_moved_by_the_records(demo):
  out, _ = demo
  rows = [r for r in _rows(os.path.join(out, "records.csv")) if r["final"] == "True"]
  # By hand: text loss pooled over validation sources by target counts, MoE minus dense per cell.
  pooled = {}
  for r in rows:
    key = (r["arch"], r["size"], r["budget"])
    nats, n = pooled.get(key, (0.0, 0.0))
    pooled[key] = (nats + float(r["loss_text"]) * float(r["targets_text"]), n + float(r["targets_text"]))
  diffs = [pooled[("early_moe", s, b)][0] / pooled[("early_moe", s, b)][1] - nats / n
           for (arch, s, b), (nats, n) in pooled.items() if arch == "early_dense"]
  table = tbl.read_table(os.path.join(out, "records.csv"))
  ans = hl.answers(table)
  assert ans["moe_vs_dense"]["effect"] == pytest.approx(float(np.mean(diffs)), rel=1e-9)
  assert ans["moe_vs_dense"]["cells"] == len(diffs) == 6
  # Perturbed records move the headline: MoE 0.5 nats worse everywhere -> effect +0.5, "disagrees".
  worse = dict(table)
  worse["loss_text"] = table["loss_text"] + np.where(table["arch"] == "early_moe", 0.5, 0.0)
  moved = hl.answers(worse)["moe_vs_dense"]
  assert moved["effect"] == pytest.approx(ans["moe_vs_dense"]["effect"] + 0.5, rel=1e-9)
  assert moved["verdict"] == "disagrees"
  # And the image loss moves the per-modality exponents, not the text one.
  img = dict(table)
  img["loss_image"] = table["loss_image"] * np.exp(0.3 * np.log(table["params"]) / 10)
  a, b = ans["data_exponent"], hl.answers(img)["data_exponent"]
  if "effect" in a and "effect" in b:
    assert b["b_text"] == pytest.approx(a["b_text"], rel=1e-12) and b["b_image"] != a["b_image"]


@pytest.mark.slow
def test_design_images_are_a_third_of_the_tokens_and_losses_are_per_modality(demo):
  out, _ = demo
  rows = [r for r in _rows(os.path.join(out, "records.csv")) if r["final"] == "True"]
  share = [float(r["tokens_image"]) / float(r["tokens"]) for r in rows]
  assert min(share) >= 0.30, min(share)
  for r in rows:
    if r["source"] == "fashion_mnist":
      assert float(r["loss_image"]) > 0 and float(r["bpb_image"]) > 0 and float(r["bpb_text"]) > 0
  assert {r["arch"] for r in rows} == {"early_dense", "early_moe", "late_dense"}
  late = [r for r in rows if r["arch"] == "late_dense"]
  assert all(r["flops_formula"] == "C=6(N_v*D_v+N*D)" for r in late)
  for r in rows:  # Every run lands within a few % of its budget, late fusion's encoder included.
    assert math.isclose(float(r["flops"]), float(r["budget"]), rel_tol=0.05), r["run_id"]

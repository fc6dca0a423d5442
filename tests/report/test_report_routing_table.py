"""The table carries the MoE routing: `mmscale collect` writes each eval's routing into records.csv,
and `mmscale report --records=X.csv` alone draws the experts panel from it."""

import csv
import json
import shutil

import numpy as np
import pytest

import report_synthetic as synthetic
from mmscale.report import cli
from mmscale.report import table as report_table
from mmscale.sweep import collect


def _sweep(tmp_path):
  rows, routes = synthetic.rows(families=[("early", "dense"), ("early", "moe")])
  root = synthetic.write_root(tmp_path / "sweep", rows, routes)
  # The last eval of one MoE run routes differently: the table must carry the routing of each eval.
  moe_run = sorted(routes)[0]
  path = root / moe_run / "records.jsonl"
  records = [json.loads(line) for line in path.read_text().splitlines()]
  last = max(r["step"] for r in records)
  late = synthetic.routing_counts(np.random.default_rng(7), n_layers=4, n_experts=8)
  for r in records:
    if r["step"] == last:
      r["routing"] = late
  path.write_text("".join(json.dumps(r) + "\n" for r in records))
  return root, {**routes, moe_run: late}, moe_run, last


def test_collect_writes_each_evals_routing_into_the_table(tmp_path):
  root, last_routes, moe_run, last = _sweep(tmp_path)
  out = tmp_path / "records.csv"
  collect.collect(str(root), str(out))
  with open(out, newline="") as f:
    rows = list(csv.DictReader(f))
  for r in rows:
    if r["run_id"] not in last_routes:
      assert r["routing"] == "", r["run_id"]  # dense runs route nothing
    elif r["run_id"] != moe_run or int(r["step"]) == last:
      assert json.loads(r["routing"]) == last_routes[r["run_id"]]
    else:
      assert json.loads(r["routing"]) != last_routes[moe_run]  # an earlier eval keeps its own
  # The report takes the last routing of each run, from the table alone.
  assert report_table.routing_from_table(report_table.read_csv(out)) == last_routes


@pytest.mark.slow
def test_report_from_the_table_alone_draws_the_experts_panel(tmp_path, capsys):
  root, _, _, _ = _sweep(tmp_path)
  csv_path = tmp_path / "records.csv"
  collect.collect(str(root), str(csv_path))
  shutil.rmtree(root)
  root.mkdir()  # The sweep is gone: whatever the report draws comes from the table alone.
  fit = {"law": "chinchilla", "group_by": ["ffn"], "groups": {
      f"ffn={m}": synthetic.LAWS[("early", m)] for m in ("dense", "moe")}}
  (tmp_path / "fit.json").write_text(json.dumps(fit))
  out = tmp_path / "rep"
  # --root next to --records is accepted and said to be unneeded (one report checks both: drawing
  # all figures is most of this test's time).
  assert cli.main(["report", f"--records={csv_path}", f"--root={root}",
                   f"--fit={tmp_path / 'fit.json'}", f"--out={out}"]) == 0
  assert "is not needed with --records" in capsys.readouterr().out
  html = (out / "index.html").read_text()
  assert "<section id='experts'>" in html and (out / "experts.png").exists()

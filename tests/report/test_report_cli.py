"""mmscale report end to end on synthetic tables drawn from a known law."""

import json
import re

import numpy as np
import pytest
from PIL import Image

import report_synthetic as synthetic
from mmscale.errors import UserError
from mmscale.report import cli

ALL_SECTIONS = {"isoflop", "frontier", "optimal", "contours", "predicted", "coefficients", "sources",
                "modalities", "compare_fusion", "compare_ffn", "experts", "curves"}


def images_of(index):
  return re.findall(r"<img src='([^']+)'", index.read_text())


def test_report_from_table_and_fit_json(full_report):
  out, printed = full_report
  assert "report: drew IsoFLOP curves -> isoflop.png" in printed  # progress while it works
  html = (out / "index.html").read_text()
  sections = set(re.findall(r"<section id='([^']+)'>", html))
  assert sections == ALL_SECTIONS
  assert "Figures not drawn" not in html
  assert "http://" not in html and "https://" not in html  # opens offline
  imgs = images_of(out / "index.html")
  assert len(imgs) == len(ALL_SECTIONS) - 1  # every section but the table has a figure
  for src in imgs:
    with Image.open(out / src) as im:
      assert im.size[0] > 300 and im.size[1] > 200
    svg = (out / src).with_suffix(".svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
  # Conventions and units are marked on the figures (SVG text stays text).
  iso = (out / "isoflop.svg").read_text()
  assert "C = 6ND" in iso and "embeddings included" in iso and "parameters N" in iso
  assert "FLOPs" in (out / "frontier.svg").read_text()
  assert "bits per raw byte" in (out / "modalities.svg").read_text()
  # The coefficient table puts the given law beside the published rows that match the study.
  assert "Late fusion, AVG (Shukor et al. 2025)" in html
  assert "Sparse early fusion" in html
  assert "0.34" in html  # alpha of the early-fusion law


def test_report_fits_and_recovers_the_law(tmp_path):
  rows, _ = synthetic.rows(families=[("early", "dense")], noise=0.0005)
  csv = synthetic.write_csv(tmp_path / "one.csv", rows)
  out = tmp_path / "rep"
  assert cli.main(["report", f"--records={csv}", f"--out={out}", "--source=text",
                   "--heldout=largest"]) == 0
  fit = json.loads((out / "fit.json").read_text())  # the fit made here, as a Fit JSON
  true = synthetic.LAWS[("early", "dense")]
  assert fit["alpha"] == pytest.approx(true["alpha"], abs=0.02)
  assert fit["beta"] == pytest.approx(true["beta"], abs=0.02)
  assert fit["E"] == pytest.approx(true["E"], abs=0.05)  # the text source has no offset
  # Approach 2 on the grid gives the closed-form exponent a = beta / (alpha + beta).
  assert fit["isoflop"]["a"] == pytest.approx(true["beta"] / (true["alpha"] + true["beta"]), abs=0.03)
  html = (out / "index.html").read_text()
  assert "held-out MAE" in html
  skipped = dict(re.findall(r"<p class=skip><b>([^<]+)</b>: ([^<]+)</p>", html))
  assert set(skipped) == {"Architecture and mixture comparisons", "MoE expert specialization"}
  assert "no MoE runs" in skipped["MoE expert specialization"]
  assert not (out / "experts.png").exists()


def test_single_eval_table_says_what_it_cannot_draw(tmp_path):
  rows, _ = synthetic.rows(families=[("early", "dense")])
  rows = [r for r in rows if r["final"] and r["source"] == "text"]
  for r in rows:  # A hand-made table: no step, source, budget; exact FLOPs.
    for k in ("step", "source", "budget", "final", "loss_image", "bpb_image", "bpb"):
      r.pop(k)
    r["flops_formula"] = "exact"
  csv = synthetic.write_csv(tmp_path / "plain.csv", rows)
  out = tmp_path / "rep"
  fit = {"E": 1.9, "A": 400.0, "B": 2000.0, "alpha": 0.34, "beta": 0.37}
  (tmp_path / "fit.json").write_text(json.dumps(fit))
  assert cli.main(["report", f"--records={csv}", f"--fit={tmp_path / 'fit.json'}",
                   f"--out={out}"]) == 0
  html = (out / "index.html").read_text()
  for name in ("Per validation source", "Per modality", "Training curves",
               "MoE expert specialization"):
    assert f"<b>{name}</b>" in html
  assert "C = exact" in (out / "isoflop.svg").read_text()


@pytest.mark.parametrize("argv, message", [
    ([], "--out=REPORT_DIR is required"),
    (["--out=x"], "give --root=SWEEP_DIR or --records=TABLE.csv"),
    (["--out=x", "--records=/nonexistent.csv"], "--records=/nonexistent.csv: no such file"),
])
def test_user_errors(argv, message, tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  with pytest.raises(UserError, match=re.escape(message)):
    cli.main(["report"] + argv)


def test_bad_fit_json_and_metric(synthetic_files, tmp_path):
  bad = tmp_path / "bad.json"
  bad.write_text("{not json")
  with pytest.raises(UserError, match="not valid JSON"):
    cli.main(["report", f"--records={synthetic_files['csv']}", f"--fit={bad}", f"--out={tmp_path}"])
  with pytest.raises(UserError, match=r"--source=nope: not in the table \(has caption, interleaved, text\)"):
    cli.main(["report", f"--records={synthetic_files['csv']}", "--source=nope", f"--out={tmp_path}"])
  with pytest.raises(UserError, match="--group_by=colour: no such column"):
    cli.main(["report", f"--records={synthetic_files['csv']}", "--group_by=colour", f"--out={tmp_path}"])
  with pytest.raises(UserError, match="--metric=nope: no such column"):
    cli.main(["report", f"--records={synthetic_files['csv']}", "--metric=nope",
              f"--out={tmp_path}"])


def test_minimal_rows_of_a_mixed_convention_table_are_flagged(tmp_path):
  from mmscale.report import table
  t = {"run_id": np.array(["a", "b"]), "loss": np.array([3.0, 2.9]),
       "params": np.array([1e6, 2e6]), "tokens": np.array([1e9, 1e9]),
       "flops_formula": np.array(["6ND", "exact"])}
  line = table.convention(t)
  assert "MIXED FLOPs conventions" in line and "embeddings included" in line


@pytest.mark.slow
def test_report_from_a_sweep_root_reads_routing_from_records(tmp_path):
  rows, routes = synthetic.rows(families=[("early", "dense"), ("early", "moe")])
  root = synthetic.write_root(tmp_path / "sweep", rows, routes)
  fit = {"law": "chinchilla", "group_by": ["ffn"], "groups": {
      f"ffn={m}": synthetic.LAWS[("early", m)] for m in ("dense", "moe")}}
  (tmp_path / "fit.json").write_text(json.dumps(fit))
  out = tmp_path / "rep"
  assert cli.main(["report", f"--root={root}", f"--fit={tmp_path / 'fit.json'}", f"--out={out}"]) == 0
  assert (out / "records.csv").exists()  # the collected table is kept beside the report
  html = (out / "index.html").read_text()
  assert "<section id='experts'>" in html and "<section id='compare_ffn'>" in html
  assert (out / "experts.png").exists()


def test_dispatcher_turns_report_mistakes_into_exit_2(capsys):
  from mmscale import cli as top
  assert top.run(["mmscale", "report", "--records=x.csv"]) == 2
  assert "mmscale: error: --out=REPORT_DIR is required" in capsys.readouterr().err

"""The demo's headline (mmscale/headline.py) on synthetic tables whose answers are known."""

import csv
import math

import numpy as np
import pytest

from mmscale.report import headline as hl
from mmscale.laws import table as tbl

WIDTHS = {f"s{k}": 1e3 * 2 ** k for k in range(7)}  # 1k ... 64k parameters.
BUDGETS = (5e10, 1e11, 2e11, 4e11)
# Per modality (E, A, alpha, B, beta): D_opt ∝ C^b with b = alpha / (alpha + beta); the constants
# put N_opt at 5k-15k (text) and 8k-16k (image) over the budgets, inside the sizes.
LAWS = {"text": (1.0, 10.0, 0.4, 100.0, 0.4), "image": (0.5, 52.0, 0.6, 30.0, 0.3)}


def law(m, n, d):
  e, a, alpha, b, beta = LAWS[m]
  return e + a / n ** alpha + b / d ** beta


def make_table(offsets=None, noise=0.0, seed=0, sources=("s1",)):
  """A collect-shaped table: arch x size x budget final rows, plus a non-final row that must be ignored."""
  offsets = offsets or {"early_dense": 0.0, "early_moe": -0.02, "late_dense": 0.03}
  rng = np.random.default_rng(seed)
  rows = []
  for arch, off in offsets.items():
    for size, n in WIDTHS.items():
      for c in BUDGETS:
        d = c / (6 * n)
        rid = f"{arch}_{size}_{c:g}"
        text = law("text", n, d) + off + noise * rng.standard_normal()
        image = law("image", n, d) + off + noise * rng.standard_normal()
        for j, src in enumerate(sources):
          rows.append({"run_id": rid, "step": 100, "source": src, "arch": arch, "size": size,
                       "budget": c, "params": n, "flops": c, "final": "True",
                       "loss_text": text + 0.1 * j, "targets_text": 100 * (j + 1), "bpb_text": 2.0,
                       "loss_image": image, "targets_image": 50, "bpb_image": 0.5})
        rows.append({**rows[-1], "step": 50, "final": "False", "loss_text": 99.0})
  header = list(rows[0])
  return tbl.from_rows(header, [[str(r[k]) for k in header] for r in rows])


def test_effects_are_the_paired_means_and_verdicts_follow_the_sign():
  ans = hl.answers(make_table())
  assert ans["runs"] == 84
  assert ans["moe_vs_dense"]["effect"] == pytest.approx(-0.02, abs=1e-12)
  assert ans["moe_vs_dense"]["cells"] == 28
  assert ans["moe_vs_dense"]["verdict"] == "agrees"
  assert ans["early_vs_late"]["effect"] == pytest.approx(0.03, abs=1e-12)
  assert ans["early_vs_late"]["verdict"] == "agrees"
  flipped = hl.answers(make_table({"early_dense": 0.0, "early_moe": 0.05, "late_dense": -0.01}))
  assert flipped["moe_vs_dense"]["verdict"] == "disagrees"
  assert flipped["early_vs_late"]["verdict"] == "disagrees"
  assert flipped["moe_vs_dense"]["effect"] == pytest.approx(0.05, abs=1e-12)


def test_an_interval_across_zero_is_not_resolved():
  assert hl.verdict(-0.01, 0.02, -1) == hl.verdict(-0.01, 0.02, +1) == "not resolved at this scale"
  assert hl.verdict(0.001, 0.02, +1) == "agrees" and hl.verdict(0.001, 0.02, -1) == "disagrees"
  # The intervals are 95 % intervals: over many null samples of 20 cells they hold zero ~95 % of
  # the time (the percentile bootstrap runs a little short at n = 20).
  rng = np.random.default_rng(1)
  held = [lo < 0 < hi for lo, hi in (hl.bootstrap_mean(rng.standard_normal(20), n=500, seed=s)[1:]
                                     for s in range(300))]
  assert 0.88 <= np.mean(held) <= 0.99


def test_data_exponents_recover_the_laws():
  ans = hl.answers(make_table())["data_exponent"]
  # Parabolas in log N are an approximation of the laws' valleys: within a few hundredths.
  assert ans["b_text"] == pytest.approx(0.4 / 0.8, abs=0.05)
  assert ans["b_image"] == pytest.approx(0.6 / 0.9, abs=0.05)
  assert ans["effect"] == pytest.approx(ans["b_image"] - ans["b_text"])
  assert ans["budgets"] == 4 and ans["verdict"] == "agrees"


def test_bits_per_byte_ratio_and_margin():
  ans = hl.answers(make_table())["bits_per_byte"]
  assert ans["effect"] == pytest.approx(math.log2(0.5 / 2.0))  # A factor 4 apart: not comparable.
  assert ans["verdict"] == "disagrees"
  assert hl.verdict(-0.5, 0.5, 0) == "agrees"
  assert hl.verdict(0.5, 1.5, 0) == "not resolved at this scale"


def test_sources_are_pooled_by_their_target_counts():
  runs = hl.final_runs(make_table(sources=("s1", "s2")))
  r = runs[0]
  # s1 has 100 text targets at loss L, s2 has 200 at L + 0.1: pooled = L + 0.2/3.
  n, c = r["params"], r["budget"]
  expected = law("text", n, c / (6 * n)) + hl.final_runs(make_table())[0]["loss_text"] - law("text", n, c / (6 * n))
  assert r["loss_text"] == pytest.approx(expected + 0.1 * 200 / 300)
  assert all(r["loss_text"] < 50 for r in runs)  # The non-final rows (loss 99) are left out.


def test_headline_lines_name_every_question_and_verdict():
  text = "\n".join(hl.lines(hl.answers(make_table())))
  for k in range(1, 5):
    assert f"Q{k} " in text
  assert text.count("verdict:") == 4 and text.count("seed:") == 4
  assert "95% CI [-0.0200, -0.0200]" in text


def test_missing_architecture_is_named_not_guessed(tmp_path):
  t = make_table({"early_dense": 0.0, "early_moe": -0.02})
  ans = hl.answers(t)
  assert ans["early_vs_late"]["verdict"] == "not resolved at this scale"
  assert "late_dense" in ans["early_vs_late"]["error"]


def test_question_panels_draw_valleys_and_frontiers(tmp_path):
  import types

  from etils import epath

  from mmscale.report import questions, style
  ctx = types.SimpleNamespace(table=make_table(), out_dir=epath.Path(tmp_path), convention="C=6ND")
  (section,) = questions.draw(ctx)
  assert section.images == ["questions_valleys", "questions_frontiers"] and not section.notes
  assert (tmp_path / "questions_valleys.png").stat().st_size > 10_000
  no_image = make_table()
  del no_image["loss_image"]
  ctx.table = no_image
  (section,) = questions.draw(ctx)
  assert section.images == ["questions_frontiers"]
  assert "text and image losses are needed" in section.notes[0]
  ctx.table = {k: v for k, v in no_image.items() if k != "arch"}
  assert questions.draw(ctx) == []  # Another study's report has no such section, drawn or skipped.
  ctx.table = {**no_image, "arch": np.array(["other"] * len(no_image["arch"]))}
  with pytest.raises(style.CannotDraw, match="no early_dense"):
    questions.draw(ctx)


def test_data_exponent_has_no_interval_without_valleys_or_residuals():
  # 3 sizes per budget: the parabolas pass through every point, nothing is left to resample.
  t = make_table()
  keep = np.isin(t["size"], ["s2", "s3", "s4"])
  a = hl.answers(tbl.subset(t, keep))["data_exponent"]
  assert math.isnan(a["lo"]) and a["verdict"] == "not resolved at this scale"
  assert any("no residual" in n for n in a["notes"])
  # Sizes all below the optimum: the lowest loss is at the largest size, N_opt is extrapolated.
  small = hl.answers(tbl.subset(t, np.isin(t["size"], ["s0", "s1", "s2"])))["data_exponent"]
  assert small["interior"] == {"text": 0, "image": 0} and small["verdict"] == "not resolved at this scale"
  assert "95% CI undefined" in "\n".join(hl.lines(hl.answers(tbl.subset(t, keep))))


def test_each_exponent_has_its_own_interval_around_it():
  a = hl.answers(make_table(noise=0.005))["data_exponent"]
  for m in ("text", "image"):
    lo, hi = a[f"ci_{m}"]
    assert lo <= a[f"b_{m}"] <= hi and hi - lo > 0
  assert f"b_text {a['b_text']:.3f} [" in "\n".join(hl.lines(hl.answers(make_table(noise=0.005))))

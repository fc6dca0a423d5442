"""Two machines' headlines compared: same verdicts and each effect inside the other's interval."""

import json
import subprocess
import sys

from mmscale.report import agreement
from mmscale.report.headline import FINDINGS

IDS = [f"demo_early_dense_w{w}_C{c}-{w}{c}" for w in (8, 16) for c in ("5e10", "1e11")]


def _headline(shift=0.0, verdict="not resolved at this scale", ids=IDS):
  ans = {"study": agreement.study_identity(ids)}
  for q in FINDINGS:
    ans[q] = {"effect": -0.01 + shift, "lo": -0.04 + shift, "hi": 0.02 + shift, "verdict": verdict}
  return ans


def test_study_identity_is_the_set_of_runs_whatever_their_order():
  a = agreement.study_identity(IDS)
  assert a == agreement.study_identity(list(reversed(IDS)) + IDS[:1])
  assert a["runs"] == 4 and a != agreement.study_identity(IDS[:3])


def test_rounding_sized_differences_agree():
  r = agreement.compare(_headline(), _headline(shift=0.005))
  assert r["comparable"] and r["all_agree"]
  row = r["questions"]["moe_vs_dense"]
  assert row["mine_in_ref"] and row["ref_in_mine"] and row["same_verdict"]


def test_an_effect_outside_the_other_interval_differs_even_with_the_same_verdict():
  other = _headline()
  other["early_vs_late"] = {"effect": 0.05, "lo": 0.03, "hi": 0.07, "verdict": "not resolved at this scale"}
  r = agreement.compare(_headline(), other)
  assert not r["all_agree"]
  row = r["questions"]["early_vs_late"]
  assert row["same_verdict"] and not row["mine_in_ref"] and not row["ref_in_mine"]
  assert [q for q, x in r["questions"].items() if not x["agrees"]] == ["early_vs_late"]
  assert "DIFFERS on Q2" in agreement.lines(r, "ref")[0]


def test_a_different_verdict_differs():
  other = _headline()
  other["data_exponent"]["verdict"] = "agrees"
  r = agreement.compare(_headline(), other)
  assert not r["questions"]["data_exponent"]["agrees"]
  assert "verdict 'not resolved at this scale' vs 'agrees'" in "\n".join(agreement.lines(r, "ref"))


def test_headlines_of_different_runs_are_not_compared():
  r = agreement.compare(_headline(), _headline(ids=IDS[:3]))
  assert not r["comparable"] and "different runs (4 vs 3 runs" in r["why"]
  assert agreement.lines(r, "ref")[0].startswith("agreement with ref: not comparable: different runs")


def test_cli_exit_codes(tmp_path):
  a, b, bad = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "bad.json"
  a.write_text(json.dumps(_headline()))
  b.write_text(json.dumps(_headline(shift=1.0)))
  bad.write_text("{not json")

  def run(*args):
    return subprocess.run([sys.executable, "-m", "mmscale.report.agreement", *map(str, args)],
                          capture_output=True, text=True, timeout=120)

  same, differ, broken = run(a, a), run(a, b), run(a, bad)
  assert same.returncode == 0 and "every question agrees" in same.stdout
  assert differ.returncode == 1 and "DIFFERS on Q1, Q2, Q3, Q4" in differ.stdout
  assert broken.returncode == 2 and broken.stderr.startswith(f"mmscale: error: {bad}: cannot read a headline")
  assert len(broken.stderr.strip().splitlines()) == 1


def test_a_headline_without_identity_is_not_compared():
  old = _headline()
  del old["study"]
  assert not agreement.compare(old, _headline())["comparable"]

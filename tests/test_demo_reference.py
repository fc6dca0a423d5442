"""The demo's shipped reference headline belongs to the demo as it is planned now.

`mmscale demo` compares its headline with experiments/demo_reference.json (a full run on another
machine). That comparison is only meaningful for the same runs, so a change to the study (a width,
a budget, a default that moves a run id) must come with a new reference: this test reads the run
ids from the study's golden dump (tests/golden/demo.txt, itself checked against the plan) and
fails when they are not the reference's runs.
"""

import json
import os

from mmscale.report import agreement
from mmscale.report.headline import FINDINGS

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VERDICTS = ("agrees", "disagrees", "not resolved at this scale")


def _golden_cells() -> list[str]:
  """Run ids of the demo's (size, budget) cells: the branches of its golden run list."""
  with open(os.path.join(REPO, "tests", "golden", "demo.txt"), encoding="utf-8") as f:
    runs = f.read().split("## runs", 1)[1].splitlines()[1:]
  return [line.split(":", 1)[0] for line in runs if " kind=branch " in line]


def test_reference_is_a_full_run_of_the_current_study():
  with open(os.path.join(REPO, "experiments", "demo_reference.json"), encoding="utf-8") as f:
    ref = json.load(f)
  cells = _golden_cells()
  assert len(cells) == ref["runs"] == ref["study"]["runs"]
  assert ref["study"] == agreement.study_identity(cells), (
      "experiments/demo_reference.json is from another version of the study: run `mmscale demo "
      "--out=DIR` and copy DIR/headline.json there")
  for q in FINDINGS:
    assert ref[q]["verdict"] in VERDICTS and ref[q]["lo"] <= ref[q]["effect"] <= ref[q]["hi"], q
  assert ref["machine"]["cores"] >= 1 and ref["machine"]["jax"]

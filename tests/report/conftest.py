"""Report test fixtures: synthetic tables drawn from a known law, and a headless Chromium."""

import os
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import report_synthetic as synthetic  # noqa: E402


@pytest.fixture(scope="session")
def synthetic_files(tmp_path_factory):
  """CSV of three families (early/late dense, early MoE), their routing JSON and a true-law Fit JSON."""
  d = tmp_path_factory.mktemp("synthetic")
  rows, routes = synthetic.rows()
  fit = {"law": "chinchilla", "group_by": ["fusion", "ffn"], "groups": {
      f"fusion={f},ffn={m}": dict(law, n_points=20) for (f, m), law in synthetic.LAWS.items()}}
  # The fitted law is on the mean over sources: shift E by the mean source offset.
  for g in fit["groups"].values():
    g["E"] += sum(synthetic.SOURCES.values()) / len(synthetic.SOURCES)
  import json
  (d / "fit.json").write_text(json.dumps(fit))
  return {"csv": synthetic.write_csv(d / "all.csv", rows),
          "routing": synthetic.write_routing(d / "routing.json", routes), "fit": d / "fit.json"}


@pytest.fixture(scope="session")
def full_report(synthetic_files, tmp_path_factory):
  """(report dir, printed progress) of every figure family, drawn once for the session."""
  import contextlib
  import io
  from mmscale.report import cli
  out = tmp_path_factory.mktemp("report")
  buf = io.StringIO()
  with contextlib.redirect_stdout(buf):
    rc = cli.main(["report", f"--records={synthetic_files['csv']}", f"--fit={synthetic_files['fit']}",
                   f"--routing={synthetic_files['routing']}", f"--out={out}"])
  assert rc == 0
  return out, buf.getvalue()


@pytest.fixture(scope="session")
def chromium():
  """Path of a Chromium binary; installs Debian's `chromium` with apt-get when it is missing."""
  path = shutil.which("chromium") or shutil.which("chromium-browser")
  if path is None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update"], check=True, env=env, capture_output=True, timeout=600)
    subprocess.run(["apt-get", "install", "-y", "chromium"], check=True, env=env,
                   capture_output=True, timeout=900)
    path = shutil.which("chromium")
  assert path, "chromium is not installed and apt-get could not install it"
  return path

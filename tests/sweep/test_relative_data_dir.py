"""A data folder given relative to where `mmscale sweep` is typed is found by the runs, which
execute in the sweep root (reported by a user: --config.data.data_dir=demo_out/data failed every run
with 'no ArrayRecord shards ... at demo_out/data/brown')."""

import glob
import json
import os

from sweep_helpers import REPO, run, sweep_cmd


def test_relative_data_dir_is_made_absolute_and_keeps_the_run_ids(tmp_path):
  root_rel, root_abs = tmp_path / "rel", tmp_path / "abs"
  rel = os.path.relpath(tmp_path / "my data", REPO)  # `run` types the command in the repository.
  r = run(sweep_cmd(str(root_rel), "two", 1, f"--config.data.data_dir={rel}"))
  assert r.returncode == 0, r.stderr[-2000:]
  r = run(sweep_cmd(str(root_abs), "two", 1, f"--config.data.data_dir={tmp_path / 'elsewhere'}"))
  assert r.returncode == 0, r.stderr[-2000:]
  specs = sorted(glob.glob(str(root_rel / "*" / "run.json")))
  assert len(specs) == 2
  for spec in specs:
    with open(spec) as f:
      assert json.load(f)["config"]["data"]["data_dir"] == str(tmp_path / "my data")
  names = lambda root: sorted(os.path.basename(os.path.dirname(p)) for p in glob.glob(str(root / "*" / "run.json")))
  assert names(root_rel) == names(root_abs)  # data_dir is not part of a run's identity.

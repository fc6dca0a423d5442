"""Golden dumps: any change to a study's config, grid, run list or run ids is a reviewable diff.

Studies whose plan reads prepared data (conftest.NEEDS_DATA: the demo) are dumped from corpora
prepared for this session, not from whatever demo_out/ holds, so they run on a fresh clone too
(slow: the packages are fetched and converted, ~30 CPU-s and the download)."""

import os

import pytest

from mmscale.sweep import golden
from tests.golden.conftest import NEEDS_DATA

CASES = [pytest.param(s, a, id=f"{s}:{a}" if a else s,
                      marks=[pytest.mark.slow] if s in NEEDS_DATA else [])
         for s, a in golden.studies()]


def _want(study, arg):
  path = golden.golden_path(study, arg)
  assert os.path.exists(path), f"no golden dump for {study}:{arg}; python -m mmscale.sweep.golden --update"
  with open(path, encoding="utf-8") as f:
    return path, f.read()


@pytest.mark.parametrize("study,arg", CASES)
def test_dump_matches_its_golden_file(study, arg, request, monkeypatch, tmp_path):
  path, want = _want(study, arg)
  if study in NEEDS_DATA:
    data_dir = request.getfixturevalue("prepared_corpora")
    monkeypatch.setenv("MMSCALE_DATA_CACHE", str(tmp_path / "cache"))  # Length estimates.
    got = golden.dump(study, arg, data_dir)
  else:
    try:
      got = golden.dump(study, arg)
    except golden.NeedsData as e:
      pytest.fail(f"{e}; add {study} to tests/golden/conftest.py NEEDS_DATA")
  assert got == want, ("golden dump drifted (if intended: python -m mmscale.sweep.golden --update"
                       " [--data_dir=PREPARED])\n" + golden.drift_of(path, want, got))


@pytest.mark.slow
def test_a_dump_names_no_data_folder_but_the_studys(prepared_corpora, tmp_path, monkeypatch):
  """Wherever the data was prepared, the dump is the same text: the study's own data_dir."""
  monkeypatch.setenv("MMSCALE_DATA_CACHE", str(tmp_path / "cache"))
  elsewhere = tmp_path / "another name"
  elsewhere.symlink_to(prepared_corpora, target_is_directory=True)
  study, arg = "experiments/demo.py", "quick"
  texts = [golden.dump(study, arg, d) for d in (prepared_corpora, str(elsewhere))]
  assert texts[0] == texts[1]
  assert prepared_corpora not in texts[0] and "another name" not in texts[0]
  _, config = golden.config_of(study, arg)
  assert f'data.data_dir: "{config.data.data_dir}"'.replace(golden.REPO, "<repo>") in texts[0]


def test_a_plan_without_its_data_says_why(tmp_path, capfd):
  """`mmscale sweep --dry-run` of the demo without prepared data: one line saying what is missing
  and why the plan reads data; nothing written."""
  from mmscale import cli
  code = cli.run(["mmscale", "sweep", f"--config={golden.REPO}/experiments/demo.py",
                  f"--config.data.data_dir={tmp_path}/none", f"--root={tmp_path}/root", "--dry-run"])
  err = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
  assert code == 2 and len(err) == 1, err
  assert err[0].startswith("mmscale: error: config.data.streams.")
  assert "no ArrayRecord shards for split 'train'" in err[0]
  assert ("(the plan reads the data: with model.fusion='late' a run's steps per budget count its "
          "encoders' FLOPs on the share of media positions in its own batches") in err[0]
  assert sorted(os.listdir(tmp_path)) == []
  with pytest.raises(golden.NeedsData, match="the plan reads the data"):
    golden.dump("experiments/demo.py", "quick", str(tmp_path / "none"))


def test_every_golden_file_belongs_to_a_study():
  made = {golden.golden_path(s, a) for s, a in golden.studies()}
  on_disk = {os.path.join(golden.GOLDEN_DIR, n) for n in os.listdir(golden.GOLDEN_DIR)
             if n.endswith(".txt")}
  assert on_disk == made


def test_check_mode_reports_drift_and_update_repairs_it(tmp_path, monkeypatch, capsys):
  monkeypatch.setattr(golden, "GOLDEN_DIR", str(tmp_path))
  monkeypatch.setattr(golden, "studies", lambda: [("experiments/tiny.py", "")])
  assert golden.main(["golden", "--update"]) == 0
  path = tmp_path / "tiny.txt"
  path.write_text(path.read_text().replace("train.lr: 0.003", "train.lr: 0.001"))
  assert golden.main(["golden"]) == 1
  out = capsys.readouterr().out
  assert "-train.lr: 0.001\n+train.lr: 0.003" in out and "1 of 1 golden dumps drifted" in out
  (tmp_path / "stale.txt").write_text("x")
  assert golden.main(["golden", "--update"]) == 0
  assert golden.main(["golden"]) == 0 and not (tmp_path / "stale.txt").exists()
  assert golden.main(["golden", "--bogus"]) == 2
  assert golden.main(["golden", f"--data_dir={tmp_path}/none"]) == 2
  assert "--data_dir=" in capsys.readouterr().err
  assert golden.main(["golden", f"--data_dir={tmp_path}", "--update"]) == 2  # No manifest.json.

"""Golden dumps: any change to a study's config, grid, run list or run ids is a reviewable diff."""

import os

import pytest

from mmscale.sweep import golden


@pytest.mark.parametrize("study,arg", golden.studies(),
                         ids=[f"{s}:{a}" if a else s for s, a in golden.studies()])
def test_dump_matches_its_golden_file(study, arg):
  path = golden.golden_path(study, arg)
  assert os.path.exists(path), f"no golden dump for {study}:{arg}; python -m mmscale.sweep.golden --update"
  with open(path, encoding="utf-8") as f:
    want = f.read()
  try:
    got = golden.dump(study, arg)
  except golden.NeedsData as e:
    pytest.skip(f"needs prepared data (make demo prepares it): {e}")
  assert got == want, ("golden dump drifted (if intended: python -m mmscale.sweep.golden --update)\n"
                       + golden.drift_of(path, want, got))


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

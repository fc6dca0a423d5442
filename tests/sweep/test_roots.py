"""A URL root (gs://...) is refused in one line and never becomes a local folder named `gs:`."""

import subprocess
import sys

import pytest

from mmscale.errors import UserError
from mmscale.sweep import registry

from sweep_helpers import FAKE_STUDY, env

NO_GCSFS = ("mmscale: error: --root=gs://bucket/runs: the gs:// file system is not available here "
            "(Please install gcsfs to access Google Storage); give a local or mounted path\n")


@pytest.mark.parametrize("args", [
    ["sweep", f"--config={FAKE_STUDY}"], ["sweep", f"--config={FAKE_STUDY}", "--dry-run"],
    ["status"], ["collect", "--out=t.csv"]])
def test_a_gs_root_is_refused_without_creating_anything(tmp_path, args):
  r = subprocess.run([sys.executable, "-m", "mmscale", *args, "--root=gs://bucket/runs"],
                     cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=120)
  assert (r.returncode, r.stderr, r.stdout) == (2, NO_GCSFS, "")
  assert list(tmp_path.iterdir()) == []  # No `gs:` folder, no t.csv.


def test_a_url_root_whose_file_system_exists_still_needs_a_mount(monkeypatch):
  from etils import epath

  class Reachable:
    def __init__(self, path):
      self.path = path

    def exists(self):
      return True

  monkeypatch.setattr(epath, "Path", Reachable)
  with pytest.raises(UserError) as e:
    registry.prepare_root("gs://bucket/runs")
  assert str(e.value) == ("--root=gs://bucket/runs: a sweep root must be a mounted file system "
                          "(run claims need atomic file creation); mount gs:// (e.g. gcsfuse) and "
                          "pass the mount path")
  assert registry.check_root("/mnt/bucket/runs") == "/mnt/bucket/runs"

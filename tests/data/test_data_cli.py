import json

import pytest

from mmscale import cli as mm_cli
from mmscale.data import cli

CONFIG = """
import ml_collections
from mmscale.data import config as dc

def get_config():
  c = ml_collections.ConfigDict({"seed": 0, "data": dc.defaults()})
  c.data.batch_size = 8
  c.data.mix_by = "tokens"
  return c
"""


def test_stats_json(tmp_path, capsys):
  path = tmp_path / "cfg.py"
  path.write_text(CONFIG)
  assert cli.main(["data", "stats", f"--config={path}", "--sequences=400", "--json"]) == 0
  s = json.loads(capsys.readouterr().out)
  assert s["sequences"] >= 400 and s["mix_by"] == "tokens"
  assert set(s["realised_tokens"]) == {"caption", "interleaved", "text"}
  assert s["max_abs_error"] < 0.03
  assert s["tokens_per_raw_byte"]["image"] == pytest.approx(16 / (16 * 16 * 3))
  assert s["tokens_per_raw_byte"]["audio"] is None
  assert s["tokens_per_s"] > 0
  # A config override on the command line, and the table output.
  assert cli.main(["data", "stats", f"--config={path}", "--sequences=16",
                   "--config.data.mixture=caption=1,interleaved=0,text=0"]) == 0
  out = capsys.readouterr().out
  assert "caption" in out and "tokens/raw byte" in out


def test_user_errors_exit_2(tmp_path, capsys):
  path = tmp_path / "cfg.py"
  path.write_text(CONFIG)
  cases = [
      (["data", "prepare", f"--out={tmp_path}", "--corpora=imagenet"], "unknown corpus 'imagenet'"),
      (["data", "prepare"], "needs --out"),
      (["data", "stats", f"--config={path}", "--config.data.mixture=caption=-1"], "must be a finite number >= 0"),
      (["data", "stats", f"--config={path}", "--config.data.mixture=video=1"], "unknown stream 'video'"),
      (["data", "frobnicate"], "usage: mmscale data"),
  ]
  for argv, msg in cases:
    assert mm_cli.run(["mmscale"] + argv) == 2, argv
    err = capsys.readouterr().err
    assert err.startswith("mmscale: error: ") and msg in err, (argv, err)
    assert len(err.strip().splitlines()) == 1

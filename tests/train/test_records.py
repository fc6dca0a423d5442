"""Records: atomic appends, a torn last line ignored, corruption reported, resume truncation."""

import json

import pytest

from mmscale.errors import UserError
from mmscale.train import records as rec


def test_roundtrip_full_precision(tmp_path):
  p = tmp_path / "r.jsonl"
  x = 0.1 + 0.2  # 0.30000000000000004: must survive exactly.
  rec.append_record(p, {"step": 1, "loss": x})
  assert rec.read_records(p) == [{"step": 1, "loss": x}]


def test_torn_last_line_is_ignored_and_repaired(tmp_path):
  p = tmp_path / "r.jsonl"
  rec.append_record(p, {"step": 1})
  rec.append_record(p, {"step": 2})
  with open(p, "a") as f:
    f.write('{"step": 3, "lo')  # Killed mid-write.
  assert [r["step"] for r in rec.read_records(p)] == [1, 2]
  rec.append_record(p, {"step": 3})  # The next append drops the fragment, not a complete record.
  assert [r["step"] for r in rec.read_records(p)] == [1, 2, 3]
  assert open(p).read().count("\n") == 3


def test_corrupt_middle_line_is_an_error(tmp_path):
  p = tmp_path / "r.jsonl"
  p.write_text('{"step": 1}\nnot json\n{"step": 2}\n')
  with pytest.raises(UserError, match="line 2 is not valid JSON"):
    rec.read_records(p)


def test_keep_records_until(tmp_path):
  p = tmp_path / "r.jsonl"
  for s in (0, 10, 20, 30):
    rec.append_record(p, {"step": s})
  rec.keep_records_until(p, 20)
  assert [r["step"] for r in rec.read_records(p)] == [0, 10, 20]


def test_write_json_atomic(tmp_path):
  p = tmp_path / "s.json"
  rec.write_json_atomic(p, {"a": 1})
  rec.write_json_atomic(p, {"a": 2})
  assert json.loads(p.read_text()) == {"a": 2}
  assert [f.name for f in tmp_path.iterdir()] == ["s.json"]


def test_bits_per_byte():
  import math
  assert rec.bits_per_byte(math.log(2) * 8, 8) == pytest.approx(1.0)

import numpy as np
import pytest

from mmscale.data import config as data_config
from mmscale.data import pipeline, records
from mmscale.errors import UserError
from tests.data.conftest import make_config


def test_roundtrip_all_part_kinds():
  img = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
  wave = np.sin(np.arange(800) / 5).astype(np.float32) * 0.5
  parts = [("text", "héllo"), ("image", img), ("audio", (wave, 8000)), ("text", "end")]
  for fmt in ("png", "raw"):
    got, header = records.decode(records.encode(parts, "x1", {"licence": "CC0"}, image_format=fmt))
    assert header["id"] == "x1" and header["meta"] == {"licence": "CC0"}
    assert [k for k, _ in got] == ["text", "image", "audio", "text"]
    assert got[0][1] == "héllo" and got[3][1] == "end"
    np.testing.assert_array_equal(got[1][1], img)
    w, rate = got[2][1]
    assert rate == 8000
    np.testing.assert_allclose(w, wave, atol=1e-4)


def _truncated():
  rec = records.encode([("text", "a"), ("image", np.zeros((4, 4, 3), np.uint8))])
  return rec[:-5]  # The image's bytes run past the end of the record.


@pytest.mark.parametrize("bad", [b"garbage", b"MMS1\x05\x00\x00\x00{oops", _truncated()])
def test_corrupt_records_raise_corrupt(bad):
  with pytest.raises(records.CorruptRecord):
    records.decode(bad)


def test_corrupt_record_skipped_and_counted_or_error(tmp_path):
  good = [records.encode([("text", f"document {i} " * 5)]) for i in range(20)]
  recs = good[:7] + [b"not a record"] + good[7:]
  records.write_shards(tmp_path, "train", recs)
  records.write_shards(tmp_path, "validation", good[:3])
  c = make_config()
  c.data.streams = {"docs": data_config.stream("array_record", path=str(tmp_path))}
  c.data.shuffle = False
  it = pipeline.make_train_iterator(c)
  for _ in range(3):
    next(it)
  assert it.realised()["corrupt_records"] >= 1
  c.data.on_corrupt = "error"
  with pytest.raises(UserError, match="corrupt record 7"):
    it = pipeline.make_train_iterator(c)
    for _ in range(3):
      next(it)


def test_tokenized_source_caches_corpus_examples_not_procedural():
  from mmscale.data import procedural, sources, tokenizers

  class Counting(list):
    reads = 0

    def __getitem__(self, i):
      Counting.reads += 1
      return list.__getitem__(self, i)

  d = make_config().data
  d.cache_examples = 2
  src = sources.TokenizedSource(Counting([[("text", f"t{i}")] for i in range(5)]),
                                tokenizers.ByteTokenizer(), d, 0, "docs")
  for i in (0, 1, 0, 1):
    assert src[i][1]["tokens"].size == 4
  assert Counting.reads == 2
  src[2]  # Evicts the oldest entry (0).
  src[0]
  assert Counting.reads == 4
  proc = sources.TokenizedSource(procedural.ProceduralSource("text", "train", 10, 0, 16),
                                 tokenizers.ByteTokenizer(), d, 0, "p")
  assert proc.cache_size == 0


def test_example_cache_is_capped_in_bytes(monkeypatch):
  from mmscale.data import sources, tokenizers
  d = make_config().data
  docs = [[("text", "x" * 50)] for _ in range(10)]
  src = sources.TokenizedSource(docs, tokenizers.ByteTokenizer(), d, 0, "docs")
  one = sources._nbytes(src[0][1])  # pylint: disable=protected-access
  monkeypatch.setattr(sources, "CACHE_BYTES", 3 * one)
  src = sources.TokenizedSource(docs, tokenizers.ByteTokenizer(), d, 0, "docs")
  for i in range(10):
    src[i]
  assert sorted(src._cache) == [7, 8, 9]  # pylint: disable=protected-access
  assert src._cache_bytes == 3 * one  # pylint: disable=protected-access

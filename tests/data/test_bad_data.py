"""Bad user data: a corrupt image, an empty caption, a sample without its caption, a tar member cut
short, a missing Parquet column. Each example is skipped and counted under its reason (never
a zero image), or the run stops with one line naming the file and the reason."""

import io
import os
import re
import tarfile

import numpy as np
import pytest

from mmscale.data import config as data_config
from mmscale.data import media, pipeline, sources, stats, tokenizers
from mmscale.data.modalities import IMAGE
from mmscale.errors import UserError
from tests.data import user_shards
from tests.data.conftest import make_config


def _add(tf, name, data):
  info = tarfile.TarInfo(name)
  info.size = len(data)
  tf.addfile(info, io.BytesIO(data))


@pytest.fixture(scope="module")
def bad_wds(tmp_path_factory, shipped):
  """train-000.tar: 12 good Tux Paint pairs with, in this order, a corrupt PNG (sample 3), an empty
  caption (5), a sample without its .txt (7); train-001.tar: 4 good pairs, the last one's image
  cut short by truncating the file."""
  root = tmp_path_factory.mktemp("bad_wds")
  pairs = user_shards.caption_pairs(shipped["tuxpaint"]["train"])[:16]
  with tarfile.open(root / "train-000.tar", "w", format=tarfile.USTAR_FORMAT) as tf:
    for i, (img, text) in enumerate(pairs[:12]):
      png = media.encode_png(img)
      if i == 3:
        png = png[:8] + b"\x00" * 40 + png[48:]  # Header kept, image data garbled.
      _add(tf, f"s{i:03d}.png", png)
      if i != 7:
        _add(tf, f"s{i:03d}.txt", b"  \n" if i == 5 else text.encode())
  path = root / "train-001.tar"
  with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tf:
    for i, (img, text) in enumerate(pairs[12:]):
      _add(tf, f"t{i:03d}.txt", text.encode())
      _add(tf, f"t{i:03d}.png", media.encode_png(img))
  with open(path, "rb") as f:
    data = f.read()
  with tarfile.open(path) as tf:
    last = tf.getmembers()[-1]
  with open(path, "wb") as f:  # Cut inside the last member's data.
    f.write(data[:last.offset_data + last.size // 2])
  user_shards.write_webdataset(root / "validation-000.tar", pairs[:4])
  return root


def _config(root, on_corrupt="skip"):
  c = make_config(on_corrupt=on_corrupt, shuffle=False)
  c.data.streams = {"wds": data_config.stream("webdataset", path=str(root))}
  return c


def test_each_bad_example_is_skipped_and_counted_by_reason(bad_wds):
  c = _config(bad_wds)
  src = sources.TokenizedSource(sources.make_docs(c, "wds", "train"), tokenizers.ByteTokenizer(),
                                c.data, 0, "wds")
  assert len(src) == 16
  got = [src[i] for i in range(len(src))]
  assert [i for i, x in enumerate(got) if x is None] == [3, 5, 7, 15]
  assert src.skipped == {"corrupt_image": 1, "empty_text": 1, "missing_part": 1,
                         "truncated_member": 1}
  assert src.corrupt == 4
  for x in got:
    if x is not None:  # Every image that got through has real pixels (not a zero image).
      assert np.ptp(x[1]["media"]) > 0


def test_pipeline_reports_skips_in_realised_and_stats(bad_wds):
  c = _config(bad_wds)
  it = pipeline.make_train_iterator(c)
  for _ in range(6):
    b = next(it)
    img = b["modality"] == IMAGE
    assert (b["raw_bytes"][img] > 0).all()
  skipped = it.realised()["skipped"]["wds"]
  assert set(skipped) == {"corrupt_image", "empty_text", "missing_part", "truncated_member"}
  s = stats.measure(c, 8)
  assert set(s["skipped"]["wds"]) == set(skipped)
  assert re.search(r"\nskipped in wds: \d+ corrupt image, \d+ empty text, \d+ missing part, "
                   r"\d+ truncated member\n", stats.format_table(s))


def test_on_corrupt_error_names_the_file_and_reason(bad_wds):
  c = _config(bad_wds, on_corrupt="error")
  it = pipeline.make_train_iterator(c)
  with pytest.raises(UserError) as e:
    for _ in range(6):
      next(it)
  msg = str(e.value)
  assert "\n" not in msg
  assert f"{bad_wds / 'train-000.tar'}:s003.png" in msg and "corrupt image" in msg


def test_parquet_missing_column_is_one_line_naming_file_and_column(tmp_path, shipped):
  pairs = user_shards.caption_pairs(shipped["fashion_mnist"]["train"])[:4]
  for split in ("train", "validation"):
    user_shards.write_parquet(tmp_path / f"{split}-0.parquet", pairs, text_column="alt_text")
  c = make_config()
  c.data.streams = {"pq": data_config.stream("parquet", path=str(tmp_path))}
  with pytest.raises(UserError) as e:
    pipeline.make_train_iterator(c)
  assert str(e.value) == (f"config.data.streams.pq.fields: column 'caption' is not in "
                          f"{tmp_path / 'train-0.parquet'} (columns: image, alt_text)")
  c.data.streams.pq.fields = "image=image,text=alt_text"  # Naming the column fixes it.
  assert next(pipeline.make_train_iterator(c))["tokens"].any()


def test_not_a_tar_and_bad_fields_are_one_line_errors(tmp_path):
  import gzip
  for split in ("train", "validation"):
    (tmp_path / f"{split}-0.tar").write_bytes(gzip.compress(b"x" * 1000))
  c = make_config()
  c.data.streams = {"wds": data_config.stream("webdataset", path=str(tmp_path))}
  with pytest.raises(UserError, match="not an uncompressed tar shard"):
    pipeline.make_train_iterator(c)
  from mmscale.errors import ConfigError
  c.data.streams.wds.fields = "picture=jpg"
  with pytest.raises(ConfigError, match="config.data.streams.wds.fields='picture=jpg': must look like"):
    data_config.validate(c)
  c.data.streams.wds.fields = "audio=wav,text=txt"
  c.data.modalities = ("text", "image")
  with pytest.raises(ConfigError, match="produces audio, which is not in data.modalities"):
    data_config.validate(c)
  assert os.path.exists(tmp_path / "train-0.tar")


def test_column_sources_take_one_column_per_part():
  from mmscale.data import fields
  from mmscale.errors import ConfigError
  assert fields.parse("image=jpg|png,text=txt", "webdataset", "k") == [("image", ("jpg", "png")),
                                                                      ("text", ("txt",))]
  with pytest.raises(ConfigError, match="must name one column per part"):
    fields.parse("image=img|image,text=caption", "parquet", "data.streams.pq")

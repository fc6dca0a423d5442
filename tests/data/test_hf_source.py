"""The optional Hugging Face `datasets` source: a DatasetDict of Tux Paint pairs saved to disk reads
back as written, resumes identically, and names a missing column or split in one line."""

import numpy as np
import pytest

from mmscale.data import config as data_config
from mmscale.data import media, pipeline, sources
from mmscale.errors import UserError
from tests.data import user_shards
from tests.data.conftest import make_config

datasets = pytest.importorskip("datasets")


@pytest.fixture(scope="module")
def saved(tmp_path_factory, shipped):
  root = tmp_path_factory.mktemp("hf")
  pairs = {s: user_shards.caption_pairs(shipped["tuxpaint"][s]) for s in ("train", "validation")}
  feats = datasets.Features({"image": datasets.Image(), "caption": datasets.Value("string")})
  dd = datasets.DatasetDict({
      s: datasets.Dataset.from_dict({"image": [{"bytes": media.encode_png(i), "path": None}
                                               for i, _ in p],
                                     "caption": [t for _, t in p]}, features=feats)
      for s, p in pairs.items()})
  dd.save_to_disk(str(root / "dd"))
  for s in pairs:  # The other layout: one saved Dataset per split.
    dd[s].save_to_disk(str(root / f"per_split_{s}"))
  return root, pairs


def _config(path, **kw):
  c = make_config()
  c.data.streams = {"hf": data_config.stream("hf", path=str(path), **kw)}
  return c


@pytest.mark.parametrize("layout", ["dd", "per_split_{split}"])
def test_documents_read_back_and_resume(saved, layout):
  root, pairs = saved
  c = _config(root / layout)
  data_config.validate(c)
  docs = sources.make_docs(c, "hf", "train")
  assert len(docs) == len(pairs["train"])
  for i in (0, 7, len(docs) - 1):
    (k1, img), (k2, text) = docs[i]
    assert (k1, k2) == ("image", "text") and text == pairs["train"][i][1]
    np.testing.assert_array_equal(img, pairs["train"][i][0])
  it = pipeline.make_train_iterator(c)
  next(it)
  state = it.get_state()
  want = [next(it) for _ in range(2)]
  r = pipeline.make_train_iterator(c)
  r.set_state(state)
  for x in want:
    np.testing.assert_array_equal(x["patches"], next(r)["patches"])


def test_missing_column_split_and_folder_are_one_line(saved, tmp_path):
  root, _ = saved
  with pytest.raises(UserError) as e:
    sources.make_docs(_config(root / "dd", fields="image=image,text=alt"), "hf", "train")
  assert str(e.value) == (f"config.data.streams.hf.fields: column 'alt' is not in {root / 'dd'} "
                          "(columns: image, caption)")
  with pytest.raises(UserError, match=r"no split 'test' \(splits: train, validation\)"):
    sources.make_docs(_config(root / "dd"), "hf", "test")
  (tmp_path / "empty").mkdir()
  with pytest.raises(UserError, match="not a dataset saved with save_to_disk"):
    sources.make_docs(_config(tmp_path / "empty"), "hf", "train")
  with pytest.raises(Exception, match="no saved Hugging Face dataset for split 'train'"):
    data_config.validate(_config(tmp_path / "nowhere"))


def test_convert_a_saved_dataset(saved, tmp_path):
  from mmscale import cli as mm_cli
  root, pairs = saved
  assert mm_cli.run(["mmscale", "data", "convert", "--source=hf", f"--path={root / 'dd'}",
                     f"--out={tmp_path}", "--name=tux"]) == 0
  c = make_config(data_dir=str(tmp_path))
  c.data.streams = {"tux": data_config.stream("corpus", "tux")}
  docs = sources.make_docs(c, "tux", "validation")
  assert len(docs) == len(pairs["validation"])
  np.testing.assert_array_equal(docs[1][0][1], pairs["validation"][1][0])
  assert docs[1][1] == ("text", pairs["validation"][1][1])

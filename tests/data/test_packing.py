import numpy as np
import pytest

from mmscale.data import examples, packing, tokenizers
from tests.data.conftest import make_config

CFG = make_config(seq_len=32).data
TOK = tokenizers.ByteTokenizer()
IMG = np.zeros((16, 16, 3), np.uint8)


def pack(docs, rows=4, seq_len=32):
  exs = iter([(s, examples.encode(d, TOK, CFG)) for s, d in docs])
  b, carry = packing.Packer(rows, seq_len, CFG.patch_dim).fill(lambda: next(exs), None)
  return b, carry


def test_text_split_across_rows_continues_positions():
  b, carry = pack([(0, [("text", "x" * 50)])], rows=2)
  assert carry is None
  assert (b["segment_ids"][0] == 1).all() and list(b["positions"][0][:3]) == [0, 1, 2]
  # The remainder (52 - 32 = 20 positions) starts row 1 as a segment continuing at position 32.
  assert b["positions"][1][0] == 32 and (b["segment_ids"][1][:20] == 1).all()
  assert (b["segment_ids"][1][20:] == 0).all()


def test_image_moves_whole_to_next_row_and_row_is_padded():
  # Row 0: 20 text positions, then an example whose image (18 positions with markers) cannot fit
  # in the 12 left; the packer cuts before <boi> and the image opens row 1.
  docs = [(1, [("text", "a" * 18)]), (2, [("text", "hi"), ("image", IMG), ("text", "ok")])]
  b, _ = pack(docs, rows=2)
  r0, r1 = b["block_ids"][0], b["block_ids"][1]
  assert not r0.any() and (r1 > 0).sum() == 16
  assert b["tokens"][0][20] == tokenizers.BOS and b["tokens"][0][23] == 0  # padded after "hi"
  assert b["segment_ids"][0][22] == 2 and b["segment_ids"][0][23] == 0
  assert b["tokens"][1][0] == tokenizers.BOI and b["positions"][1][0] == 3
  assert b["stream"][1][0] == 2 and b["stream"][0][0] == 1


def test_block_ids_unique_per_row_and_patches_placed():
  img2 = np.full((16, 16, 3), 255, np.uint8)
  b, _ = pack([(0, [("image", IMG)]), (0, [("image", img2)])], rows=2, seq_len=64)
  blocks = b["block_ids"][0]
  assert sorted(set(blocks[blocks > 0])) == [1, 2]
  assert np.allclose(b["patches"][0][blocks == 1][:, :48], -1)
  assert np.allclose(b["patches"][0][blocks == 2][:, :48], 1)


def test_media_longer_than_sequence_is_an_error():
  with pytest.raises(ValueError, match="does not fit"):
    pack([(0, [("image", IMG)])], rows=2, seq_len=10)

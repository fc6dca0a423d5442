"""A lab's own tokenizer: a SentencePiece model file or a Hugging Face tokenizer.json (Llama- or
Qwen-style byte-level BPE), named by `config.data.tokenizer = "PATH.model" | "PATH.json"`.

mmscale's special ids (tokenizers.SPECIALS: pad, bos, eos, image and audio markers) keep ids
0..7, and the tokenizer's own ids move up by their count (`n_special`, given by tokenizers.py),
so the markers never collide with any of its ids (its own special tokens included) and the
vocabulary is the tokenizer's plus 8.

Bits per raw byte stay exact: each token is given the bytes of the input text it newly covers
(from the tokenizer's offsets into the original string, before any normalisation), plus any
bytes skipped before it (a dropped space, a normalised-away character); bytes after the last
token go to the last token. The counts of a text therefore sum to len(text.encode("utf-8")).
SentencePiece takes a faster path when its pieces spell the text byte for byte (identity
normalisation, byte fallback): each piece's own byte length.
"""

import numpy as np
from etils import epath


def bytes_per_token(begins, ends, n_bytes: int) -> np.ndarray:
  """Raw bytes of each token from its byte span [begin, end) in the original text: the bytes up
  to its end not covered by an earlier token."""
  if not len(ends):
    return np.zeros(0, np.float32)
  e = np.minimum(np.maximum(np.asarray(ends, np.int64), np.asarray(begins, np.int64)), n_bytes)
  covered = np.maximum.accumulate(e)
  out = np.maximum(e - np.concatenate([[0], covered[:-1]]), 0).astype(np.float32)
  out[-1] += n_bytes - covered[-1]
  return out


def char_to_byte(text: str) -> np.ndarray | None:
  """UTF-8 byte offset of each character position 0..len(text) (None for ASCII: the same)."""
  if text.isascii():
    return None
  cp = np.frombuffer(text.encode("utf-32-le"), np.uint32)
  width = 1 + (cp >= 0x80) + (cp >= 0x800) + (cp >= 0x10000)
  out = np.zeros(len(cp) + 1, np.int64)
  np.cumsum(width, out=out[1:])
  return out


class SentencePieceTokenizer:
  name = "sentencepiece"

  def __init__(self, path, n_special: int):
    import sentencepiece as spm  # pylint: disable=g-import-not-at-top
    self.path, self.n_special = str(path), n_special
    self._sp = spm.SentencePieceProcessor(model_proto=epath.Path(path).read_bytes())
    n = self._sp.get_piece_size()
    self.vocab_size = self.n_special + n
    # Bytes each piece spells ("▁" is a space, <0xAB> one byte); -1: unknown (<unk>, controls).
    self._piece_bytes = np.array(
        [1 if self._sp.is_byte(i) else -1 if self._sp.is_unknown(i) or self._sp.is_control(i)
         else len(self._sp.id_to_piece(i).replace("▁", " ").encode()) for i in range(n)],
        np.int64)

  def encode(self, text: str) -> tuple[np.ndarray, np.ndarray]:
    n_bytes = len(text.encode())
    ids = np.asarray(self._sp.encode(text), np.int64)
    raw = self._piece_bytes[ids]
    if len(ids) and raw.min() >= 0:
      extra = int(raw.sum()) - n_bytes  # 1 when the model adds a dummy-prefix space.
      if extra == 0 or (extra == 1 and raw[0] >= 1 and not text.startswith(" ")):
        raw[0] -= extra
        return (ids + self.n_special).astype(np.int32), raw.astype(np.float32)
    # Normalised or unknown text: the byte offsets of each piece in the original string.
    pieces = self._sp.encode(text, return_type="proto").pieces
    ids = np.fromiter((p.id for p in pieces), np.int32, len(pieces)) + self.n_special
    return ids, bytes_per_token([p.begin for p in pieces], [p.end for p in pieces], n_bytes)

  def decode(self, ids) -> str:
    return self._sp.decode([int(i) - self.n_special for i in ids if int(i) >= self.n_special])


class HfJsonTokenizer:
  name = "tokenizer.json"

  def __init__(self, path, n_special: int):
    import tokenizers  # pylint: disable=g-import-not-at-top
    self.path, self.n_special = str(path), n_special
    self._tok = tokenizers.Tokenizer.from_str(epath.Path(path).read_text())
    self.vocab_size = self.n_special + self._tok.get_vocab_size(with_added_tokens=True)

  def encode(self, text: str) -> tuple[np.ndarray, np.ndarray]:
    enc = self._tok.encode(text, add_special_tokens=False)
    ids = np.asarray(enc.ids, np.int32) + self.n_special
    # Offsets are character positions in the original string: map them to UTF-8 byte positions.
    to_byte = char_to_byte(text)
    offs = np.asarray(enc.offsets, np.int64).reshape(-1, 2)
    if to_byte is not None:
      offs = to_byte[offs]
    return ids, bytes_per_token(offs[:, 0], offs[:, 1], len(text.encode()))

  def decode(self, ids) -> str:
    return self._tok.decode([int(i) - self.n_special for i in ids if int(i) >= self.n_special],
                            skip_special_tokens=False)


def load(path: str, n_special: int):
  cls = SentencePieceTokenizer if str(path).endswith(".model") else HfJsonTokenizer
  return cls(path, n_special)

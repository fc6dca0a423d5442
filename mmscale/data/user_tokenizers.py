"""A lab's own tokenizer: a SentencePiece model file or a Hugging Face tokenizer.json (Llama- or
Qwen-style byte-level BPE), named by `config.data.tokenizer = "PATH.model" | "PATH.json"`.

mmscale's special ids (tokenizers.SPECIALS: pad, bos, eos, image and audio markers) keep ids
0..7, and the tokenizer's own ids move up by N_SPECIAL, so the markers never collide with any of
its ids (its own special tokens included) and the vocabulary is the tokenizer's plus 8.

Bits per raw byte stay exact: each token is given the bytes of the input text it newly covers
(from the tokenizer's offsets into the original string, before any normalisation), plus any
bytes skipped before it (a dropped space, a normalised-away character); bytes after the last
token go to the last token. The counts of a text therefore sum to len(text.encode("utf-8")).
"""

import numpy as np
from etils import epath

from mmscale.data.tokenizers import N_SPECIAL


def bytes_per_token(begins, ends, n_bytes: int) -> np.ndarray:
  """Raw bytes of each token from its byte span [begin, end) in the original text."""
  out = np.zeros(len(ends), np.float32)
  covered = 0
  for i, (b, e) in enumerate(zip(begins, ends)):
    e = min(max(int(e), int(b)), n_bytes)
    if e > covered:
      out[i] = e - covered
      covered = e
  if len(out):
    out[-1] += n_bytes - covered
  return out


class SentencePieceTokenizer:
  name = "sentencepiece"

  def __init__(self, path):
    import sentencepiece as spm  # pylint: disable=g-import-not-at-top
    self.path = str(path)
    self._sp = spm.SentencePieceProcessor(model_proto=epath.Path(path).read_bytes())
    self.vocab_size = N_SPECIAL + self._sp.get_piece_size()

  def encode(self, text: str) -> tuple[np.ndarray, np.ndarray]:
    pieces = self._sp.encode(text, return_type="proto").pieces  # Byte offsets.
    ids = np.fromiter((p.id for p in pieces), np.int32, len(pieces)) + N_SPECIAL
    raw = bytes_per_token([p.begin for p in pieces], [p.end for p in pieces], len(text.encode()))
    return ids, raw

  def decode(self, ids) -> str:
    return self._sp.decode([int(i) - N_SPECIAL for i in ids if int(i) >= N_SPECIAL])


class HfJsonTokenizer:
  name = "tokenizer.json"

  def __init__(self, path):
    import tokenizers  # pylint: disable=g-import-not-at-top
    self.path = str(path)
    self._tok = tokenizers.Tokenizer.from_str(epath.Path(path).read_text())
    self.vocab_size = N_SPECIAL + self._tok.get_vocab_size(with_added_tokens=True)

  def encode(self, text: str) -> tuple[np.ndarray, np.ndarray]:
    enc = self._tok.encode(text, add_special_tokens=False)
    ids = np.asarray(enc.ids, np.int32) + N_SPECIAL
    # Offsets are character positions in the original string: map them to UTF-8 byte positions.
    if text.isascii():
      to_byte = None
    else:
      to_byte = np.zeros(len(text) + 1, np.int64)
      np.cumsum([len(ch.encode()) for ch in text], out=to_byte[1:])
    offs = np.asarray(enc.offsets, np.int64).reshape(-1, 2)
    if to_byte is not None:
      offs = to_byte[offs]
    return ids, bytes_per_token(offs[:, 0], offs[:, 1], len(text.encode()))

  def decode(self, ids) -> str:
    return self._tok.decode([int(i) - N_SPECIAL for i in ids if int(i) >= N_SPECIAL],
                            skip_special_tokens=False)


def load(path: str):
  return SentencePieceTokenizer(path) if str(path).endswith(".model") else HfJsonTokenizer(path)

"""Text tokenizers: byte-level (no training, always available), byte-level BPE trained offline
with the `tokenizers` library and saved beside the data (mmscale/data/bpe.py trains it), and a
user's SentencePiece model or tokenizer.json (mmscale/data/user_tokenizers.py).

Both share the same special ids (below) so the packer and the model never depend on the choice.
`encode` returns the ids and, per token, the number of raw UTF-8 bytes it stands for: summed over
an example they give the text's raw byte count, the denominator of bits per raw byte.
"""

from typing import Callable, NamedTuple

import numpy as np
from etils import epath

from mmscale.errors import ConfigError

SPECIALS = ("<pad>", "<bos>", "<eos>", "<boi>", "<eoi>", "<boa>", "<eoa>", "<sep>")
PAD, BOS, EOS, BOI, EOI, BOA, EOA, SEP = range(len(SPECIALS))
N_SPECIAL = len(SPECIALS)


class ByteTokenizer:
  """One token per UTF-8 byte, offset past the special ids."""

  name = "byte"
  vocab_size = N_SPECIAL + 256

  def encode(self, text: str) -> tuple[np.ndarray, np.ndarray]:
    ids = np.frombuffer(text.encode("utf-8"), np.uint8).astype(np.int32) + N_SPECIAL
    return ids, np.ones(len(ids), np.float32)

  def decode(self, ids) -> str:
    b = bytes(int(i) - N_SPECIAL for i in ids if int(i) >= N_SPECIAL)
    return b.decode("utf-8", errors="replace")


class BpeTokenizer:
  """Byte-level BPE from a `tokenizers` JSON file whose first ids are SPECIALS."""

  name = "bpe"

  def __init__(self, path):
    import tokenizers  # Imported lazily: only BPE configs need it.
    self._tok = tokenizers.Tokenizer.from_str(epath.Path(path).read_text())
    vocab = self._tok.get_vocab()
    for i, s in enumerate(SPECIALS):
      if vocab.get(s) != i:
        raise ValueError(f"{path}: special token {s} must have id {i}")
    self.vocab_size = self._tok.get_vocab_size()
    # Byte-level BPE maps each byte to one printable character, so a token's raw byte count is the
    # length of its string; specials stand for no raw bytes.
    self._bytes = np.zeros(self.vocab_size, np.float32)
    for s, i in vocab.items():
      if i >= N_SPECIAL:
        self._bytes[i] = len(s)

  def encode(self, text: str) -> tuple[np.ndarray, np.ndarray]:
    ids = np.asarray(self._tok.encode(text, add_special_tokens=False).ids, np.int32)
    return ids, self._bytes[ids]

  def decode(self, ids) -> str:
    return self._tok.decode([int(i) for i in ids if int(i) >= N_SPECIAL])


def bpe_path(data_dir, vocab_size: int) -> epath.Path:
  return epath.Path(data_dir) / "tokenizer" / f"bpe-{vocab_size}.json"


_CACHE = {}


def get_tokenizer(config):
  """The tokenizer named by config.data.tokenizer (cached per file)."""
  return data_tokenizer(config.data)


def data_tokenizer(d):
  """get_tokenizer() of the data section alone (the pipeline receives only config.data)."""
  return TOKENIZERS.get(d.tokenizer, _user_file_tokenizer)(d)


def _bpe_tokenizer(d):
  path = bpe_path(d.data_dir, d.bpe_vocab_size)
  if not path.exists():
    raise ConfigError("data.tokenizer", d.tokenizer,
                      f"no BPE tokenizer at {path}; run `mmscale data prepare --out {d.data_dir}` "
                      "(it trains one) or use 'byte'")
  key = str(path)
  if key not in _CACHE:
    _CACHE[key] = BpeTokenizer(path)
  return _CACHE[key]


class Kind(NamedTuple):
  """One kind of tokenizer: calling it with config.data gives the tokenizer."""
  load: Callable  # config.data -> the tokenizer (may read prepared data: the trained BPE).
  # config.data -> the vocabulary a model needs, without reading prepared data (`mmscale sweep
  # --dry-run` and the FLOPs count run before any data is prepared).
  vocab_size: Callable

  def __call__(self, d):
    return self.load(d)


def _load_user_file(d):
  return _user_tokenizer(str(d.tokenizer))


# data.tokenizer -> its Kind; any other value is a user's file whose suffix is one of USER_FILES
# (mmscale/data/user_tokenizers.py reads it). Vocabulary sizes: the byte tokenizer's is fixed; the
# built-in BPE is trained to at most data.bpe_vocab_size ids (a smaller trained vocabulary leaves
# rows unused, never an id out of range); a user's file is read, since it exists before any data.
TOKENIZERS = {
    "byte": Kind(lambda d: ByteTokenizer(), lambda d: ByteTokenizer.vocab_size),
    "bpe": Kind(_bpe_tokenizer, lambda d: int(d.bpe_vocab_size)),
}
_user_file_tokenizer = Kind(_load_user_file, lambda d: _load_user_file(d).vocab_size)
USER_FILES = {".model": "SentencePiece", ".json": "tokenizer.json"}


def model_vocab_size(config) -> int:
  """The vocabulary a model needs for config.data's tokenizer, without reading prepared data
  (each Kind's vocab_size)."""
  d = config.data
  return int(TOKENIZERS.get(d.tokenizer, _user_file_tokenizer).vocab_size(d))


def _user_tokenizer(path: str):
  if path not in _CACHE:
    from mmscale.data import user_tokenizers  # pylint: disable=g-import-not-at-top
    if not epath.Path(path).exists():
      raise ConfigError("data.tokenizer", path, "no such file; use 'byte', 'bpe', a SentencePiece "
                        ".model file or a Hugging Face tokenizer.json")
    try:
      _CACHE[path] = user_tokenizers.load(path, N_SPECIAL)
    except Exception as e:  # A file of the wrong kind: one line naming it.
      raise ConfigError("data.tokenizer", path, f"cannot be loaded: {type(e).__name__}: "
                        f"{str(e).splitlines()[0] if str(e) else ''}") from e
  return _CACHE[path]

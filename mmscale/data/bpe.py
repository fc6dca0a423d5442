"""Training the byte-level BPE tokenizer offline with the `tokenizers` library.

The special tokens take ids 0..7 (mmscale/data/tokenizers.py SPECIALS) and the 256 byte symbols
are always in the vocabulary, so any text can be encoded and each token's raw byte count is the
length of its byte-level string.
"""

from etils import epath

from mmscale.data import tokenizers as mm_tokenizers


def train_bpe(texts, vocab_size: int, out_path) -> epath.Path:
  """Trains on an iterable of strings and writes the tokenizer JSON to out_path."""
  from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers  # pylint: disable=g-import-not-at-top
  min_vocab = mm_tokenizers.N_SPECIAL + 256
  if vocab_size < min_vocab:
    raise ValueError(f"BPE vocab_size must be >= {min_vocab} (specials + bytes)")
  tok = Tokenizer(models.BPE())
  tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  tok.decoder = decoders.ByteLevel()
  trainer = trainers.BpeTrainer(
      vocab_size=vocab_size, special_tokens=list(mm_tokenizers.SPECIALS), show_progress=False,
      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
  tok.train_from_iterator(texts, trainer)
  out = epath.Path(out_path)
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(tok.to_str())
  return out


def doc_texts(docs, limit_bytes: int):
  """Text parts of documents, up to about limit_bytes in total (the BPE training corpus)."""
  total = 0
  for parts in docs:
    for kind, value in parts:
      if kind == "text" and value:
        yield value
        total += len(value)
    if total >= limit_bytes:
      return

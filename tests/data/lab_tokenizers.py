"""Tokenizers a lab would bring, trained on the shipped text (GIMP manual pages, Tux Paint
captions): a Llama-style SentencePiece model (BPE, byte fallback, identity normalisation, spaces
kept) and a Qwen-style byte-level BPE tokenizer.json (Qwen's split regex, its own specials)."""

import io

QWEN_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
              r"|\s*[\r\n]+|\s+(?!\S)|\s+")

def shipped_texts(shipped):
  out = []
  for name in ("gimp", "tuxpaint"):
    for split in ("train", "validation"):
      out += [v for _, parts in shipped[name][split] for k, v in parts if k == "text"]
  return out


def sentencepiece(shipped, path, vocab_size=600):
  import sentencepiece as spm  # pylint: disable=g-import-not-at-top
  buf = io.BytesIO()
  spm.SentencePieceTrainer.train(
      sentence_iterator=iter(shipped_texts(shipped)), model_writer=buf, vocab_size=vocab_size,
      model_type="bpe", byte_fallback=True, normalization_rule_name="identity",
      remove_extra_whitespaces=False, character_coverage=1.0, hard_vocab_limit=False, minloglevel=2)
  path.write_bytes(buf.getvalue())
  return path


def qwen_json(shipped, path, vocab_size=700):
  from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers  # pylint: disable=g-import-not-at-top
  tok = Tokenizer(models.BPE())
  tok.pre_tokenizer = pre_tokenizers.Sequence([
      pre_tokenizers.Split(Regex(QWEN_SPLIT), behavior="isolated"),
      pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
  tok.decoder = decoders.ByteLevel()
  trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>", "<|im_start|>"],
                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                show_progress=False)
  tok.train_from_iterator(shipped_texts(shipped), trainer)
  path.write_text(tok.to_str())
  return path

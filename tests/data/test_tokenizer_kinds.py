"""A tokenizer kind is one entry of mmscale/data/tokenizers.py TOKENIZERS: it says how to load the
tokenizer and the vocabulary a model needs without reading prepared data."""

import os

import pytest

from mmscale import config as config_lib
from mmscale.data import bpe, tokenizers
from mmscale.data import config as data_config
from helpers import name_compares, name_compares_in  # pylint: disable=g-import-not-at-top  (tests/helpers.py)
from tests.data.conftest import make_config

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_vocab_sizes_need_no_prepared_data(tmp_path):
  missing = tmp_path / "never_prepared"
  assert tokenizers.model_vocab_size(make_config(tokenizer="byte")) == 8 + 256
  c = make_config(tokenizer="bpe", bpe_vocab_size=777, data_dir=str(missing))
  assert tokenizers.model_vocab_size(c) == 777 and not missing.exists()
  with pytest.raises(Exception, match="no BPE tokenizer at"):  # Loading it does need the data.
    tokenizers.get_tokenizer(c)


def test_a_users_file_is_read_for_its_vocab_size(tmp_path):
  texts = ["a small corpus of words, words and more words"] * 50
  path = bpe.train_bpe(texts, 300, tmp_path / "tok.json")
  c = make_config(tokenizer=str(path))
  assert tokenizers.model_vocab_size(c) == tokenizers.get_tokenizer(c).vocab_size > 8 + 256


def test_a_new_kind_is_one_registry_entry(monkeypatch):
  class Words:
    name = "words"
    vocab_size = 8 + 5000

  def load(d):
    raise AssertionError("the vocabulary size must not load the tokenizer")

  monkeypatch.setitem(tokenizers.TOKENIZERS, "words", tokenizers.Kind(load, lambda d: 8 + 5000))
  c = make_config(tokenizer="words")
  assert tokenizers.model_vocab_size(c) == 5008
  c.model = {"vocab_size": 0}  # 0: the model's vocabulary is the tokenizer's.
  assert config_lib.vocab_size(c) == 5008
  monkeypatch.setitem(tokenizers.TOKENIZERS, "words",
                      tokenizers.Kind(lambda d: Words(), lambda d: Words.vocab_size))
  assert tokenizers.get_tokenizer(c).name == "words"
  del c.model
  data_config.validate(c)  # An allowed name: the registry's keys are the allowed values.


def tokenizer_name_compares(source: str) -> list[int]:
  return name_compares(source, tokenizers.TOKENIZERS)


def test_the_check_finds_a_planted_name_comparison():
  source = 'if d.tokenizer == "byte":\n  n = 264\nelif "bpe" == d.tokenizer:\n  n = 1024\n'
  assert tokenizer_name_compares(source) == [1, 3]


def test_no_module_compares_tokenizer_names():
  """Modules decide by the TOKENIZERS registry, not by `tokenizer == "byte"`."""
  found = name_compares_in(REPO, ("mmscale",), tokenizers.TOKENIZERS)
  assert not found, "ask mmscale.data.tokenizers.TOKENIZERS instead: " + ", ".join(found)

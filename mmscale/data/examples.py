"""A document (list of parts) -> a tokenized example: flat arrays over its positions.

  tokens    int32 [n]    text token id at text positions (BOS, EOS, media markers are text), 0 at media
  modality  int8  [n]    0 text, 1 image, 2 audio
  block     int16 [n]    1.. per media item within the example, 0 for text
  raw_bytes float32 [n]  raw source bytes attributed to each position
  media     float32 [m, patch_dim]  patches of the media positions, in order (m = #media positions)
  breaks    int32 [k]    positions where the packer may cut the example (never inside a media item
                         or between a marker and its item), always ending with n

An image becomes <boi> patch... <eoi>; audio <boa> patch... <eoa>. The raw bytes of an item are
spread evenly over its patches, so each modality's positions sum to its raw byte count.
"""

import numpy as np

from mmscale.data import media, tokenizers
from mmscale.data.modalities import AUDIO, IMAGE

_ONE = np.ones(1, np.float32)


def encode(parts, tok, data_cfg) -> dict:
  toks, mods, blocks, raws, patches = [], [], [], [], []
  spans = []  # (start, end) of each media item including its markers.
  n = 0

  def add_text(ids, raw):
    nonlocal n
    toks.append(ids)
    mods.append(np.zeros(len(ids), np.int8))
    blocks.append(np.zeros(len(ids), np.int16))
    raws.append(raw)
    n += len(ids)

  def add_special(tid):
    add_text(np.array([tid], np.int32), np.zeros(1, np.float32))

  add_special(tokenizers.BOS)
  n_block = 0
  for kind, value in parts:
    if kind == "text":
      if value:
        add_text(*tok.encode(value))
      continue
    if kind == "image":
      img = np.asarray(value)
      p = media.image_patches(img, data_cfg.image_size, data_cfg.patch_size, data_cfg.patch_dim)
      raw, mod, begin, end = img.size, IMAGE, tokenizers.BOI, tokenizers.EOI
    elif kind == "audio":
      wave, rate = value
      p = media.audio_patches(wave, rate, data_cfg.audio, data_cfg.patch_dim)
      raw, mod, begin, end = 2 * len(wave), AUDIO, tokenizers.BOA, tokenizers.EOA
    else:
      raise ValueError(f"unknown part kind {kind!r}")
    n_block += 1
    start = n
    add_special(begin)
    k = len(p)
    toks.append(np.zeros(k, np.int32))
    mods.append(np.full(k, mod, np.int8))
    blocks.append(np.full(k, n_block, np.int16))
    raws.append(np.full(k, raw / k, np.float32))
    patches.append(p)
    n += k
    add_special(end)
    spans.append((start, n))
  add_special(tokenizers.EOS)
  nocut = np.zeros(n + 1, bool)
  for s, e in spans:
    nocut[s + 1:e] = True
  return {
      "tokens": np.concatenate(toks),
      "modality": np.concatenate(mods),
      "block": np.concatenate(blocks),
      "raw_bytes": np.concatenate(raws),
      "media": (np.concatenate(patches) if patches
                else np.zeros((0, data_cfg.patch_dim), np.float32)),
      "breaks": (np.flatnonzero(~nocut[1:]) + 1).astype(np.int32),
  }


def length(example) -> int:
  return len(example["tokens"])

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

_ZERO_BYTE = bytes(1)


def encode(parts, tok, data_cfg) -> dict:
  # One pass collects the pieces and their positions; the arrays are then allocated once and
  # filled by slices (per-piece temporaries used to dominate the CPU cost of small examples).
  # With the byte tokenizer the text never becomes small arrays: the example's bytes (zeros at
  # the other positions) are joined and converted once, then specials and media are set.
  byte_tok = type(tok) is tokenizers.ByteTokenizer
  chunks = [_ZERO_BYTE]  # Byte tokenizer: one byte per position.
  texts = []  # Other tokenizers: (start, ids, raw bytes) of each text piece.
  items = []  # (start, #patches, modality, block, raw bytes per patch) of each media item.
  patches = []
  specials = [(0, tokenizers.BOS)]  # (position, id)
  n = 1
  for kind, value in parts:
    if kind == "text":
      if value:
        if byte_tok:
          ids = value.encode("utf-8")
          chunks.append(ids)
        else:
          ids, raw = tok.encode(value)
          texts.append((n, ids, raw))
        n += len(ids)
      continue
    if kind == "image":
      sized = isinstance(value, media.Pixels)  # Decoded at image_size; raw bytes of the stored one.
      img = value.array if sized else np.asarray(value)
      p = media.image_patches(img, data_cfg.image_size, data_cfg.patch_size, data_cfg.patch_dim)
      raw, mod, begin, end = value.raw_bytes if sized else img.size, IMAGE, tokenizers.BOI, tokenizers.EOI
    elif kind == "audio":
      wave, rate = value
      p = media.audio_patches(wave, rate, data_cfg.audio, data_cfg.patch_dim)
      raw, mod, begin, end = 2 * len(wave), AUDIO, tokenizers.BOA, tokenizers.EOA
    else:
      raise ValueError(f"unknown part kind {kind!r}")
    k = len(p)
    specials.append((n, begin))
    items.append((n + 1, k, mod, len(items) + 1, raw / k))
    patches.append(p)
    chunks.append(bytes(k + 2))
    n += k + 1
    specials.append((n, end))
    n += 1
  specials.append((n, tokenizers.EOS))
  n += 1

  if byte_tok:
    chunks.append(_ZERO_BYTE)
    tokens = np.frombuffer(b"".join(chunks), np.uint8).astype(np.int32)
    tokens += tokenizers.N_SPECIAL
    raw_bytes = np.empty(n, np.float32)
    raw_bytes.fill(1.0)  # One raw byte per text token (np.ones costs twice as much).
    for pos, tid in specials:
      tokens[pos] = tid
      raw_bytes[pos] = 0.0
  else:
    tokens = np.zeros(n, np.int32)
    raw_bytes = np.zeros(n, np.float32)
    for s, ids, raw in texts:
      tokens[s:s + len(ids)] = ids
      raw_bytes[s:s + len(ids)] = raw
    for pos, tid in specials:
      tokens[pos] = tid
  modality = np.zeros(n, np.int8)
  block = np.zeros(n, np.int16)
  breaks = np.arange(1, n + 1, dtype=np.int32)
  if items:
    keep = np.empty(n, bool)
    keep.fill(True)
    for s, k, mod, blk, per_patch in items:
      tokens[s:s + k] = 0
      modality[s:s + k] = mod
      block[s:s + k] = blk
      raw_bytes[s:s + k] = per_patch
      keep[s - 1:s + k] = False  # No cut between the markers and inside the item.
    breaks = breaks[keep]
  return {
      "tokens": tokens,
      "modality": modality,
      "block": block,
      "raw_bytes": raw_bytes,
      "media": (patches[0] if len(patches) == 1 else np.concatenate(patches) if patches
                else np.zeros((0, data_cfg.patch_dim), np.float32)),
      "breaks": breaks,
  }


def length(example) -> int:
  return len(example["tokens"])

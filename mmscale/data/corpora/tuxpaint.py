"""Tux Paint stamps (Debian tuxpaint-stamps-default): clip-art PNGs, each with a human-written
English description (first line of the stamp's .txt). Transparent pixels are put on white and
images are stored at most MAX_SIDE pixels wide (raw bytes count the stored image)."""

import os
import zlib

import numpy as np

from mmscale import packages

NAME, TASK = "tuxpaint", "caption"
SOURCE = "Debian package tuxpaint-stamps-default"
LICENCE = "GPL-2 (Tux Paint stamps)"
DIR = ("usr", "share", "tuxpaint", "stamps")
MAX_SIDE = 64


def fetch(cache) -> str:
  return packages.debian(["tuxpaint-stamps-default"], cache)


def load_rgb(path, max_side=MAX_SIDE) -> np.ndarray:
  from PIL import Image  # pylint: disable=g-import-not-at-top
  with Image.open(path) as im:
    im = im.convert("RGBA")
    im.thumbnail((max_side, max_side), Image.BILINEAR)
    bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
    return np.asarray(Image.alpha_composite(bg, im).convert("RGB"))


def is_validation(key: str) -> bool:
  return zlib.crc32(key.encode()) % 10 == 0  # A fixed 10% by name, stable across runs.


def convert(root, max_examples: int):
  d = packages.existing(root, *DIR)
  out = {"train": [], "validation": []}
  for dirpath, _, files in sorted(os.walk(d)):
    for f in sorted(files):
      if not f.endswith(".txt"):
        continue
      png = os.path.join(dirpath, f[:-4] + ".png")
      if not os.path.exists(png):
        continue  # SVG-only stamps are skipped (no rasteriser dependency).
      with open(os.path.join(dirpath, f), encoding="utf-8", errors="replace") as fh:
        text = fh.readline().strip()
      if not text or "=" in text.split(" ")[0]:
        continue
      key = os.path.relpath(png, d)
      split = "validation" if is_validation(key) else "train"
      if len(out[split]) < (max_examples if split == "train" else max(1, max_examples // 10)):
        out[split].append((key, [("image", load_rgb(png)), ("text", text)]))
  return out

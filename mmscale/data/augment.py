"""Training-image augmentation: random-resized crop and horizontal flip (config.data.augment).

The crop follows torchvision's RandomResizedCrop (area share drawn from `scale`, aspect ratio
log-uniform in `ratio`, ten tries, then the central crop of the closest allowed ratio); the crop
is then resized to data.image_size by media.image_patches. Every draw comes from a generator
seeded by (run seed, stream, position in the stream's repeated order, image number), so the
same position gets the same crop on every run and after a resume, and a later epoch of the same
example gets a different one. Validation never passes through here.
"""

import math
import zlib

import numpy as np

from mmscale.data import media


def enabled(a) -> bool:
  return bool(a.random_resized_crop) or float(a.flip) > 0


def crop_box(rng: np.random.Generator, h: int, w: int, scale, ratio) -> tuple[int, int, int, int]:
  """-> (top, left, height, width) of a random-resized crop of an h x w image."""
  area = h * w
  log_r = (math.log(ratio[0]), math.log(ratio[1]))
  for _ in range(10):
    target = area * rng.uniform(scale[0], scale[1])
    r = math.exp(rng.uniform(*log_r))
    cw, ch = int(round(math.sqrt(target * r))), int(round(math.sqrt(target / r)))
    if 0 < cw <= w and 0 < ch <= h:
      return int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1)), ch, cw
  r = w / h
  if r < ratio[0]:
    cw, ch = w, int(round(w / ratio[0]))
  elif r > ratio[1]:
    ch, cw = h, int(round(h * ratio[1]))
  else:
    cw, ch = w, h
  return (h - ch) // 2, (w - cw) // 2, ch, cw


class Augmenter:
  """parts -> parts with each image cropped and maybe flipped, a pure function of the position."""

  def __init__(self, a, seed: int, stream: str):
    self.crop = bool(a.random_resized_crop)
    self.scale, self.ratio, self.flip = tuple(a.scale), tuple(a.ratio), float(a.flip)
    self._key = [int(seed) % 2**32, zlib.crc32(stream.encode())]

  def image(self, img: np.ndarray, position: int, k: int) -> np.ndarray:
    rng = np.random.default_rng(self._key + [int(position), k])
    if self.crop:
      top, left, ch, cw = crop_box(rng, img.shape[0], img.shape[1], self.scale, self.ratio)
      img = img[top:top + ch, left:left + cw]
    if self.flip and rng.random() < self.flip:
      img = img[:, ::-1]
    return img

  def __call__(self, parts, position: int):
    out, k = [], 0
    for kind, value in parts:
      if kind == "image":  # Raw bytes stay the stored image's, whatever the crop.
        img = np.asarray(value)
        value = media.Pixels(self.image(img, position, k), img.size)
        k += 1
      out.append((kind, value))
    return out

"""Fashion-MNIST (Debian dataset-fashion-mnist): 28x28 grayscale clothes, captions from the class
names. Train split from the 60k training file, validation from the 10k test file."""

import gzip
import os

import numpy as np

from mmscale import packages

NAME, TASK = "fashion_mnist", "caption"
SOURCE = "Debian package dataset-fashion-mnist"
LICENCE = "Expat (MIT), Zalando Research"
DIR = ("usr", "share", "datasets", "fashion-mnist")
CLASSES = ("T-shirt", "pair of trousers", "pullover", "dress", "coat", "sandal", "shirt",
           "sneaker", "bag", "ankle boot")
TEMPLATES = ("A grayscale photo of {a} {c}.", "{A} {c}, in black and white.",
             "This is {a} {c}.", "A small picture of {a} {c} on a black background.")


def fetch(cache) -> str:
  return packages.debian(["dataset-fashion-mnist"], cache)


def read_idx(path) -> np.ndarray:
  with gzip.open(path, "rb") as f:
    data = f.read()
  ndim = data[3]
  dims = np.frombuffer(data, ">u4", ndim, 4).astype(int)
  return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def caption(label: int, i: int) -> str:
  c = CLASSES[label]
  a = "an" if c[0] in "aeiou" else "a"
  return TEMPLATES[i % len(TEMPLATES)].format(a=a, A=a.capitalize(), c=c)


def convert(root, max_examples: int):
  d = packages.existing(root, *DIR)
  out = {}
  for split, prefix, cap in (("train", "train", max_examples),
                             ("validation", "t10k", max(1, max_examples // 10))):
    images = read_idx(os.path.join(d, f"{prefix}-images-idx3-ubyte.gz"))[:cap]
    labels = read_idx(os.path.join(d, f"{prefix}-labels-idx1-ubyte.gz"))[:cap]
    out[split] = [(f"{prefix}-{i}", [("image", img[:, :, None]), ("text", caption(int(y), i))])
                  for i, (img, y) in enumerate(zip(images, labels))]
  return out

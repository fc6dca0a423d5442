"""Built-in procedural sources: no download, deterministic by (seed, split, index).

Images are coloured shapes on a 3x3 grid drawn with numpy; captions say the colour, shape,
position and count of what is drawn, so a model can only predict them by looking at the image.
Tasks: "caption" (image then caption), "interleaved" (a short document of figures and text in
reading order), "text" (scene descriptions and arithmetic facts, no image), "audio" (tone
sequences with their transcripts), and the uni-modal "image" (scenes alone) and "tones" (tone
sequences alone).

A document is a list of parts: ("text", str) | ("image", uint8 [H,W,3]) | ("audio", (wave, rate)).
"""

import functools

import numpy as np

COLOURS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220),
           "yellow": (235, 205, 40), "purple": (140, 60, 180), "orange": (240, 140, 30),
           "white": (245, 245, 245), "cyan": (40, 200, 210)}
COLOUR_NAMES = tuple(COLOURS)
COLOUR_RGB = np.array([COLOURS[c] for c in COLOUR_NAMES], np.uint8)
SHAPES = ("circle", "square", "triangle", "cross")
ROWS, COLS = ("top", "middle", "bottom"), ("left", "center", "right")
NUMBERS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SPLITS = {"train": 0, "validation": 1, "test": 2}
TASKS = {"caption": 1, "interleaved": 2, "text": 3, "audio": 4, "image": 5, "tones": 6}
PITCHES = {"low": 330.0, "middle": 550.0, "high": 880.0}


def _rng(seed: int, task: str, split: str, index: int) -> np.random.Generator:
  return np.random.default_rng([seed, TASKS[task], SPLITS.get(split, 3), index])


def _masks(size: int) -> dict[str, np.ndarray]:
  """Boolean [3, 3, size, size] masks of each shape in each grid cell."""
  yy, xx = np.mgrid[0:size, 0:size] + 0.5
  cell = size / 3
  out = {s: np.zeros((3, 3, size, size), bool) for s in SHAPES}
  r = 0.42 * cell
  for i in range(3):
    for j in range(3):
      cy, cx = (i + 0.5) * cell, (j + 0.5) * cell
      dy, dx = yy - cy, xx - cx
      out["circle"][i, j] = dy ** 2 + dx ** 2 <= r ** 2
      out["square"][i, j] = (abs(dy) <= 0.8 * r) & (abs(dx) <= 0.8 * r)
      out["triangle"][i, j] = (dy <= 0.8 * r) & (dy >= -r) & (abs(dx) <= (dy + r) / 1.8 * 0.9)
      out["cross"][i, j] = ((abs(dy) <= 0.3 * r) | (abs(dx) <= 0.3 * r)) & (abs(dy) <= r) & (abs(dx) <= r)
  return out


@functools.lru_cache(maxsize=8)
def _scene_tables(size: int):
  """(background image, byte offsets in the flat image of each shape in each cell [shape][cell],
  each colour's RGB repeated over every pixel [colour]) of a size: drawing an object is then one
  indexed copy instead of a boolean mask over the whole image."""
  masks = _masks(size)
  background = np.empty((size, size, 3), np.uint8)
  background[:] = (16, 16, 24)
  rgb = np.arange(3)
  cells = tuple(tuple((np.flatnonzero(masks[s][i, j])[:, None] * 3 + rgb).ravel()
                      for i in range(3) for j in range(3)) for s in SHAPES)
  tiles = tuple(np.tile(c, size * size) for c in COLOUR_RGB)
  return background, cells, tiles


def scene(rng: np.random.Generator, size: int):
  """(image uint8 [size,size,3], objects [(colour, shape, row, col)]) with 1-3 objects."""
  background, offsets, tiles = _scene_tables(size)
  n = int(rng.integers(1, 4))
  cells = rng.choice(9, n, replace=False)
  colours, shapes = rng.integers(0, len(COLOUR_NAMES), n), rng.integers(0, len(SHAPES), n)
  img = background.copy()
  flat = img.reshape(-1)
  objects = []
  for c, s, cell in zip(colours.tolist(), shapes.tolist(), cells.tolist()):
    at = offsets[s][cell]
    flat[at] = tiles[c][:len(at)]  # Objects sit in distinct cells: no overlaps.
    objects.append((COLOUR_NAMES[c], SHAPES[s], *divmod(cell, 3)))
  return img, objects


def _where(i: int, j: int) -> str:
  if i == 1 and j == 1:
    return "in the center"
  if i == 1:
    return f"on the {COLS[j]}"
  if j == 1:
    return f"at the {ROWS[i]}"
  return f"at the {ROWS[i]} {COLS[j]}"


def describe(objects) -> str:
  n = len(objects)
  things = [f"a {c} {s} {_where(i, j)}" for c, s, i, j in objects]
  listed = things[0] if n == 1 else ", ".join(things[:-1]) + " and " + things[-1]
  return f"{NUMBERS[n].capitalize()} shape{'s' if n > 1 else ''}: {listed}."


def caption(seed, split, index, size):
  img, objects = scene(_rng(seed, "caption", split, index), size)
  return [("image", img), ("text", describe(objects))]


def interleaved(seed, split, index, size):
  rng = _rng(seed, "interleaved", split, index)
  n_fig = int(rng.integers(2, 4))
  parts = [("text", f"Report {index % 1000}. It has {NUMBERS[n_fig]} figures.\n")]
  counts = {}
  for f in range(1, n_fig + 1):
    img, objects = scene(rng, size)
    for c, s, _, _ in objects:
      counts[s] = counts.get(s, 0) + 1
    parts.append(("text", f"Figure {f}:"))
    parts.append(("image", img))
    parts.append(("text", f" {describe(objects)}\n"))
  top = max(sorted(counts), key=counts.get)
  parts.append(("text", f"The most common shape is the {top}, seen {NUMBERS[min(counts[top], 9)]} times."))
  return parts


def text(seed, split, index, size):
  del size
  rng = _rng(seed, "text", split, index)
  lines = []
  for _ in range(int(rng.integers(2, 5))):
    kind = int(rng.integers(0, 3))
    if kind == 0:
      a, b = (int(x) for x in rng.integers(0, 50, 2))
      lines.append(f"{a} plus {b} is {a + b}.")
    elif kind == 1:
      k = int(rng.integers(1, 10))
      c, s = COLOUR_NAMES[rng.integers(0, len(COLOUR_NAMES))], SHAPES[rng.integers(0, len(SHAPES))]
      lines.append(f"I count {NUMBERS[k]} {c} {s}{'s' if k > 1 else ''}.")
    else:
      i, j = (int(x) for x in rng.integers(0, 3, 2))
      c, s = COLOUR_NAMES[rng.integers(0, len(COLOUR_NAMES))], SHAPES[rng.integers(0, len(SHAPES))]
      lines.append(f"The {c} {s} is {_where(i, j)}.")
  return [("text", " ".join(lines))]


@functools.lru_cache(maxsize=32)
def _tone(pitch: str, rate: int) -> np.ndarray:
  """One tone and the gap after it, float32 (a wave is a concatenation of these, read-only)."""
  t = np.arange(int(0.25 * rate)) / rate
  env = np.minimum(1, np.minimum(t, t[::-1]) * 40)
  gap = np.zeros(int(0.05 * rate), np.float32)
  out = np.concatenate([0.5 * env * np.sin(2 * np.pi * PITCHES[pitch] * t), gap]).astype(np.float32)
  out.flags.writeable = False
  return out


def audio(seed, split, index, size, rate=8000):
  del size
  rng = _rng(seed, "audio", split, index)
  names = [tuple(PITCHES)[k] for k in rng.integers(0, 3, int(rng.integers(1, 5)))]
  wave = np.concatenate([_tone(p, rate) for p in names])
  return [("audio", (wave, rate)), ("text", "Tones: " + ", ".join(names) + ".")]


def image(seed, split, index, size):
  """Uni-modal: a scene without its caption (image-only runs of the mixed-modal laws)."""
  return [("image", scene(_rng(seed, "image", split, index), size)[0])]


def tones(seed, split, index, size, rate=8000):
  """Uni-modal: a tone sequence without its transcript (audio-only runs)."""
  del size
  rng = _rng(seed, "tones", split, index)
  names = [tuple(PITCHES)[k] for k in rng.integers(0, 3, int(rng.integers(1, 5)))]
  return [("audio", (np.concatenate([_tone(p, rate) for p in names]), rate))]


GENERATORS = {"caption": caption, "interleaved": interleaved, "text": text, "audio": audio,
              "image": image, "tones": tones}


class ProceduralSource:
  """Random-access source of documents: `source[i]` is a pure function of (seed, split, i)."""

  def __init__(self, task: str, split: str, size: int, seed: int, image_size: int):
    self.task, self.split, self.size, self.seed, self.image_size = task, split, size, seed, image_size
    self._gen = GENERATORS[task]

  def __len__(self) -> int:
    return self.size

  def __getitem__(self, index: int):
    return self._gen(self.seed, self.split, int(index), self.image_size)

  def __repr__(self):
    return f"ProceduralSource({self.task}, {self.split}, size={self.size}, seed={self.seed})"

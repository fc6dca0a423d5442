"""The GIMP user manual (Debian gimp-help-en): each HTML page becomes one interleaved document,
its text and figures in reading order (navigation bars and their icons left out). Images are put
on white where transparent and stored at most MAX_SIDE pixels wide."""

import html.parser
import os
import re
import zlib

from mmscale import packages
from mmscale.data.corpora import tuxpaint

NAME, TASK = "gimp", "interleaved"
SOURCE = "Debian packages gimp-help-en, gimp-help-common"
LICENCE = "GFDL-NIV-1.2+ (GIMP Documentation Team)"
DIR = ("usr", "share", "gimp", "2.0", "help", "en")
MAX_SIDE = 64
_BLOCK = {"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "li", "tr", "br", "pre", "dt", "dd",
          "table", "title"}
_SKIP = {"script", "style", "head"}


def fetch(cache) -> str:
  return packages.debian(["gimp-help-en", "gimp-help-common"], cache)


class _Reader(html.parser.HTMLParser):
  """Collects [("text", str) | ("img", src)] in document order."""

  def __init__(self):
    super().__init__(convert_charrefs=True)
    self.parts, self._text, self._skip, self._nav = [], [], 0, 0
    self._stack = []

  def _flush(self):
    t = re.sub(r"[ \t\r\f\v]+", " ", "".join(self._text))
    t = re.sub(r" *\n[ \n]*", "\n", t).strip(" ")
    if t.strip():
      self.parts.append(("text", t))
    self._text = []

  def handle_starttag(self, tag, attrs):
    a = dict(attrs)
    nav = tag == "div" and any(c in (a.get("class") or "") for c in ("navheader", "navfooter"))
    if tag == "div":
      self._stack.append(nav)
      self._nav += nav
    if tag in _SKIP:
      self._skip += 1
    if self._skip or self._nav:
      return
    if tag in _BLOCK:
      self._text.append("\n")
    if tag == "img" and a.get("src"):
      self._flush()
      self.parts.append(("img", a["src"]))

  def handle_endtag(self, tag):
    if tag == "div" and self._stack:
      self._nav -= self._stack.pop()
    if tag in _SKIP:
      self._skip = max(0, self._skip - 1)
    elif tag in _BLOCK and not (self._skip or self._nav):
      self._text.append("\n")

  def handle_data(self, data):
    if not (self._skip or self._nav):
      self._text.append(data)

  def close(self):
    super().close()
    self._flush()


def read_page(path: str, max_side=MAX_SIDE):
  with open(path, encoding="utf-8", errors="replace") as f:
    r = _Reader()
    r.feed(f.read())
    r.close()
  parts, base = [], os.path.dirname(path)
  for kind, value in r.parts:
    if kind == "text":
      if parts and parts[-1][0] == "text":
        parts[-1] = ("text", parts[-1][1] + value)
      else:
        parts.append((kind, value))
      continue
    img = os.path.normpath(os.path.join(base, value))
    if os.path.exists(img) and not img.endswith(".svg"):
      try:
        parts.append(("image", tuxpaint.load_rgb(img, max_side)))
      except OSError:
        continue  # An unreadable figure is dropped; the text stays.
  return parts


def convert(root, max_examples: int):
  d = packages.existing(root, *DIR)
  out = {"train": [], "validation": []}
  for f in sorted(os.listdir(d)):
    if not f.endswith(".html"):
      continue
    split = "validation" if zlib.crc32(f.encode()) % 10 == 0 else "train"
    if len(out[split]) >= (max_examples if split == "train" else max(1, max_examples // 10)):
      continue
    parts = read_page(os.path.join(d, f))
    if any(k == "text" for k, _ in parts):
      out[split].append((f, parts))
  return out

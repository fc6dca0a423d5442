"""Raw values of user data (file bytes, column values) -> document parts, or a BadExample.

A part that cannot be decoded never becomes a zero image or an empty text: the example is
skipped and counted under the reason (records.BadExample), or stops the run (data.on_corrupt).
"""

import json
import re

import numpy as np

from mmscale.data import media
from mmscale.data.records import BadExample

JSON_TEXT_KEYS = ("caption", "text", "txt", "alt")


def text_part(value, ext: str, where: str):
  if isinstance(value, (bytes, bytearray, memoryview)):
    try:
      value = bytes(value).decode("utf-8")
    except UnicodeDecodeError as e:
      raise BadExample("corrupt_text", f"{where}: not UTF-8 ({e.reason})") from e
  if ext == "json":
    try:
      obj = json.loads(value)
    except ValueError as e:
      raise BadExample("corrupt_text", f"{where}: bad JSON ({e})") from e
    value = next((obj[k] for k in JSON_TEXT_KEYS if isinstance(obj, dict) and k in obj), None)
    if not isinstance(value, str):
      raise BadExample("missing_part", f"{where}: JSON has no {'/'.join(JSON_TEXT_KEYS)} string")
  if value is None or not str(value).strip():
    raise BadExample("empty_text", where)
  return ("text", str(value).strip())


def image_bytes(value):
  """Image bytes from bytes or a Hugging Face Image struct {"bytes": ..., "path": ...}."""
  if isinstance(value, dict):
    value = value.get("bytes")
  return value


def image_part(value, where: str, size: int | None = None):
  """With `size` (training without augmentation, validation): decoded straight to size x size."""
  data = image_bytes(value)
  if not data:
    raise BadExample("missing_part", f"{where}: no image bytes")
  try:
    img = media.decode_image(bytes(data), size)
  except Exception as e:  # PIL raises many types for broken files; all mean "skip it".
    msg = re.sub(r" <_io\.BytesIO object at 0x[0-9a-f]+>", "", str(e))  # Same text every time.
    raise BadExample("corrupt_image", f"{where}: {type(e).__name__}: {msg}") from e
  if (img.raw_bytes if size else img.size) == 0:
    raise BadExample("corrupt_image", f"{where}: empty image")
  return ("image", img if size else np.asarray(img))


def audio_part(value, where: str):
  value = image_bytes(value)  # Also a Hugging Face Audio struct {"bytes": ..., "path": ...}.
  if not value:
    raise BadExample("missing_part", f"{where}: no audio bytes")
  try:
    return ("audio", media.decode_wav(bytes(value)))
  except Exception as e:
    raise BadExample("corrupt_audio", f"{where}: {type(e).__name__}: {e}") from e


def part(kind: str, value, ext: str, where: str, image_size: int | None = None):
  if kind == "text":
    return text_part(value, ext, where)
  if kind == "image":
    return image_part(value, where, image_size)
  return audio_part(value, where)

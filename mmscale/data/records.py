"""The ArrayRecord record schema: the format users convert their own data into.

One record = one document (an image with its caption, an interleaved page, a text, a clip with
its transcript), parts in reading order:

  record  := b"MMS1" | uint32 little-endian header length | header (UTF-8 JSON) | payload bytes
  header  := {"id": str, "parts": [part, ...], "meta": {...}}            ("meta" is optional)
  part    := {"text": str}
           | {"image": {"format": "png"|"jpeg"|"raw", "offset": int, "length": int,
                        "shape": [H, W, C]  (raw uint8 only)}}
           | {"audio": {"format": "wav", "offset": int, "length": int}}
  offset/length locate the part's bytes in the payload.

Shards are named <split>-<k>-of-<n>.array_record (split = train | validation). Write them with
`write_shards`; `mmscale data prepare` does so for the built-in corpora.
"""

import json
import struct

import numpy as np
from etils import epath

from mmscale.data import media

MAGIC = b"MMS1"


class CorruptRecord(ValueError):
  """A record that does not follow the schema (bad magic, header, offsets or media bytes)."""

  reason = "corrupt_record"


class BadExample(CorruptRecord):
  """An example of a user-data source that is skipped (and counted under `reason`): corrupt_image,
  empty_text, truncated_member, missing_part."""

  def __init__(self, reason: str, detail: str):
    super().__init__(f"{reason.replace('_', ' ')}: {detail}")
    self.reason = reason


def encode(parts, doc_id: str = "", meta=None, image_format: str = "png") -> bytes:
  """parts: [("text", str) | ("image", uint8 array) | ("audio", (wave, rate))] -> record bytes."""
  header, payload, off = [], [], 0
  for kind, value in parts:
    if kind == "text":
      header.append({"text": value})
      continue
    if kind == "image":
      img = np.asarray(value, np.uint8)
      if image_format == "raw":
        blob, desc = img.tobytes(), {"format": "raw", "shape": list(img.shape)}
      else:
        blob, desc = media.encode_png(img), {"format": "png"}
    elif kind == "audio":
      wave, rate = value
      blob, desc = media.encode_wav(wave, rate), {"format": "wav"}
    elif kind in ("image_bytes", "audio_bytes"):  # Already-encoded files (png/jpeg/wav).
      fmt, blob = value
      desc, kind = {"format": fmt}, kind[:5]
    else:
      raise ValueError(f"unknown part kind {kind!r}")
    desc.update(offset=off, length=len(blob))
    header.append({kind: desc})
    payload.append(blob)
    off += len(blob)
  h = json.dumps({"id": doc_id, "parts": header, "meta": meta or {}}, ensure_ascii=False).encode()
  return MAGIC + struct.pack("<I", len(h)) + h + b"".join(payload)


def decode(record: bytes):
  """record bytes -> (parts, header). Parts as in `encode`; audio as (wave float32, rate)."""
  try:
    if record[:4] != MAGIC:
      raise CorruptRecord("bad magic")
    (n,) = struct.unpack("<I", record[4:8])
    header = json.loads(record[8:8 + n].decode())
    body = memoryview(record)[8 + n:]
    parts = []
    for p in header["parts"]:
      if "text" in p:
        parts.append(("text", str(p["text"])))
        continue
      kind = "image" if "image" in p else "audio"
      d = p[kind]
      blob = bytes(body[d["offset"]:d["offset"] + d["length"]])
      if len(blob) != d["length"]:
        raise CorruptRecord("part runs past the end of the record")
      if kind == "image":
        if d["format"] == "raw":
          value = np.frombuffer(blob, np.uint8).reshape(d["shape"])
        else:
          value = media.decode_image(blob)
      else:
        value = media.decode_wav(blob)
      parts.append((kind, value))
    return parts, header
  except CorruptRecord:
    raise
  except Exception as e:  # Any malformed field: the record is corrupt, not the program.
    raise CorruptRecord(f"{type(e).__name__}: {e}") from e


def write_shards(out_dir, split: str, records, num_shards: int = 1, per_shard: int = 0) -> list[str]:
  """Writes records (bytes) into <split>-k-of-n.array_record files: round-robin, or with
  per_shard > 0 in runs of per_shard (the last shard takes any excess), so that reading the
  shards in order gives the records in order."""
  from array_record.python import array_record_module as arm  # pylint: disable=g-import-not-at-top
  out = epath.Path(out_dir)
  out.mkdir(parents=True, exist_ok=True)
  paths = [out / f"{split}-{k:05d}-of-{num_shards:05d}.array_record" for k in range(num_shards)]
  writers = [arm.ArrayRecordWriter(str(p), "group_size:1") for p in paths]
  try:
    for i, rec in enumerate(records):
      writers[min(i // per_shard, num_shards - 1) if per_shard else i % num_shards].write(rec)
  finally:
    for w in writers:
      w.close()
  return [str(p) for p in paths]

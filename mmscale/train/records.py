"""Records: JSON Lines appended atomically, read back ignoring a torn last line.

A run is killed at any moment (preemption, SIGKILL), so a line may be half-written. Each append is
one write of a full line followed by flush and fsync; on read, a last line that does not parse (or
lacks its newline) is dropped and everything before it is kept. A bad line in the middle is real
corruption and is reported, not skipped.
"""

import json
import math
import os

from etils import epath

from mmscale.errors import UserError


def _default(obj):
  # numpy and jax scalars/arrays appear in metrics; keep full precision.
  if hasattr(obj, "tolist"):
    return obj.tolist()
  raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def dumps(record: dict) -> str:
  return json.dumps(record, default=_default, allow_nan=True, separators=(",", ":"))


def _drop_torn_tail(path: str) -> None:
  """Cuts a last line that has no newline: a write killed midway, never a complete record."""
  with open(path, "rb+") as f:
    f.seek(0, os.SEEK_END)
    size = f.tell()
    if size == 0:
      return
    f.seek(size - 1)
    if f.read(1) == b"\n":
      return
    block = min(size, 1 << 20)
    f.seek(size - block)
    tail = f.read(block)
    cut = tail.rfind(b"\n")
    f.truncate(size - block + cut + 1 if cut >= 0 else 0)


def append_record(path, record: dict) -> None:
  """Appends one record as a full line, durably (write, flush, fsync)."""
  path = os.fspath(path)
  if os.path.exists(path):
    _drop_torn_tail(path)
  with open(path, "a", encoding="utf-8") as f:
    f.write(dumps(record) + "\n")
    f.flush()
    os.fsync(f.fileno())


def keep_records_until(path, step: int) -> None:
  """On resume from a checkpoint at `step`, drops records written after it (they will be redone)."""
  path = os.fspath(path)
  if not os.path.exists(path):
    return
  kept = [r for r in read_records(path) if r.get("step", 0) <= step]
  tmp = f"{path}.tmp.{os.getpid()}"
  with open(tmp, "w", encoding="utf-8") as f:
    f.writelines(dumps(r) + "\n" for r in kept)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)


def read_records(path) -> list[dict]:
  """Reads a records file; a torn last line is ignored, a corrupt middle line is a UserError."""
  path = epath.Path(path)
  data = path.read_bytes()
  try:
    text = data.decode("utf-8")
  except UnicodeDecodeError as e:
    line = data[:e.start].count(b"\n") + 1
    raise UserError(f"{path}: line {line} is not UTF-8 text (corrupt records file)") from None
  lines = text.split("\n")
  records = []
  for i, line in enumerate(lines):
    if not line.strip():
      continue
    try:
      records.append(json.loads(line))
    except json.JSONDecodeError:
      if i == len(lines) - 1:  # No newline after it: torn by a kill mid-write.
        continue
      raise UserError(f"{path}: line {i + 1} is not valid JSON (corrupt records file)")
  return records


def write_json_atomic(path, obj) -> None:
  """Writes a whole JSON file through a temporary file and a rename, so readers never see half."""
  path = os.fspath(path)
  tmp = f"{path}.tmp.{os.getpid()}"
  with open(tmp, "w", encoding="utf-8") as f:
    json.dump(obj, f, default=_default, indent=2, sort_keys=True)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)


def bits_per_byte(nats: float, raw_bytes: float) -> float:
  return nats / (math.log(2) * raw_bytes) if raw_bytes > 0 else float("nan")

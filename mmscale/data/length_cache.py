"""Mean example lengths per stream (what mix_by="tokens" divides the weights by), computed once.

The estimate encodes the first `data.estimate_examples` examples of every stream (2,000 each by
default: images cut into patches, texts tokenized), a few CPU-seconds that every run of a sweep
would repeat at start-up for the same data, twice when a VQ codebook samples its own iterator. It is
a pure function of the data config, the seed and the files read, so it is kept in memory for the
process and on disk in $MMSCALE_DATA_CACHE (default ~/.cache/mmscale/data; "" keeps it in memory
only), under a key of those inputs: the data section of the config, the seed, the streams used, their
example counts and the size and modification time of every file the data section names (the
prepared data's manifest.json, user shards, a tokenizer file). Changing any of them misses the cache.
"""

import glob
import hashlib
import json
import os
import tempfile

_MEMO: dict[str, list[float]] = {}


def _stamp(path: str) -> list:
  """(path, size, mtime) of a file, or of each file matching a glob; [] for a string that is not one."""
  if not isinstance(path, str) or not path or len(path) > 4096:
    return []
  matches = glob.glob(path) if any(c in path for c in "*?[") else [path]
  out = []
  for p in sorted(matches):
    try:
      st = os.stat(p)
    except OSError:
      continue
    if os.path.isdir(p):  # A prepared data folder: its manifest says what it holds.
      p = os.path.join(p, "manifest.json")
      if not os.path.isfile(p):
        continue
      st = os.stat(p)
    out.append([os.path.abspath(p), st.st_size, st.st_mtime_ns])
  return out


def _strings(tree):
  if isinstance(tree, dict):
    for v in tree.values():
      yield from _strings(v)
  elif isinstance(tree, (list, tuple)):
    for v in tree:
      yield from _strings(v)
  elif isinstance(tree, str):
    yield tree


def cache_key(data: dict, seed: int, names: list[str], sizes: list[int]) -> str:
  stamps = [s for text in _strings(data) for s in _stamp(text)]
  blob = json.dumps({"data": data, "seed": seed, "streams": names, "sizes": sizes, "files": stamps,
                     "version": 1}, sort_keys=True, default=str)
  return hashlib.sha256(blob.encode()).hexdigest()[:32]


def _cache_dir() -> str:
  return os.environ.get("MMSCALE_DATA_CACHE", os.path.expanduser("~/.cache/mmscale/data"))


def mean_lengths(key: str, compute) -> list[float]:
  """compute() -> lengths, unless the process or the disk cache already holds them under `key`."""
  if key in _MEMO:
    return list(_MEMO[key])
  folder = _cache_dir()
  path = os.path.join(folder, f"mean_lengths-{key}.json") if folder else ""
  if path:
    try:
      with open(path, encoding="utf-8") as f:
        _MEMO[key] = [float(x) for x in json.load(f)]
        return list(_MEMO[key])
    except (OSError, ValueError, TypeError):  # Absent or cut short: compute it again.
      pass
  lengths = [float(x) for x in compute()]
  _MEMO[key] = lengths
  if path:
    try:  # Atomic: concurrent runs of a sweep write the same value; a reader sees one whole file.
      os.makedirs(folder, exist_ok=True)
      fd, tmp = tempfile.mkstemp(dir=folder, prefix=".mean_lengths-")
      with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(lengths, f)
      os.replace(tmp, path)
    except OSError:  # A read-only or full cache folder costs time, never the run.
      pass
  return list(lengths)

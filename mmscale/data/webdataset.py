"""WebDataset tar shards (`KEY.jpg|png` + `KEY.txt|json` per sample, the LAION / DataComp / CC12M
layout) as a random-access source for Grain.

Grain shuffles by index, so each uncompressed shard is indexed once on open: a scan of the tar
headers (tarfile seeks past the data) gives each member's offset and size, grouped into samples by
key (the member path up to the first dot of its basename, as WebDataset groups them). A sample is
read with os.pread at those offsets: no shared file position, so reader threads need no lock.

A member whose data run past the end of the file (a shard cut short by a failed copy) is a
`truncated_member`; a sample without one of its fields is `missing_part`; both are skipped and
counted like a corrupt image or an empty caption.
"""

import os
import tarfile
import threading

from mmscale.data import parts as parts_lib
from mmscale.data.records import BadExample
from mmscale.errors import UserError


def split_name(name: str) -> tuple[str, str]:
  """'a/b/0001.seg.jpg' -> ('a/b/0001', 'seg.jpg'): WebDataset's key and extension."""
  d, _, base = name.rpartition("/")
  stem, dot, ext = base.partition(".")
  return (f"{d}/{stem}" if d else stem), ext.lower() if dot else ""


def index_tar(path: str) -> tuple[list[tuple[str, dict[str, tuple[int, int]]]], int]:
  """-> ([(key, {ext: (offset, size)}), ...] in file order, file size)."""
  samples, by_key = [], {}
  try:
    with tarfile.open(path, "r:") as tf:  # "r:" = no compression: members are seekable.
      for m in tf:
        if not m.isfile():
          continue
        key, ext = split_name(m.name)
        if key not in by_key:
          by_key[key] = {}
          samples.append((key, by_key[key]))
        by_key[key][ext] = (m.offset_data, m.size)
  except tarfile.ReadError as e:
    if not samples:  # Nothing readable at all: not a tar shard (a gzip'ed one, a wrong file).
      raise UserError(f"{path}: not an uncompressed tar shard ({e}); WebDataset shards must be "
                      ".tar (decompress .tar.gz first)") from e
  return samples, os.path.getsize(path)


class WebDatasetDocs:
  """Documents from WebDataset shards; `fields` = parse()d [(kind, (ext, ...)), ...]."""

  def __init__(self, paths, fields, key: str, image_size: int | None = None):
    self.paths, self.fields, self.key = [str(p) for p in paths], fields, key
    self.image_size = image_size  # Decode images straight to this size (parts.image_part).
    self._index = []  # (shard number, key, {ext: (offset, size)})
    self._sizes = []
    for s, p in enumerate(self.paths):
      try:
        samples, size = index_tar(p)
      except OSError as e:
        raise UserError(f"config.{key}: cannot read {p}: {e}") from e
      self._sizes.append(size)
      self._index.extend((s, k, members) for k, members in samples)
    self._fds = {}
    self._lock = threading.Lock()

  def __len__(self):
    return len(self._index)

  def _fd(self, shard: int) -> int:
    fd = self._fds.get(shard)
    if fd is None:
      with self._lock:
        fd = self._fds.get(shard)
        if fd is None:
          fd = self._fds[shard] = os.open(self.paths[shard], os.O_RDONLY)
    return fd

  def raw(self, i):
    """-> (where, [(kind, ext, bytes), ...]) of sample i; BadExample when a part is missing/cut."""
    shard, key, members = self._index[int(i)]
    where = f"{self.paths[shard]}:{key}"
    out = []
    for kind, exts in self.fields:
      ext = next((e for e in exts if e in members), None)
      if ext is None:
        raise BadExample("missing_part", f"{where}: no {kind} member (.{' .'.join(exts)})")
      off, size = members[ext]
      if off + size > self._sizes[shard]:
        raise BadExample("truncated_member", f"{where}.{ext}: {size} bytes at {off}, "
                         f"file ends at {self._sizes[shard]}")
      data = os.pread(self._fd(shard), size, off)
      if len(data) != size:
        raise BadExample("truncated_member", f"{where}.{ext}: read {len(data)} of {size} bytes")
      out.append((kind, ext, data))
    return where, out

  def __getitem__(self, i):
    where, raw = self.raw(i)
    return [parts_lib.part(kind, data, ext, f"{where}.{ext}", self.image_size) for kind, ext, data in raw]

  def __repr__(self):
    return f"WebDatasetDocs({len(self.paths)} shards, {len(self)} samples)"

  def __del__(self):
    for fd in getattr(self, "_fds", {}).values():
      try:
        os.close(fd)
      except OSError:
        pass

"""Parquet files as random-access document sources (pyarrow).

  parquet  one row = one document: the `fields` columns in order (image bytes, or a Hugging Face
           Image struct {bytes, path}; text; wav bytes), e.g. image=image,text=caption
  obelics  one row = one interleaved document (OBELICS layout): a list column of texts and a list
           column of images of equal length; position j holds a text or an image (the other null),
           in reading order

Rows are addressed through the row groups' cumulative counts; a read decodes the row group once
and keeps the last few (rows of one group are often read together: Grain's shuffle is per index,
so this is a cache, not a correctness device). A column missing from a file is a one-line error at
open, naming the file and the column.
"""

import bisect
import collections
import threading

from mmscale.data import parts as parts_lib
from mmscale.data.records import BadExample
from mmscale.errors import UserError

# Row groups kept as Arrow tables, up to this many bytes (at least one). Shuffled reads touch every
# group: a cache of 4 groups re-read a group for 78 % of the rows of 35 small groups.
ROW_GROUP_CACHE_BYTES = 256 << 20


class ParquetDocs:

  def __init__(self, paths, fields, key: str, layout: str = "parquet", image_size: int | None = None):
    import pyarrow.parquet as pq  # pylint: disable=g-import-not-at-top
    self.image_size = image_size  # Decode images straight to this size (parts.image_part).
    self.paths, self.fields, self.key, self.layout = [str(p) for p in paths], fields, key, layout
    self.columns = [c for _, alts in fields for c in alts[:1]]
    # Per row group: (file, group), its first row overall and within its file.
    self._files, self._groups, self._starts, self._file_starts = [], [], [], []
    n = 0
    for f, p in enumerate(self.paths):
      try:
        pf = pq.ParquetFile(p)
      except Exception as e:
        raise UserError(f"config.{key}: cannot read Parquet file {p}: {type(e).__name__}: {e}") from e
      names = pf.schema_arrow.names
      for c in self.columns:
        if c not in names:
          raise UserError(f"config.{key}.fields: column {c!r} is not in {p} "
                          f"(columns: {', '.join(names)})")
      self._files.append(pf)
      in_file = 0
      for g in range(pf.num_row_groups):
        self._groups.append((f, g))
        self._starts.append(n)
        self._file_starts.append(in_file)
        rows = pf.metadata.row_group(g).num_rows
        n, in_file = n + rows, in_file + rows
    self._n = n
    self._cache = collections.OrderedDict()
    self._lock = threading.Lock()
    self._read_lock = threading.Lock()

  def __len__(self):
    return self._n

  def _group(self, k: int):
    with self._lock:
      table = self._cache.get(k)
      if table is not None:
        self._cache.move_to_end(k)
        return table
    f, g = self._groups[k]
    with self._read_lock:  # One ParquetFile is not safe to read from several threads at once.
      table = self._files[f].read_row_group(g, columns=self.columns)
    with self._lock:
      self._cache[k] = table
      while len(self._cache) > 1 and sum(t.nbytes for t in self._cache.values()) > ROW_GROUP_CACHE_BYTES:
        self._cache.popitem(last=False)
    return table

  def row(self, i) -> tuple[str, dict]:
    i = int(i)
    k = bisect.bisect_right(self._starts, i) - 1
    j = i - self._starts[k]
    row = self._group(k).slice(j, 1).to_pylist()[0]  # Only this row becomes Python objects.
    f = self._groups[k][0]
    return f"{self.paths[f]}:row {self._file_starts[k] + j}", row

  def __getitem__(self, i):
    where, row = self.row(i)
    return row_parts(self.fields, row, where, self.layout, self.image_size)

  def __repr__(self):
    return f"ParquetDocs({self.layout}, {len(self.paths)} files, {self._n} rows)"


def row_parts(fields, row: dict, where: str, layout: str = "parquet", image_size=None):
  """One table row -> document parts (also the Hugging Face `datasets` source's rows)."""
  if layout == "obelics":
    return _interleaved(fields, row, where, image_size)
  return [parts_lib.part(kind, row[col], "", f"{where}:{col}", image_size) for kind, (col, *_) in fields]


def _interleaved(fields, row, where, image_size=None):
  cols = dict((k, alts[0]) for k, alts in fields)
  texts, images = row[cols["text"]], row[cols["image"]]
  if texts is None or images is None or len(texts) != len(images):
    raise BadExample("missing_part", f"{where}: {cols['text']} and {cols['image']} must be "
                     "lists of equal length")
  out = []
  for j, (t, im) in enumerate(zip(texts, images)):
    if parts_lib.image_bytes(im):
      out.append(parts_lib.image_part(im, f"{where}:{cols['image']}[{j}]", image_size))
    elif t is not None and str(t).strip():
      out.append(("text", str(t)))
  if not any(k == "text" for k, _ in out):
    raise BadExample("empty_text", f"{where}: no text in the document")
  return out

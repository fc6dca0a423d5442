"""Sources of documents per stream and split, and their tokenized view for Grain.

Every source is random access (`len`, `[i]`), so Grain can shuffle, shard and mix by index:
  procedural   mmscale/data/procedural.py (content seed fixed: the data do not change with the run seed)
  array_record shards in the schema of mmscale/data/records.py (also what `corpus` streams read)
  tfds         tfds.data_source(name, split) with a field mapping (optional dependency)
"""

import threading
import types

from absl import logging

from mmscale.data import config as data_config
from mmscale.data import examples, procedural, records
from mmscale.errors import ConfigError, UserError

PROCEDURAL_CONTENT_SEED = 0


class ArrayRecordDocs:
  """Documents from ArrayRecord shards (one record = one document)."""

  def __init__(self, paths, key: str):
    import grain  # pylint: disable=g-import-not-at-top
    self.paths, self.key = [str(p) for p in paths], key
    try:
      self._src = grain.sources.ArrayRecordDataSource(self.paths)
    except Exception as e:  # Unreadable shard: a user error naming the files.
      raise UserError(f"config.{key}: cannot open ArrayRecord shards {self.paths}: {e}") from e

  def __len__(self):
    return len(self._src)

  def __getitem__(self, i):
    return records.decode(self._src[int(i)])[0]

  def __repr__(self):
    return f"ArrayRecordDocs({len(self.paths)} shards)"


class TfdsDocs:
  """Documents from a TFDS dataset through tfds.data_source; `fields` maps parts to features."""

  def __init__(self, name: str, split: str, fields: str, key: str):
    try:
      import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    except ImportError as e:
      raise UserError(f"config.{key}.source='tfds' needs tensorflow-datasets: "
                      "pip install 'tensorflow-datasets'") from e
    try:
      self._src = tfds.data_source(name, split=split)
    except Exception as e:
      raise UserError(f"config.{key}.name={name!r}: tfds.data_source failed: {e}") from e
    self._fields = []
    for part in filter(None, (p.strip() for p in (fields or "image=image,text=label").split(","))):
      kind, _, feat = part.partition("=")
      if kind not in ("text", "image", "audio") or not feat:
        raise ConfigError(f"{key}.fields", fields, "must look like 'image=image,text=caption'")
      self._fields.append((kind, feat))
    feats = getattr(getattr(self._src, "dataset_info", None), "features", None)
    self._features = feats

  def __len__(self):
    return len(self._src)

  def _text(self, feat, value):
    if isinstance(value, bytes):
      return value.decode("utf-8", errors="replace")
    if hasattr(value, "dtype") and value.dtype.kind in "iu" and self._features is not None:
      return self._features[feat].int2str(int(value))  # ClassLabel -> its name.
    return str(value)

  def __getitem__(self, i):
    rec = self._src[int(i)]
    parts = []
    for kind, feat in self._fields:
      v = rec[feat]
      if kind == "text":
        parts.append(("text", self._text(feat, v)))
      elif kind == "image":
        parts.append(("image", v))
      else:
        parts.append(("audio", (v.astype("float32") / 32768.0, int(self._features[feat].sample_rate))))
    return parts


def make_docs(config, name: str, split: str):
  """The document source of stream `name` for one split."""
  d = config.data
  s = d.streams[name]
  key = f"data.streams.{name}"
  if s.source == "procedural":
    is_eval = split == s.eval_split
    size = (s.eval_size or d.procedural_eval_size) if is_eval else (s.size or d.procedural_size)
    return procedural.ProceduralSource(s.name, "validation" if is_eval else "train", size,
                                       PROCEDURAL_CONTENT_SEED, d.image_size)
  if s.source == "tfds":
    return TfdsDocs(s.name, split, s.fields, key)
  where = data_config.stream_shard_dir(config, s)
  paths = data_config.shard_paths(where, split)
  if not paths:
    raise ConfigError(f"{key}.path" if s.source == "array_record" else f"{key}.name",
                      s.path or s.name, f"no ArrayRecord shards for split {split!r} at {where}")
  return ArrayRecordDocs(paths, key)


class TokenizedSource:
  """Random access (stream_id, example) with a bounded cache; corrupt records are counted and
  skipped (None, which Grain filters out) or raise a UserError when data.on_corrupt == "error"."""

  def __init__(self, docs, tok, data_cfg, stream_id: int, name: str):
    self.docs, self.tok, self.cfg = docs, tok, data_cfg
    self.stream_id, self.name = stream_id, name
    # Procedural documents are cheaper to regenerate than to keep; real ones are cached.
    self.cache_size = 0 if isinstance(docs, procedural.ProceduralSource) else int(data_cfg.cache_examples)
    self._cache = {}
    self._lock = threading.Lock()
    # What encode reads of config.data, as plain attributes (a ConfigDict lookup costs ~1 us).
    self._geometry = types.SimpleNamespace(
        image_size=data_cfg.image_size, patch_size=data_cfg.patch_size,
        patch_dim=data_cfg.patch_dim, audio=data_cfg.audio)
    self.corrupt = 0

  def __len__(self):
    return len(self.docs)

  def __getitem__(self, index):
    index = int(index)
    ex = self._cache.get(index)
    if ex is None:
      try:
        parts = self.docs[index]
      except records.CorruptRecord as e:
        with self._lock:
          self.corrupt += 1
        if self.cfg.on_corrupt == "error":
          raise UserError(f"stream {self.name!r}: corrupt record {index} in {self.docs!r}: {e}") from e
        logging.warning("stream %r: skipping corrupt record %d: %s", self.name, index, e)
        return None
      ex = examples.encode(parts, self.tok, self._geometry)
      if self.cache_size:
        with self._lock:
          if len(self._cache) >= self.cache_size:
            self._cache.pop(next(iter(self._cache)))  # FIFO: the oldest entry.
          self._cache[index] = ex
    return self.stream_id, ex

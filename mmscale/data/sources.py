"""Sources of documents per stream and split, and their tokenized view for Grain.

Every source is random access (`len`, `[i]`), so Grain can shuffle, shard and mix by index:
  procedural   mmscale/data/procedural.py (content seed fixed: the data do not change with the run seed)
  array_record shards in the schema of mmscale/data/records.py (also what `corpus` streams read)
  tfds         tfds.data_source(name, split) with a field mapping (optional dependency)
  webdataset   tar shards of KEY.jpg|png + KEY.txt|json samples (mmscale/data/webdataset.py)
  parquet      one document per row; obelics: interleaved rows (mmscale/data/parquet.py)
  hf           a Hugging Face dataset saved to disk (mmscale/data/hf.py, optional dependency)
A document that cannot be read raises records.CorruptRecord (BadExample: with a reason);
TokenizedSource counts and skips it.
"""

import threading
import types

from absl import logging

from mmscale.contract import MODALITIES
from mmscale.data import augment as augment_lib
from mmscale.data import examples, procedural, records
from mmscale.data import fields as fields_lib
from mmscale.data import shards
from mmscale.errors import ConfigError, UserError

PROCEDURAL_CONTENT_SEED = 0
# Memory cap of one stream's example cache, besides data.cache_examples: a 224-px example holds
# ~0.6 MB of float32 patches, so 20,000 of them would not fit in a host's memory.
CACHE_BYTES = 1 << 30


def _nbytes(ex) -> int:
  if isinstance(ex, dict):  # An encoded example.
    return sum(v.nbytes for v in ex.values())
  # Decoded parts (kept when augmenting): text, image array, (wave, rate).
  return sum(len(v) if k == "text" else v[0].nbytes if k == "audio" else v.nbytes for k, v in ex)


class ArrayRecordDocs:
  """Documents from ArrayRecord shards (one record = one document); with `kinds`, only the parts
  of those kinds (a document left without any is skipped and counted as missing_part)."""

  def __init__(self, paths, key: str, kinds=None):
    import grain  # pylint: disable=g-import-not-at-top
    self.paths, self.key, self.kinds = [str(p) for p in paths], key, kinds
    try:
      self._src = grain.sources.ArrayRecordDataSource(self.paths)
    except Exception as e:  # Unreadable shard: a user error naming the files.
      raise UserError(f"config.{key}: cannot open ArrayRecord shards {self.paths}: {e}") from e

  def __len__(self):
    return len(self._src)

  def __getitem__(self, i):
    parts = records.decode(self._src[int(i)])[0]
    if self.kinds is None:
      return parts
    kept = [p for p in parts if p[0] in self.kinds]
    if not kept:
      raise records.BadExample("missing_part", f"no {'/'.join(self.kinds)} part in record {int(i)}")
    return kept

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
      if kind not in MODALITIES or not feat:
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


def _procedural(d, s, key, split, image_size):
  is_eval = split == s.eval_split
  size = (s.eval_size or d.procedural_eval_size) if is_eval else (s.size or d.procedural_size)
  return procedural.ProceduralSource(s.name, "validation" if is_eval else "train", size,
                                     PROCEDURAL_CONTENT_SEED, d.image_size)


def _tfds(d, s, key, split, image_size):
  return TfdsDocs(s.name, split, s.fields, key)


def _hf(d, s, key, split, image_size):
  from mmscale.data import hf  # pylint: disable=g-import-not-at-top
  return hf.HfDocs(s.path, split, fields_lib.parse(s.fields, s.source, key), key, image_size)


def _shard_files(d, s, key, split):
  where = shards.stream_shard_dir(d, s)
  paths = shards.shard_paths(where, split, shards.SHARD_EXT[s.source])
  if not paths:
    raise ConfigError(f"{key}.name" if s.source == "corpus" else f"{key}.path",
                      s.path or s.name, f"no {shards.SHARD_EXT[s.source]} shards for split "
                      f"{split!r} at {where}")
  return paths


def _array_record(d, s, key, split, image_size):
  return ArrayRecordDocs(_shard_files(d, s, key, split), key, fields_lib.parse_kinds(s.fields, key))


def _webdataset(d, s, key, split, image_size):
  from mmscale.data import webdataset  # pylint: disable=g-import-not-at-top
  return webdataset.WebDatasetDocs(_shard_files(d, s, key, split),
                                   fields_lib.parse(s.fields, s.source, key), key, image_size)


def _parquet(d, s, key, split, image_size):
  from mmscale.data import parquet  # pylint: disable=g-import-not-at-top
  return parquet.ParquetDocs(_shard_files(d, s, key, split),
                             fields_lib.parse(s.fields, s.source, key), key, s.source, image_size)


# config.data.streams.<name>.source -> (config.data, stream, key, split, image_size) -> its documents.
# Its keys are the allowed sources (corpus streams read the ArrayRecord shards `mmscale data
# prepare` wrote; obelics is parquet with interleaved rows).
SOURCES = {"procedural": _procedural, "corpus": _array_record, "array_record": _array_record,
           "tfds": _tfds, "webdataset": _webdataset, "parquet": _parquet, "obelics": _parquet,
           "hf": _hf}


def docs(data, name: str, split: str, image_size: int | None = None):
  """The document source of stream `name` of `data` (config.data) for one split. With `image_size`
  (what the model gets without augmentation), images of the user-data sources are decoded straight
  to that size."""
  s = data.streams[name]
  return SOURCES[s.source](data, s, f"data.streams.{name}", split, image_size)


def make_docs(config, name: str, split: str, image_size: int | None = None):
  """docs() of a whole run config (tools and tests that hold one)."""
  return docs(config.data, name, split, image_size)


def _stop_on_corrupt(src, index, e):
  raise UserError(f"stream {src.name!r}: corrupt record {index} in {src.docs!r}: {e}") from e


def _skip_corrupt(src, index, e):
  if index not in src._warned:  # Once per record, not once per epoch.
    src._warned.add(index)
    logging.warning("stream %r: skipping corrupt record %d: %s", src.name, index, e)


# data.on_corrupt -> what a counted corrupt record does: stop the run, or be skipped (warned once).
ON_CORRUPT = {"error": _stop_on_corrupt, "skip": _skip_corrupt}


class TokenizedSource:
  """Random access (stream_id, example) with a bounded cache; corrupt records are counted by
  reason and skipped (None, which Grain filters out) or raise a UserError when
  data.on_corrupt == "error".

  With an `augment` (training images, mmscale/data/augment.py) the source yields the decoded
  (stream_id, parts) instead, and `at_position` augments and encodes them where the pipeline knows
  the position in the stream's order."""

  def __init__(self, docs, tok, data_cfg, stream_id: int, name: str, augment=None):
    self.docs, self.tok, self.cfg = docs, tok, data_cfg
    self.stream_id, self.name = stream_id, name
    # Procedural documents are cheaper to regenerate than to keep; real ones are cached.
    self.cache_size = 0 if isinstance(docs, procedural.ProceduralSource) else int(data_cfg.cache_examples)
    self._cache = {}
    self._cache_bytes = 0
    self._lock = threading.Lock()
    # What encode reads of config.data, as plain attributes (a ConfigDict lookup costs ~1 us).
    self._geometry = types.SimpleNamespace(
        image_size=data_cfg.image_size, patch_size=data_cfg.patch_size,
        patch_dim=data_cfg.patch_dim, audio=data_cfg.audio)
    self.augment = augment
    self.skipped = {}  # reason -> count
    self._warned = set()
    self.corrupt = 0  # All skipped examples.

  def __len__(self):
    return len(self.docs)

  def __getitem__(self, index):
    index = int(index)
    ex = self._cache.get(index)  # (example, its bytes)
    if ex is None:
      try:
        parts = self.docs[index]
      except records.CorruptRecord as e:
        with self._lock:
          self.corrupt += 1
          self.skipped[e.reason] = self.skipped.get(e.reason, 0) + 1
        ON_CORRUPT[self.cfg.on_corrupt](self, index, e)
        return None
      ex = parts if self.augment else examples.encode(parts, self.tok, self._geometry)
      if self.cache_size:
        size = _nbytes(ex)
        with self._lock:
          while self._cache and (len(self._cache) >= self.cache_size
                                 or self._cache_bytes + size > CACHE_BYTES):
            self._cache_bytes -= self._cache.pop(next(iter(self._cache)))[1]  # FIFO: the oldest.
          if size <= CACHE_BYTES and index not in self._cache:
            self._cache[index] = (ex, size)
            self._cache_bytes += size
      return self.stream_id, ex
    return self.stream_id, ex[0]

  def at_position(self, position, item):
    """Grain map_with_index: (stream_id, parts) at `position` -> (stream_id, example)."""
    if item is None:
      return None
    return item[0], examples.encode(self.augment(item[1], position), self.tok, self._geometry)


def train_augmenter(data, seed: int, name: str):
  """The stream's training-image augmenter (data: config.data; seed: the run's), or None when
  data.augment is off."""
  a = data.augment
  return augment_lib.Augmenter(a, seed, name) if augment_lib.enabled(a) else None

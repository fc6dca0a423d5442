"""`config.data`: defaults and validation.

Streams are named; each draws from one source and has a mixture weight:
  config.data.streams.<name> = {source, name, path, weight, size, eval_size, fields, split, eval_split}
    source  "procedural": built-in, no download; name in caption|interleaved|text|audio, or the
                          uni-modal image|tones (an image alone, a tone sequence alone).
            "corpus":     a corpus written by `mmscale data prepare` under data_dir; name is its folder.
            "array_record": shards at `path` (a folder holding <split>-*.array_record, or a glob with
                          "{split}"); record schema in mmscale/data/records.py. For it and corpus,
                          fields is the part kinds to keep: "image" = an image-only stream.
            "tfds":       tfds.data_source(name) (needs tensorflow-datasets); fields maps the
                          record schema's parts to feature keys, e.g. "image=image,text=label".
            "webdataset": tar shards <split>-*.tar at `path` (or a glob with "{split}") of KEY.jpg|png
                          + KEY.txt|json samples; fields "image=jpg|png,text=txt|json".
            "parquet":    <split>-*.parquet files, one document per row; fields "image=image,text=caption".
            "obelics":    <split>-*.parquet files of interleaved rows (a list of texts and a list of
                          images in reading order); fields "text=texts,image=images".
            "hf":         a Hugging Face dataset saved with save_to_disk at `path` (a DatasetDict, or
                          "{split}" in the path); needs `datasets` (pip install 'mmscale[hf]').
            A fields list with only image (or audio) makes a uni-modal stream (mmscale/data/fields.py).
    weight  share of the mixture (normalised; 0 leaves the stream out of training but keeps its
            validation split); mix_by="examples" weighs examples, "tokens" weighs tokens.
The default is a small CPU-friendly mixture of the procedural streams (45-45-10
caption/interleaved/text, the mixture of Shukor et al. 2025).
"""

import math
import numbers
import re

import ml_collections
from etils import epath

from mmscale.contract import MODALITIES
from mmscale.data import fields as fields_lib
from mmscale.data import feeding, procedural, shards, sources, tokenizers
from mmscale import validation as check
from mmscale.errors import ConfigError

# Modalities each procedural task produces (for the check against config.data.modalities).
PROCEDURAL_MODALITIES = {"caption": ("text", "image"), "interleaved": ("text", "image"),
                         "text": ("text",), "audio": ("text", "audio"), "image": ("image",),
                         "tones": ("audio",)}
STREAM_KEYS = ("source", "name", "path", "weight", "size", "eval_size", "fields", "split",
               "eval_split")


def stream(source="procedural", name="", weight=1.0, path="", size=0, eval_size=0, fields="",
           split="train", eval_split="validation") -> ml_collections.ConfigDict:
  """One stream's config (every stream has the same keys, so sweeps can override any of them)."""
  return ml_collections.ConfigDict(dict(
      source=source, name=name, path=path, weight=float(weight), size=size, eval_size=eval_size,
      fields=fields, split=split, eval_split=eval_split))


def defaults() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seq_len = 256
  c.batch_size = 16  # Global batch (rows); each process gets batch_size // process_count.
  c.image_size = 16  # Images are resized to image_size x image_size RGB...
  c.patch_size = 4  # ...and cut into patch_size x patch_size patches.
  c.patch_dim = 48  # Flattened patch length fed to the model (max over modalities, zero-padded).
  c.modalities = MODALITIES  # Modalities a stream may produce.
  c.tokenizer = "byte"
  c.bpe_vocab_size = 1024  # Used when tokenizer == "bpe": data_dir/tokenizer/bpe-<n>.json.
  c.data_dir = "mmscale_data"  # Where `mmscale data prepare` writes corpora and the tokenizer.
  c.mix_by = "examples"
  c.mixture = ""  # "caption=45,interleaved=45,text=10": the whole mixture (unnamed streams get 0).
  c.streams = ml_collections.ConfigDict({
      "caption": stream("procedural", "caption", 0.45),
      "interleaved": stream("procedural", "interleaved", 0.45),
      "text": stream("procedural", "text", 0.10),
  })
  c.procedural_size = 100_000  # Examples per epoch of a procedural stream (stream.size overrides).
  c.procedural_eval_size = 512  # Held-out examples of a procedural stream.
  c.audio = ml_collections.ConfigDict(dict(
      sample_rate=8000, n_mels=16, frame_ms=32, hop_ms=16, patch_frames=3, max_seconds=4.0))
  c.shuffle = True
  c.host_split = "rows"  # Multi-host: "rows" of one global batch (= single-process result) or "examples".
  c.on_corrupt = "skip"  # A record that cannot be decoded: "skip" (counted) or "error".
  c.num_threads = 0  # Grain read threads; 0 = in the consumer thread (best for in-memory data).
  c.prefetch = 2  # Batches prepared ahead in a background thread (0 = none): hides data time.
  c.cache_examples = 20_000  # Tokenized examples of a corpus kept in memory per stream (0 = none).
  c.estimate_examples = 2000  # First examples per stream whose mean length sets mix_by=tokens rates.
  # Training-image augmentation (mmscale/data/augment.py), never applied to validation. Shukor et
  # al.: image_size=224, random_resized_crop=True, scale=(0.4, 1.0), flip=0.5.
  c.augment = ml_collections.ConfigDict(dict(
      random_resized_crop=False, scale=(0.4, 1.0), ratio=(3 / 4, 4 / 3), flip=0.0))
  return c


def corpora_streams() -> ml_collections.ConfigDict:
  """The prepared real corpora as a 45-45-10 caption/interleaved/text mixture (audio held out of
  training at weight 0 but evaluated). Use with data_dir = the folder of `mmscale data prepare`."""
  return ml_collections.ConfigDict({
      "fashion_mnist": stream("corpus", "fashion_mnist", 0.30),
      "tuxpaint": stream("corpus", "tuxpaint", 0.15),
      "gimp": stream("corpus", "gimp", 0.45),
      "brown": stream("corpus", "brown", 0.10),
      "asterisk": stream("corpus", "asterisk", 0.0),
  })


def parse_mixture(text: str) -> dict[str, float]:
  out = {}
  for part in filter(None, (p.strip() for p in text.split(","))):
    m = re.fullmatch(r"([\w.-]+)\s*[=:]\s*([-+0-9.eE]+)", part)
    if not m:
      raise ConfigError("data.mixture", text, "must look like 'caption=45,interleaved=45,text=10'")
    out[m.group(1)] = float(m.group(2))
  return out


def stream_weights(config) -> dict[str, float]:
  """weights() of a whole run config."""
  return weights(config.data)


def weights(d) -> dict[str, float]:
  """Normalised weight per stream name (sorted) of config.data `d`. A `mixture` string is the whole
  mixture: the streams it does not name get 0 (merging it onto the streams' fractional weights
  trained an unnamed stream at a sliver nobody asked for)."""
  mixture = parse_mixture(d.mixture)
  raw = {n: mixture.get(n, 0.0) if mixture else float(d.streams[n].weight)
         for n in sorted(d.streams.keys())}
  total = sum(raw.values())
  return {n: w / total for n, w in raw.items()}


def describe_mixture(config) -> str:
  """One line with the mixture's target shares, e.g. for `--config.data.mixture=caption=50,text=60`:
  'mixture targets (by examples): caption 45.5%, interleaved 0.0%, text 54.5%'."""
  shares = ", ".join(f"{n} {100 * w:.1f}%" for n, w in stream_weights(config).items())
  return f"mixture targets (by {config.data.mix_by}): {shares}"


def _validate_augment(a):
  check.boolean("data.augment.random_resized_crop", a.random_resized_crop)
  for k in ("scale", "ratio"):
    v = tuple(a[k])
    if len(v) != 2 or not all(isinstance(x, numbers.Real) for x in v) or not 0 < v[0] <= v[1]:
      raise ConfigError(f"data.augment.{k}", v, "must be two numbers (lo, hi) with 0 < lo <= hi")
  if tuple(a.scale)[1] > 1:
    raise ConfigError("data.augment.scale", tuple(a.scale), "must lie in (0, 1]: a share of the image area")
  if not isinstance(a.flip, numbers.Real) or not 0 <= a.flip <= 1:
    raise ConfigError("data.augment.flip", a.flip, "must be a probability in [0, 1]")


def _validate_stream(d, name, s):
  key = f"data.streams.{name}"
  if not isinstance(s, ml_collections.ConfigDict):
    raise ConfigError(key, s, "must be a ConfigDict made by mmscale.data.config.stream()")
  unknown = sorted(set(s.keys()) - set(STREAM_KEYS))
  if unknown:
    raise ConfigError(f"{key}.{unknown[0]}", s[unknown[0]], f"unknown stream key; allowed: {', '.join(STREAM_KEYS)}")
  check.choice(f"{key}.source", s.get("source"), sources.SOURCES)
  check.number(f"{key}.weight", s.get("weight", None), 0, strict=False)
  for k in ("size", "eval_size"):
    check.integer(f"{key}.{k}", s.get(k, 0), 0)
  if s.source == "procedural":
    check.choice(f"{key}.name", s.name, procedural.GENERATORS)
    for m in PROCEDURAL_MODALITIES[s.name]:
      if m not in d.modalities:
        raise ConfigError(f"{key}.name", s.name, f"produces {m}, which is not in data.modalities")
  elif s.source == "tfds":
    if not s.name:
      raise ConfigError(f"{key}.name", s.name, "must name a TFDS dataset")
  elif s.source == "hf":
    fields_lib.parse(s.fields, s.source, key)
    for split in (s.split, s.eval_split):
      if not s.path or not epath.Path(s.path.replace("{split}", split)).exists():
        raise ConfigError(f"{key}.path", s.path, f"no saved Hugging Face dataset for split {split!r} "
                          "(a save_to_disk folder, or a path with {split})")
  else:
    if s.source == "corpus":
      if not s.name:
        raise ConfigError(f"{key}.name", s.name, "must name a corpus prepared under data.data_dir")
      where, shown = shards.stream_shard_dir(d, s), f"{key}.name"
      hint = f"; run `mmscale data prepare --out {d.data_dir}`"
    else:
      where, shown, hint = s.path, f"{key}.path", ""
      if not s.path:
        raise ConfigError(shown, s.path, f"must be a folder or glob of {shards.KIND[s.source]} shards")
    if s.source in fields_lib.DEFAULTS:
      kinds = [kind for kind, _ in fields_lib.parse(s.fields, s.source, key)]
    else:  # ArrayRecord: the part kinds to keep ("image": an image-only stream of a caption corpus).
      kinds = fields_lib.parse_kinds(s.fields, key) or ()
    for kind in kinds:
      if kind not in d.modalities:
        raise ConfigError(f"{key}.fields", s.fields, f"produces {kind}, which is not in data.modalities")
    for split in (s.split, s.eval_split):
      if not shards.shard_paths(where, split, shards.SHARD_EXT[s.source]):
        raise ConfigError(shown, s.name if s.source == "corpus" else s.path,
                          f"no {shards.KIND[s.source]} shards for split {split!r} at {where}{hint}")


def validate(config) -> None:
  """validate_section() of a whole run config."""
  validate_section(config.data)


def validate_section(d) -> None:
  """Checks config.data `d` alone (no other section is read); raises ConfigError."""
  for k in ("seq_len", "batch_size", "image_size", "patch_size", "patch_dim", "bpe_vocab_size",
            "procedural_size", "procedural_eval_size", "estimate_examples"):
    check.integer(f"data.{k}", d[k])
  for k in ("num_threads", "prefetch", "cache_examples"):
    check.integer(f"data.{k}", d[k], 0)
  if d.tokenizer not in tokenizers.TOKENIZERS and not str(d.tokenizer).endswith(
      tuple(tokenizers.USER_FILES)):
    check.one_of("data.tokenizer", d.tokenizer, sorted(tokenizers.TOKENIZERS) + [
        f"PATH{suffix} ({kind})" for suffix, kind in sorted(tokenizers.USER_FILES.items())])
  _validate_augment(d.augment)
  check.choice("data.mix_by", d.mix_by, feeding.MIX_BY)
  check.choice("data.host_split", d.host_split, feeding.HOST_SPLITS)
  check.choice("data.on_corrupt", d.on_corrupt, sources.ON_CORRUPT)
  mods = tuple(d.modalities)
  if not mods or "text" not in mods:
    raise ConfigError("data.modalities", mods, "must include 'text'")
  for m in mods:
    check.one_of("data.modalities", m, MODALITIES)
  if d.image_size % d.patch_size:
    raise ConfigError("data.patch_size", d.patch_size,
                      f"must divide data.image_size ({d.image_size})")
  n_patches = (d.image_size // d.patch_size) ** 2
  if n_patches + 2 > d.seq_len:
    raise ConfigError("data.seq_len", d.seq_len,
                      f"must hold one image: >= {n_patches + 2} ({n_patches} patches + 2 markers)")
  need = {"image": 3 * d.patch_size ** 2}
  a = d.audio
  for k in ("sample_rate", "n_mels", "frame_ms", "hop_ms", "patch_frames"):
    check.integer(f"data.audio.{k}", a[k])
  if not (isinstance(a.max_seconds, numbers.Real) and a.max_seconds > 0):
    raise ConfigError("data.audio.max_seconds", a.max_seconds, "must be a number > 0")
  need["audio"] = a.n_mels * a.patch_frames
  for m, n in need.items():
    if m in mods and d.patch_dim < n:
      raise ConfigError("data.patch_dim", d.patch_dim, f"must be >= {n}, the {m} patch length")
  if "audio" in mods:
    frames = int(a.max_seconds * 1000 / a.hop_ms) + 1
    if -(-frames // a.patch_frames) + 2 > d.seq_len:
      raise ConfigError("data.audio.max_seconds", a.max_seconds,
                        f"one clip must fit in data.seq_len ({d.seq_len}) patches")
  if not isinstance(d.streams, ml_collections.ConfigDict) or not d.streams.keys():
    raise ConfigError("data.streams", d.streams, "must hold at least one stream")
  for name in sorted(d.streams.keys()):
    _validate_stream(d, name, d.streams[name])
  weights = {n: d.streams[n].weight for n in d.streams.keys()}
  mixture = parse_mixture(d.mixture)
  for n, w in mixture.items():
    if n not in weights:
      raise ConfigError("data.mixture", d.mixture,
                        f"unknown stream {n!r}; streams are {', '.join(sorted(weights))}")
    if not math.isfinite(w) or w < 0:
      raise ConfigError("data.mixture", d.mixture, f"weight of {n!r} must be a finite number >= 0")
  if mixture and sum(mixture.values()) <= 0:
    raise ConfigError("data.mixture", d.mixture, "weights must not all be zero")
  if sum(weights.values()) <= 0 and not mixture:
    raise ConfigError("data.streams", {n: w for n, w in sorted(weights.items())},
                      "weights must not all be zero")
  tokenizers.data_tokenizer(d)  # A ConfigError when its file is missing (the byte one has none).

"""Where a sharded stream's files are: corpus, array_record, webdataset, parquet and obelics
streams read <split>-*.<ext> files in a folder (or a glob with {split}).

Shared by the data config's validator (do the shards exist?) and the sources that open them, so
neither imports the other for it.
"""

from etils import epath

# File extension of each sharded source's files, and the format's name in messages.
SHARD_EXT = {"corpus": "array_record", "array_record": "array_record", "webdataset": "tar",
             "parquet": "parquet", "obelics": "parquet"}
KIND = {"corpus": "ArrayRecord", "array_record": "ArrayRecord", "webdataset": "WebDataset (.tar)",
        "parquet": "Parquet", "obelics": "Parquet"}


def shard_paths(path: str, split: str, ext: str = "array_record") -> list[epath.Path]:
  """Shards of one split: `path` is a folder with <split>-*.<ext> or a glob with {split}."""
  if "{split}" in path or any(ch in path for ch in "*?["):
    pattern = epath.Path(path.replace("{split}", split))
    return sorted(pattern.parent.glob(pattern.name)) if pattern.parent.exists() else []
  p = epath.Path(path)
  if p.is_file():
    return [p] if split in p.name else []
  return sorted(p.glob(f"{split}-*.{ext}")) if p.exists() else []


def stream_shard_dir(data, s) -> str:
  """data: config.data; s: one of its streams."""
  return str(epath.Path(data.data_dir) / s.name) if s.source == "corpus" else s.path

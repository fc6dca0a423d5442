"""`mmscale data convert`: a user's WebDataset / Parquet / OBELICS shards (or a Hugging Face dataset
saved to disk) -> mmscale's ArrayRecord shards (the schema of records.py) and a manifest entry,
the fastest path for repeated training.

  OUT/NAME/<split>-k-of-n.array_record   one record per readable document, in source order
  OUT/manifest.json  {NAME: {"source", "path", "fields", "licence", "examples": {split: n},
                             "raw_bytes": {split: {modality: n}}, "skipped": {split: {reason: n}},
                             "shards": {split: [...]}}}     (other entries are kept)

Everything is opened and checked (shards present for every split, fields, columns) before
anything is written; unreadable examples are skipped and counted as in training. Train on the
result with stream("corpus", NAME) and data.data_dir=OUT, or stream("array_record", path=OUT/NAME).
"""

import json

import ml_collections
from etils import epath

from mmscale.data import config as data_config
from mmscale.data import shards
from mmscale.data import fields as fields_lib
from mmscale.data import records, sources
from mmscale.data.corpora import prepare
from mmscale.errors import ConfigError, UserError

KINDS = ("webdataset", "parquet", "obelics", "hf")


def _open(source, path, fields, name, splits):
  c = ml_collections.ConfigDict({"data": data_config.defaults()})
  c.data.streams = {name: data_config.stream(source, path=path, fields=fields)}
  docs = {}
  for split in splits:
    if source == "hf":  # A save_to_disk folder: hf.HfDocs names what is wrong with it.
      docs[split] = sources.make_docs(c, name, split)
      continue
    if not shards.shard_paths(path, split, shards.SHARD_EXT[source]):
      raise UserError(f"--path={path}: no {shards.SHARD_EXT[source]} shards for split "
                      f"{split!r} (expected {split}-*.{shards.SHARD_EXT[source]} or a glob with {{split}})")
    docs[split] = sources.make_docs(c, name, split)
  return docs


def convert(source: str, path: str, out, name: str, fields: str = "", splits=("train", "validation"),
            licence: str = "", shard_size: int = 2000, image_format: str = "png", echo=print) -> dict:
  if source not in KINDS:
    raise UserError(f"--source={source!r}: must be one of {', '.join(KINDS)}")
  if not name or any(ch in name for ch in "/\\ ") or name.startswith("."):
    raise UserError(f"--name={name!r}: must be a folder name (no '/', spaces or leading '.')")
  if shard_size < 1:
    raise UserError(f"--shard_size={shard_size}: must be a positive integer")
  if image_format not in ("png", "raw"):
    raise UserError(f"--image_format={image_format!r}: must be 'png' or 'raw'")
  try:
    fields_lib.parse(fields, source, "fields")
  except ConfigError as e:
    raise UserError(f"--fields={fields!r}: {str(e).split(': ', 1)[1]}") from e
  docs = _open(source, path, fields, name, splits)  # All checks before anything is written.
  out = epath.Path(out)
  target = out / name
  target.mkdir(parents=True, exist_ok=True)
  info = {"source": source, "path": str(path), "fields": fields, "licence": licence,
          "examples": {}, "raw_bytes": {}, "skipped": {}, "shards": {}}
  for split, d in docs.items():
    totals = {"text": 0, "image": 0, "audio": 0}
    skipped, kept = {}, [0]

    def recs(d=d, totals=totals, skipped=skipped, kept=kept):
      for i in range(len(d)):
        try:
          parts = d[i]
        except records.CorruptRecord as e:
          skipped[e.reason] = skipped.get(e.reason, 0) + 1
          continue
        for m, v in prepare.raw_bytes(parts).items():
          totals[m] += v
        kept[0] += 1
        yield records.encode(parts, f"{split}-{i}", image_format=image_format)

    for old in target.glob(f"{split}-*.array_record"):
      old.unlink()
    paths = records.write_shards(target, split, recs(), max(1, -(-len(d) // shard_size)), shard_size)
    info["examples"][split], info["raw_bytes"][split] = kept[0], totals
    info["skipped"][split] = dict(sorted(skipped.items()))
    info["shards"][split] = [epath.Path(p).name for p in paths]
    echo(f"{name} {split}: {kept[0]} documents from {len(d)} in {len(paths)} shard(s)"
         + (f", skipped {', '.join(f'{n} {r}' for r, n in sorted(skipped.items()))}" if skipped else ""))
  manifest_path = out / "manifest.json"
  manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
  manifest[name] = info
  manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True))
  return info

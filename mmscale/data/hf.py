"""Local Hugging Face `datasets` (optional dependency: pip install 'mmscale[hf]') as a
random-access document source: one document per row, `fields` naming the columns as for Parquet.

`path` is a folder written by `DatasetDict.save_to_disk` (the split is picked by name) or by
`Dataset.save_to_disk` with "{split}" in the path. Image and audio columns are read undecoded
(`decode=False`: the stored file bytes, or the file at the stored path), so decoding, its errors
and their counting are the same as for the other sources.
"""

import os

from mmscale.data import parquet
from mmscale.errors import UserError


def _load(path: str, split: str, key: str):
  try:
    import datasets  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise UserError(f"config.{key}.source='hf' needs the datasets package: "
                    "pip install 'mmscale[hf]'") from e
  where = path.replace("{split}", split)
  try:
    ds = datasets.load_from_disk(where)
  except Exception as e:  # Not a saved dataset: one line naming the folder.
    raise UserError(f"config.{key}.path={where!r}: not a dataset saved with save_to_disk "
                    f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from e
  if isinstance(ds, datasets.DatasetDict):
    if split not in ds:
      raise UserError(f"config.{key}.path={where!r}: no split {split!r} (splits: {', '.join(ds)})")
    ds = ds[split]
  return datasets, ds


class HfDocs:

  def __init__(self, path: str, split: str, fields, key: str, image_size: int | None = None):
    datasets, ds = _load(path, split, key)
    self.image_size = image_size
    self.path, self.fields = path.replace("{split}", split), fields
    cols = [alts[0] for _, alts in fields]
    for c in cols:
      if c not in ds.column_names:
        raise UserError(f"config.{key}.fields: column {c!r} is not in {self.path} "
                        f"(columns: {', '.join(ds.column_names)})")
    for c in cols:
      feat = ds.features[c]
      if isinstance(feat, (datasets.Image, datasets.Audio)):
        ds = ds.cast_column(c, type(feat)(decode=False))
    self._ds = ds.select_columns(cols)

  def __len__(self):
    return len(self._ds)

  def __getitem__(self, i):
    row = self._ds[int(i)]
    for k, v in row.items():  # A path-only image or clip: the file's bytes.
      if isinstance(v, dict) and not v.get("bytes") and v.get("path") and os.path.exists(v["path"]):
        with open(v["path"], "rb") as f:
          row[k] = {"bytes": f.read(), "path": v["path"]}
    return parquet.row_parts(self.fields, row, f"{self.path}:row {int(i)}", image_size=self.image_size)

  def __repr__(self):
    return f"HfDocs({self.path}, {len(self)} rows)"

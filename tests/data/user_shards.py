"""Writers of small user-format shards (WebDataset tar, Parquet, OBELICS Parquet) from documents of
the shipped corpora, as a user's pipeline would have written them."""

import io
import json
import tarfile

import numpy as np

from mmscale.data import media


def jpeg(img) -> bytes:
  from PIL import Image  # pylint: disable=g-import-not-at-top
  buf = io.BytesIO()
  Image.fromarray(np.asarray(img, np.uint8).squeeze()).save(buf, format="JPEG", quality=90)
  return buf.getvalue()


def caption_pairs(docs):
  """(image uint8, caption) of caption documents (image then text)."""
  out = []
  for _, parts in docs:
    img = next(v for k, v in parts if k == "image")
    text = " ".join(v for k, v in parts if k == "text")
    out.append((img, text))
  return out


def _add(tf, name, data: bytes):
  info = tarfile.TarInfo(name)
  info.size = len(data)
  tf.addfile(info, io.BytesIO(data))


def write_webdataset(path, pairs, image_ext="png", text_ext="txt"):
  """One tar shard: KEY.<image_ext> + KEY.<text_ext> (json: {"caption": ...}) per pair."""
  with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tf:
    for i, (img, text) in enumerate(pairs):
      key = f"sample{i:06d}"
      _add(tf, f"{key}.{image_ext}", jpeg(img) if image_ext == "jpg" else media.encode_png(img.squeeze()))
      body = json.dumps({"caption": text, "key": key}) if text_ext == "json" else text
      _add(tf, f"{key}.{text_ext}", body.encode())
  return path


def write_parquet(path, pairs, row_group_size=16, image_column="image", text_column="caption"):
  """One document per row: image bytes (Hugging Face Image struct) and caption."""
  import pyarrow as pa  # pylint: disable=g-import-not-at-top
  import pyarrow.parquet as pq  # pylint: disable=g-import-not-at-top
  table = pa.table({
      image_column: [{"bytes": media.encode_png(img.squeeze()), "path": f"{i}.png"}
                     for i, (img, _) in enumerate(pairs)],
      text_column: [t for _, t in pairs],
  })
  pq.write_table(table, path, row_group_size=row_group_size)
  return path


def write_obelics(path, docs, row_group_size=8):
  """OBELICS rows: `texts` and `images` lists of equal length, one non-null per position."""
  import pyarrow as pa  # pylint: disable=g-import-not-at-top
  import pyarrow.parquet as pq  # pylint: disable=g-import-not-at-top
  texts, images = [], []
  for _, parts in docs:
    texts.append([v if k == "text" else None for k, v in parts])
    images.append([media.encode_png(v.squeeze()) if k == "image" else None for k, v in parts])
  pq.write_table(pa.table({"texts": texts, "images": images}), path, row_group_size=row_group_size)
  return path


def write_all(root, shipped) -> dict:
  """root/wds: Tux Paint (png + txt) and Fashion-MNIST (jpg + json) pairs, one tar shard each per
  split; root/pq: the same pairs as Parquet rows; root/ob: GIMP manual pages as OBELICS rows.
  Returns {split: [(image, caption)]} in the sources' order."""
  pairs = {}
  for d in ("wds", "pq", "ob"):
    (root / d).mkdir(exist_ok=True)
  for split in ("train", "validation"):
    tux = caption_pairs(shipped["tuxpaint"][split])
    fm = caption_pairs(shipped["fashion_mnist"][split])
    pairs[split] = tux + fm
    write_webdataset(root / "wds" / f"{split}-000.tar", tux, "png", "txt")
    write_webdataset(root / "wds" / f"{split}-001.tar", fm, "jpg", "json")
    write_parquet(root / "pq" / f"{split}-000.parquet", tux + fm)
    write_obelics(root / "ob" / f"{split}-000.parquet", shipped["gimp"][split])
  return pairs

"""`data.streams.NAME.fields` of the user-data sources: which file or column holds each part.

  "image=jpg|png,text=txt|json"   WebDataset: part kind = member extensions (first present wins)
  "image=image,text=caption"      Parquet: part kind = column (in this order in the document)
  "text=texts,image=images"       OBELICS: the list column of texts and of images
  "image=image,text=caption"      Hugging Face datasets saved to disk: columns, as for Parquet
  "image"                         ArrayRecord (array_record, corpus): the part kinds to keep

Parts appear in the document in the order written; a field list with only `image` (or only
`audio`) makes a uni-modal stream.
"""

from mmscale.contract import MODALITIES as KINDS
from mmscale.errors import ConfigError

DEFAULTS = {
    "webdataset": "image=jpg|jpeg|png|webp,text=txt|json",
    "parquet": "image=image,text=caption",
    "obelics": "text=texts,image=images",
    "hf": "image=image,text=caption",
}


def parse(text: str, source: str, key: str) -> list[tuple[str, tuple[str, ...]]]:
  """-> [(kind, (name, ...)), ...]; a ConfigError names `key` when the string is malformed."""
  out = []
  for part in filter(None, (p.strip() for p in (text or DEFAULTS[source]).split(","))):
    kind, _, names = part.partition("=")
    alts = tuple(filter(None, (n.strip() for n in names.split("|"))))
    if kind.strip() not in KINDS or not alts or any(k == kind.strip() for k, _ in out):
      raise ConfigError(f"{key}.fields", text,
                        f"must look like {DEFAULTS[source]!r}: each of text, image, audio at most once")
    out.append((kind.strip(), alts))
  if not out:
    raise ConfigError(f"{key}.fields", text, "must name at least one part")
  if source != "webdataset" and any(len(alts) > 1 for _, alts in out):
    raise ConfigError(f"{key}.fields", text, "must name one column per part ('|' alternatives "
                      "are for WebDataset member extensions)")
  if source == "obelics" and sorted(k for k, _ in out) != ["image", "text"]:
    raise ConfigError(f"{key}.fields", text, "an OBELICS stream needs text=COLUMN,image=COLUMN")
  return out


def parse_kinds(text: str, key: str) -> tuple[str, ...] | None:
  """ArrayRecord/corpus streams: `fields` is the part kinds to keep, e.g. "image" turns the
  Fashion-MNIST pairs into an image-only stream; "" keeps every part (None)."""
  kinds = tuple(filter(None, (p.strip() for p in (text or "").split(","))))
  if not kinds:
    return None
  if any(k not in KINDS for k in kinds) or len(set(kinds)) < len(kinds):
    raise ConfigError(f"{key}.fields", text, f"must be part kinds to keep, each of {', '.join(KINDS)} "
                      "at most once (e.g. 'image' for an image-only stream)")
  return kinds

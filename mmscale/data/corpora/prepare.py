"""`mmscale data prepare`: fetch, convert and shard the corpora; train the BPE tokenizer.

Layout of the output folder (config.data.data_dir):
  <corpus>/train-00000-of-0000N.array_record, <corpus>/validation-...   (schema: records.py)
  tokenizer/bpe-<vocab>.json                                           (byte-level BPE)
  manifest.json   {corpus: {"source", "licence", "stand_in", "examples": {split: n},
                            "raw_bytes": {split: {modality: n}}, "shards": {split: [..]}}}
  _packages/      downloaded .deb files and npm tarballs (reused by later runs)
A corpus that cannot be fetched or read is reported in one line and replaced by procedural
documents of the same kind (manifest "stand_in": "procedural:<task>"), so configs still run.
"""

import json
import shutil
import time

from absl import logging
from etils import epath

from mmscale.data import bpe, procedural, records
from mmscale import packages
from mmscale.data.corpora import CORPORA

STAND_IN_SIZE = {"train": 2000, "validation": 200}


def raw_bytes(parts) -> dict[str, int]:
  """Raw bytes per modality of a document (as the tokenizers count them)."""
  out = {"text": 0, "image": 0, "audio": 0}
  for kind, value in parts:
    if kind == "text":
      out["text"] += len(value.encode())
    elif kind == "image":
      out["image"] += int(value.size)
    elif kind == "audio":
      out["audio"] += 2 * len(value[0])
    elif kind == "audio_bytes":
      from mmscale.data import media  # pylint: disable=g-import-not-at-top
      out["audio"] += 2 * len(media.decode_wav(value[1])[0])
  return out


def stand_in(task: str, image_size: int = 32):
  return {split: [(f"{task}-{i}", procedural.GENERATORS[task](0, split, i, image_size))
                  for i in range(n)] for split, n in STAND_IN_SIZE.items()}


def write_corpus(out_dir, docs_by_split, shard_size=2000) -> dict:
  info = {"examples": {}, "raw_bytes": {}, "shards": {}}
  for split, docs in docs_by_split.items():
    totals = {"text": 0, "image": 0, "audio": 0}
    recs = []
    for doc_id, parts in docs:
      for m, v in raw_bytes(parts).items():
        totals[m] += v
      recs.append(records.encode(parts, doc_id, image_format="raw"))  # Small images: raw is faster to read.
    n_shards = max(1, -(-len(recs) // shard_size))
    paths = records.write_shards(out_dir, split, recs, n_shards)
    info["examples"][split] = len(recs)
    info["raw_bytes"][split] = totals
    info["shards"][split] = [epath.Path(p).name for p in paths]
  return info


def prepare(out, corpora=None, max_examples: int = 10_000, bpe_vocab_size: int = 1024,
            echo=print) -> dict:
  out = epath.Path(out)
  out.mkdir(parents=True, exist_ok=True)
  names = list(corpora or CORPORA)
  manifest_path = out / "manifest.json"
  manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
  for name in names:
    mod = CORPORA[name]
    t0 = time.time()
    try:
      docs = mod.convert(mod.fetch(out / "_packages"), max_examples)
      if not docs.get("train") or not docs.get("validation"):
        raise packages.InstallError("no examples found")
      stand = ""
    except (packages.InstallError, OSError, ValueError) as e:
      echo(f"{name}: not available ({e}); procedural {mod.TASK} data stands in")
      docs, stand = stand_in(mod.TASK), f"procedural:{mod.TASK}"
    for old in (out / name).glob("*.array_record") if (out / name).exists() else ():
      old.unlink()
    info = write_corpus(out / name, docs)
    info.update(source=mod.SOURCE, licence=mod.LICENCE if not stand else "procedural (CC0)",
                task=mod.TASK, stand_in=stand, max_examples=max_examples)
    manifest[name] = info
    echo(f"{name}: {info['examples']['train']} train / {info['examples']['validation']} validation "
         f"examples{' (stand-in)' if stand else ''} in {time.time() - t0:.1f}s")
  # The unpacked packages are only needed for conversion; the downloads stay for a re-run.
  shutil.rmtree(out / "_packages" / "debian", ignore_errors=True)
  texts = []
  for name in manifest:
    shards = [out / name / s for s in manifest[name]["shards"]["train"]]
    if shards:
      texts.append(bpe.doc_texts(_read_docs(shards), 4_000_000 // max(1, len(manifest))))
  path = bpe.train_bpe((t for it in texts for t in it), bpe_vocab_size,
                       out / "tokenizer" / f"bpe-{bpe_vocab_size}.json")
  echo(f"tokenizer: {path}")
  manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True))
  logging.info("wrote %s", manifest_path)
  return manifest


def _read_docs(shards):
  from array_record.python import array_record_data_source as ards  # pylint: disable=g-import-not-at-top
  src = ards.ArrayRecordDataSource([str(s) for s in shards])
  for i in range(len(src)):
    try:
      yield records.decode(src[i])[0]
    except records.CorruptRecord:
      continue

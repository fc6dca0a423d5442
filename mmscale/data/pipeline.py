"""The data pipeline: per-stream Grain MapDatasets -> Grain mixing -> packing -> batches.

  stream s:  source (docs -> tokenized, cached) . shuffle(seed, s) . repeat()
             [. map_with_index(crop/flip, then tokenize) when data.augment is on] . [process::count]
             (host_split="examples"; with "rows" every process packs the global batch, keeps its rows)
  mixture:   grain.MapDataset.mix(streams, weights)   (weights / mean length when mix_by=tokens)
  batches:   .to_iter_dataset() -> PackIterDataset (mmscale/data/packing.py) -> [prefetch]

Order is a pure function of (seed, position, process): Grain's shuffle is an index permutation
re-seeded each epoch, the process slice partitions every epoch's order among processes, and the
mixture interleaves streams deterministically by their proportions. The iterator state (Grain's
index plus the packer's carry and the realised counts) is small JSON, saved in the checkpoint.

The pipeline is a stage of its own config: `train_iterator` and `eval_batches` receive config.data
(frozen, mmscale/stages.py) and, as explicit inputs, the seed, the process index and count and the
number of eval batches (a train setting). `make_train_iterator` and `make_eval_batches` cut a whole
run config into those inputs, for the tools and tests that hold one.
"""

import zlib

import grain
import numpy as np

from mmscale.contract import MODALITIES
from mmscale.data import config as data_config
from mmscale.data import feeding, length_cache, packing, sources, tokenizers
from mmscale.errors import UserError


def stream_names(data) -> list[str]:
  """The stream names of config.data, sorted (a stream's id is its index here)."""
  return sorted(data.streams.keys())


def vocab_size(config) -> int:
  return tokenizers.get_tokenizer(config).vocab_size


def _stream_seed(seed: int, name: str) -> int:
  return (zlib.crc32(name.encode()) + 1_000_003 * int(seed)) % 2**32


def _rows(d, process_index, process_count) -> int:
  b = d.batch_size
  if process_count < 1 or not 0 <= process_index < process_count:
    raise UserError(f"process_index={process_index} must be in [0, {process_count})")
  if b % process_count:
    raise UserError(f"config.data.batch_size={b} must be divisible by the {process_count} processes")
  return b // process_count


def _read_options(d):
  return grain.ReadOptions(num_threads=d.num_threads, prefetch_buffer_size=4 * d.num_threads)


def mean_lengths(datasets, k: int) -> list[float]:
  """Mean example length (positions) over the first k examples of each dataset's global order."""
  out = []
  for ds in datasets:
    lens = [len(x[1]["tokens"]) for x in (ds[i] for i in range(k)) if x is not None]
    out.append(float(np.mean(lens)) if lens else 1.0)
  return out


class DataIterator:
  """Batches of one process with JSON state and the realised mixture shares."""

  def __init__(self, ds, names, token_sources, rows: slice = slice(None)):
    self._ds, self._names, self._sources, self._rows = ds, names, token_sources, rows
    self._it = iter(ds)
    self._reset_counts()

  def _reset_counts(self):
    self._examples = np.zeros(len(self._names), np.int64)
    self._tokens = np.zeros(len(self._names), np.int64)
    self._modality = np.zeros(len(MODALITIES), np.int64)
    self._step = 0

  def __iter__(self):
    return self

  def __next__(self) -> dict:
    b = next(self._it)
    valid = b["segment_ids"] > 0
    n = len(self._names)
    self._tokens += np.bincount(b["stream"][valid], minlength=n)
    self._examples += np.bincount(b["stream"][valid & (b["positions"] == 0)], minlength=n)
    self._modality += np.bincount(b["modality"][valid], minlength=len(MODALITIES))
    self._step += 1
    return {k: v[self._rows] for k, v in b.items()}

  def get_state(self) -> dict:
    return {"grain": self._it.get_state(), "step": self._step,
            "examples": self._examples.tolist(), "tokens": self._tokens.tolist(),
            "modality_tokens": self._modality.tolist()}

  def set_state(self, state: dict) -> None:
    self._it.close()  # Stops a prefetch thread reading ahead from the old position.
    self._it = iter(self._ds)
    self._it.set_state(state["grain"])
    self._step = int(state["step"])
    self._examples = np.array(state["examples"], np.int64)
    self._tokens = np.array(state["tokens"], np.int64)
    self._modality = np.array(state["modality_tokens"], np.int64)

  def realised(self) -> dict:
    """Shares fed so far: "sequences" = packed examples per stream, "tokens" = non-pad positions."""
    share = lambda c: {s: float(v) / max(1, int(c.sum())) for s, v in zip(self._names, c)}
    return {"sequences": share(self._examples), "tokens": share(self._tokens),
            "modality_tokens": {m: int(v) for m, v in zip(MODALITIES, self._modality)},
            "steps": self._step,
            "corrupt_records": int(sum(s.corrupt for s in self._sources)),
            "skipped": {s.name: dict(sorted(s.skipped.items())) for s in self._sources if s.skipped}}


def _split(d, process_index, process_count):
  """-> (example slice (start, step), rows packed per batch, rows this process keeps).

  host_split="rows": every process packs the same global batch and keeps its block of rows, so a
  multi-host run computes exactly what one process would (losses equal 1 x 8 devices).
  host_split="examples": each process reads and packs only every process_count-th example, so
  reading scales with the hosts, but the batches differ from a single-process run's.
  """
  rows = _rows(d, process_index, process_count)
  return feeding.HOST_SPLITS[d.host_split](process_index, process_count, d.batch_size, rows)


def make_train_iterator(config, process_index: int = 0, process_count: int = 1) -> DataIterator:
  """train_iterator() of a whole run config (config.data and its seed)."""
  return train_iterator(config.data, int(config.seed), process_index, process_count)


def train_iterator(d, seed: int, process_index: int = 0, process_count: int = 1) -> DataIterator:
  """The training batches of this process. d: config.data; seed: the run's seed."""
  data_config.validate_section(d)
  (start, step), rows, keep = _split(d, process_index, process_count)
  tok = tokenizers.data_tokenizer(d)
  names = stream_names(d)
  weights = data_config.weights(d)
  used, datasets, token_sources = [], [], []
  for sid, name in enumerate(names):
    if weights[name] <= 0:
      continue
    augment = sources.train_augmenter(d, seed, name)  # Crops need the stored size; else decode to the model's.
    docs = sources.docs(d, name, d.streams[name].split, None if augment else d.image_size)
    src = sources.TokenizedSource(docs, tok, d, sid, name, augment)
    if not len(src):
      raise UserError(f"stream {name!r}: the {d.streams[name].split!r} split is empty")
    ds = grain.MapDataset.source(src)
    if d.shuffle:
      ds = ds.shuffle(seed=_stream_seed(seed, name))
    ds = ds.repeat()
    if src.augment:  # Crops drawn per position of the stream's order (before the process slice).
      ds = ds.map_with_index(src.at_position)
    used.append(name)
    datasets.append(ds)
    token_sources.append(src)
  w = np.array([weights[n] for n in used])

  def lengths():  # Cached on disk; read or measured only when data.mix_by needs them.
    key = length_cache.cache_key(d.to_dict(), int(seed), used, [len(s) for s in token_sources])
    return length_cache.mean_lengths(key, lambda: mean_lengths(datasets, d.estimate_examples))

  w = feeding.MIX_BY[d.mix_by](w, lengths)
  # Grain scales the smallest proportion to 100 and truncates to int; pre-scale for precision.
  w = (w / w.min() * 10_000).tolist()
  sharded = [ds[start::step] for ds in datasets]
  mixed = grain.MapDataset.mix(sharded, w) if len(sharded) > 1 else sharded[0]
  ds = packing.PackIterDataset(mixed.to_iter_dataset(_read_options(d)), rows, d.seq_len, d.patch_dim)
  if d.prefetch:
    ds = grain.experimental.ThreadPrefetchIterDataset(ds, prefetch_buffer_size=d.prefetch)
  return DataIterator(ds, names, token_sources, keep)


def make_eval_batches(config, stream: str, process_index: int = 0, process_count: int = 1,
                      num_batches: int | None = None) -> list[dict]:
  """eval_batches() of a whole run config; `num_batches` defaults to config.train.eval_batches."""
  if num_batches is None:
    num_batches = int(config.train.get("eval_batches", 4)) if "train" in config else 4
  return eval_batches(config.data, stream, num_batches, process_index, process_count)


def eval_batches(d, stream: str, num_batches: int, process_index: int = 0,
                 process_count: int = 1) -> list[dict]:
  """The first `num_batches` packed batches of the stream's held-out split, in a fixed order, this
  process's share of rows. d: config.data."""
  names = stream_names(d)
  if stream not in names:
    raise UserError(f"unknown stream {stream!r}; streams are {', '.join(names)}")
  (start, step), rows, keep = _split(d, process_index, process_count)
  tok = tokenizers.data_tokenizer(d)
  src = sources.TokenizedSource(sources.docs(d, stream, d.streams[stream].eval_split, d.image_size),
                                tok, d, names.index(stream), stream)
  ds = grain.MapDataset.source(src)[start::step]
  it = iter(packing.PackIterDataset(ds.to_iter_dataset(_read_options(d)), rows, d.seq_len, d.patch_dim))
  out = []
  for b in it:
    out.append({k: v[keep] for k, v in b.items()})
    if len(out) == num_batches:
      break
  return out

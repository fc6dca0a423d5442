"""Packing tokenized examples into fixed-length rows ([B, L] batches, the batch of mmscale/models/nmm.py).

Examples are laid end to end. One that does not fit the rest of a row is cut at its last allowed
break (never inside a media item), and the remainder starts the next row as a new segment whose
positions continue from the cut (so `positions == 0` marks exactly the start of an example). When
no break fits, the row is padded. Validation guarantees one media item fits an empty row.

PackIterDataset is a Grain IterDataset: its iterator state is the parent's state before the
example being cut plus the offset into it, so a restored iterator yields the same batches.
"""

import grain
import numpy as np

FIELDS = ("tokens", "patches", "modality", "segment_ids", "positions", "block_ids", "raw_bytes",
          "stream")


def empty_batch(rows: int, seq_len: int, patch_dim: int) -> dict:
  b = {k: np.zeros((rows, seq_len), np.int32) for k in FIELDS if k not in ("patches", "raw_bytes")}
  b["patches"] = np.zeros((rows, seq_len, patch_dim), np.float32)
  b["raw_bytes"] = np.zeros((rows, seq_len), np.float32)
  return b


_ARANGE = np.arange(4096, dtype=np.int32)  # Shared source of the positions copied into rows.


def _arange(lo: int, hi: int) -> np.ndarray:
  global _ARANGE
  if hi > len(_ARANGE):
    _ARANGE = np.arange(max(hi, 2 * len(_ARANGE)), dtype=np.int32)
  return _ARANGE[lo:hi]


def _place(views, at, seg, block_base, stream, ex, lo, hi, media_lo):
  """Copies positions [lo, hi) of `ex` to the flat views of the FIELDS (patches: [positions,
  patch_dim]) from offset `at`; returns (#media rows copied, max block id so far)."""
  tokens, patches, modality, segment_ids, positions, block_ids, raw_bytes, streams = views
  end = at + hi - lo
  mod = ex["modality"][lo:hi]
  tokens[at:end] = ex["tokens"][lo:hi]
  modality[at:end] = mod
  segment_ids[at:end] = seg
  positions[at:end] = _arange(lo, hi)
  raw_bytes[at:end] = ex["raw_bytes"][lo:hi]
  streams[at:end] = stream
  idx = mod.nonzero()[0]  # Media positions (modality != TEXT) within the copied range.
  k = len(idx)
  if not k:
    return 0, block_base
  blk = ex["block"][lo:hi][idx]
  first, last = int(idx[0]), int(idx[-1])
  src = ex["media"][media_lo:media_lo + k]
  if last - first + 1 == k:  # One run of media positions: slices instead of fancy indexing.
    block_ids[at + first:at + last + 1] = blk
    if block_base:
      block_ids[at + first:at + last + 1] += block_base
    patches[at + first:at + last + 1] = src
  else:
    dst = idx + at
    block_ids[dst] = blk.astype(np.int32) + block_base
    patches[dst] = src
  return k, block_base + int(blk[-1])  # Block ids increase along an example.


class Packer:
  """Fills batches from a stream of (stream_id, example) with a carried partial example."""

  def __init__(self, rows: int, seq_len: int, patch_dim: int):
    self.rows, self.seq_len, self.patch_dim = rows, seq_len, patch_dim

  def fill(self, fetch, carry):
    """fetch() -> (stream, example) or raises StopIteration. carry: None or (stream, ex, offset,
    media_offset). Returns (batch, carry); the batch may be partially filled at end of data."""
    b = empty_batch(self.rows, self.seq_len, self.patch_dim)
    L = self.seq_len
    # Flat views of the fresh (contiguous) arrays: row r starts at r * L.
    views = tuple(b[f].reshape(-1, self.patch_dim) if f == "patches" else b[f].reshape(-1)
                  for f in FIELDS)
    exhausted = False
    for r in range(self.rows):
      pos, seg, block_base = 0, 0, 0
      while pos < L:
        if carry is None:
          try:
            carry = (*fetch(), 0, 0)
          except StopIteration:
            exhausted = True
            break
        stream, ex, off, moff = carry
        n = len(ex["tokens"])
        if n - off <= L - pos:
          cut = n
        else:
          br = ex["breaks"]
          i = int(br.searchsorted(off + L - pos, side="right")) - 1
          cut = int(br[i]) if i >= 0 else 0
          if cut <= off:  # Nothing fits before the next break: pad the row.
            if pos == 0:
              raise ValueError(f"a media item of {n} positions does not fit seq_len={L}")
            break
        seg += 1
        k, block_base = _place(views, r * L + pos, seg, block_base, stream, ex, off, cut, moff)
        pos += cut - off
        carry = None if cut == n else (stream, ex, cut, moff + k)
      if exhausted:
        break
    return b, carry


class PackIterDataset(grain.IterDataset):
  """Grain IterDataset: parent yields (stream_id, example) -> batches of packed rows."""

  def __init__(self, parent, rows: int, seq_len: int, patch_dim: int, drop_remainder=False):
    super().__init__(parent)
    self._args = (rows, seq_len, patch_dim)
    self._drop_remainder = drop_remainder

  def __iter__(self):
    return _PackIterator(self._parent.__iter__(), *self._args, self._drop_remainder)


class _PackIterator(grain.DatasetIterator):

  def __init__(self, parent, rows, seq_len, patch_dim, drop_remainder):
    super().__init__(parent)
    self._packer = Packer(rows, seq_len, patch_dim)
    self._drop_remainder = drop_remainder
    self._carry = None
    self._carry_state = None  # Parent state from which the carried example is re-read.
    self._next_state = parent.get_state()

  def _fetch(self):
    self._carry_state = self._next_state
    item = next(self._parent)
    self._next_state = self._parent.get_state()
    return item

  def __next__(self):
    b, self._carry = self._packer.fill(self._fetch, self._carry)
    if not b["segment_ids"].any() or (self._drop_remainder and not b["segment_ids"][-1].any()):
      raise StopIteration
    return b

  def get_state(self):
    if self._carry is None:
      return {"parent": self._next_state, "offset": 0, "media_offset": 0}
    return {"parent": self._carry_state, "offset": self._carry[2], "media_offset": self._carry[3]}

  def set_state(self, state):
    self._parent.set_state(state["parent"])
    self._next_state, self._carry = state["parent"], None
    if state["offset"]:
      stream, ex = self._fetch()
      self._carry = (stream, ex, int(state["offset"]), int(state["media_offset"]))

"""Pipeline statistics: realised mixture shares, tokens per raw byte per modality, throughput."""

import time

import numpy as np

from mmscale.contract import MODALITIES
from mmscale.data import config as data_config
from mmscale.data import pipeline


def measure(config, sequences: int, process_index: int = 0, process_count: int = 1) -> dict:
  """Runs the train pipeline for at least `sequences` packed rows and summarises what it fed."""
  t0 = time.perf_counter()
  it = pipeline.make_train_iterator(config, process_index, process_count)
  t_build = time.perf_counter() - t0
  rows = tokens = 0
  raw = np.zeros(len(MODALITIES))
  count = np.zeros(len(MODALITIES))
  t0 = time.perf_counter()
  while rows < sequences:
    b = next(it)
    valid = b["segment_ids"] > 0
    rows += b["segment_ids"].shape[0]
    tokens += int(valid.sum())
    mod = b["modality"][valid]
    count += np.bincount(mod, minlength=len(MODALITIES))
    raw += np.bincount(mod, weights=b["raw_bytes"][valid], minlength=len(MODALITIES))
  dt = time.perf_counter() - t0
  shares = it.realised()
  target = data_config.stream_weights(config)
  by = "sequences" if config.data.mix_by == "examples" else "tokens"
  return {
      "sequences": rows, "mix_by": config.data.mix_by, "target": target,
      "realised_sequences": shares["sequences"], "realised_tokens": shares["tokens"],
      "max_abs_error": max(abs(shares[by].get(s, 0.0) - w) for s, w in target.items()),
      "modality_tokens": shares["modality_tokens"],
      "modality_share": {m: float(c / max(1, count.sum())) for m, c in zip(MODALITIES, count)},
      "tokens_per_raw_byte": {m: (float(c / r) if r else None)
                              for m, c, r in zip(MODALITIES, count, raw)},
      "raw_bytes": {m: float(r) for m, r in zip(MODALITIES, raw)},
      "fill": tokens / (rows * config.data.seq_len),
      "corrupt_records": shares["corrupt_records"], "skipped": shares["skipped"],
      "tokens_per_s": tokens / dt, "sequences_per_s": rows / dt, "build_s": t_build,
  }


def format_table(s: dict) -> str:
  lines = [f"{s['sequences']} sequences, mix_by={s['mix_by']}, fill {s['fill']:.1%}, "
           f"{s['tokens_per_s']:,.0f} tokens/s ({s['sequences_per_s']:,.0f} sequences/s)",
           f"{'stream':<14}{'target':>8}{'sequences':>11}{'tokens':>9}"]
  for st, w in s["target"].items():
    lines.append(f"{st:<14}{w:>8.2%}{s['realised_sequences'].get(st, 0):>11.2%}"
                 f"{s['realised_tokens'].get(st, 0):>9.2%}")
  lines.append(f"max |realised - target| ({s['mix_by']}): {s['max_abs_error']:.4f}")
  for st, reasons in s.get("skipped", {}).items():  # Examples that could not be read.
    lines.append(f"skipped in {st}: " + ", ".join(f"{n} {r.replace('_', ' ')}" for r, n in reasons.items()))
  lines.append(f"{'modality':<14}{'tokens':>12}{'share':>8}{'tokens/raw byte':>17}")
  for m in MODALITIES:
    tpb = s["tokens_per_raw_byte"][m]
    lines.append(f"{m:<14}{s['modality_tokens'][m]:>12,}{s['modality_share'][m]:>8.2%}"
                 f"{(f'{tpb:.4f}' if tpb is not None else '-'):>17}")
  return "\n".join(lines)

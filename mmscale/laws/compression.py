"""Compression-normalised data (the multimodal scaling-law hypothesis, arXiv 2409.06754).

The hypothesis: what a model learns from a modality depends on the information in its raw data, not on
how many tokens its tokenizer turns that data into. Data are therefore measured per modality in raw
bytes divided by that modality's tokens per raw byte (its tokenisation efficiency, one constant per
modality, taken as the median over the table), summed over modalities:

  D_eff = sum_m bytes_m / (tokens_m / bytes_m)_median

and the Chinchilla law is fitted with D_eff in place of tokens, on loss in bits per raw byte when the
table has it (`bpb`), so losses of different modalities are on one scale.
"""

import numpy as np

from mmscale.errors import UserError
from mmscale.laws import chinchilla
from mmscale.laws import diagnostics
from mmscale.laws import table as tbl


def modalities(table):
  ms = [c[len("bytes_"):] for c in table if c.startswith("bytes_") and f"tokens_{c[len('bytes_'):]}" in table]
  if not ms:
    raise UserError("compression-normalised law needs bytes_<modality> and tokens_<modality> columns "
                    "(raw bytes and tokens of each modality seen in training)")
  return sorted(ms)


def tokens_per_byte(table) -> dict[str, float]:
  out = {}
  for m in modalities(table):
    b, t = np.nan_to_num(table[f"bytes_{m}"]), np.nan_to_num(table[f"tokens_{m}"])
    ok = (b > 0) & (t > 0)
    if ok.any():
      out[m] = float(np.median(t[ok] / b[ok]))
  if not out:
    raise UserError("no row has both raw bytes and tokens > 0 for any modality")
  return out


def effective_data(table, ratios=None) -> np.ndarray:
  ratios = ratios or tokens_per_byte(table)
  total = np.zeros(tbl.n_rows(table))
  for m, r in ratios.items():
    b = np.nan_to_num(table[f"bytes_{m}"])
    if (b < 0).any():
      raise UserError(f"column bytes_{m}: {int((b < 0).sum())} negative values")
    total += b / r
  return total


def fit(table, loss_col=None) -> dict:
  col = loss_col or ("bpb" if "bpb" in table and table["bpb"].dtype.kind == "f" else "loss")
  tbl.require(table, ("params", col), "compression-normalised law")
  ratios = tokens_per_byte(table)
  d = effective_data(table, ratios)
  if (d <= 0).any():
    raise UserError(f"compression-normalised law: {int((d <= 0).sum())} rows have no raw bytes")
  out = chinchilla.fit(table["params"], d, table[col])
  out.update({"law": "compression", "loss_column": col, "tokens_per_byte": ratios})
  out["diagnostics"] = diagnostics.check_fit(out, table["params"], d, table[col])
  return out

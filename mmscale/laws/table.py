"""The fitter's input: a CSV table (from `mmscale collect` or by hand), checked before any fit."""

import csv
import io

import numpy as np
from etils import epath

from mmscale import contract
from mmscale.errors import UserError


def read_table(path) -> dict[str, np.ndarray]:
  """Columns of a CSV file: numeric columns as float64 (empty cells NaN), the others as str arrays."""
  path = epath.Path(path)
  if not path.exists():
    raise UserError(f"records table {path} does not exist")
  if path.is_dir():
    raise UserError(f"records table {path} is a directory; give a CSV file")
  try:  # utf-8-sig: a byte-order mark (spreadsheets write one) is dropped, not read into a name.
    rows = list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8-sig"), newline="")))
  except UnicodeDecodeError as e:
    line = e.object[:e.start].count(b"\n") + 1
    raise UserError(f"records table {path} is not UTF-8 text (line {line}, byte {e.start}: "
                    f"{e.object[e.start:e.start + 1]!r}); save it as a UTF-8 CSV") from None
  except csv.Error as e:
    raise UserError(f"records table {path} is not a readable CSV ({e})") from None
  if not rows:
    raise UserError(f"records table {path} is empty")
  header, body = rows[0], [r for r in rows[1:] if r]
  if bad := [i + 2 for i, r in enumerate(body) if len(r) != len(header)]:
    raise UserError(f"records table {path}: {len(bad)} rows have {len(header)} != cells (first: line {bad[0]})")
  return from_rows(header, body)


def from_rows(header, body) -> dict[str, np.ndarray]:
  table = {}
  for j, name in enumerate(header):
    cells = [r[j].strip() for r in body]
    try:
      table[name] = np.array([float(c) if c else np.nan for c in cells], np.float64)
    except ValueError:
      table[name] = np.array(cells, dtype=str)
  return table


def n_rows(table) -> int:
  return len(next(iter(table.values()))) if table else 0


def require(table, columns, what="fit"):
  """Raises UserError unless every column is present, numeric, finite and positive (counts each reason)."""
  for col in columns:
    if col not in table:
      raise UserError(f"{what} needs column {col!r}; the table has {', '.join(sorted(table)) or 'none'}")
    v = table[col]
    if v.dtype.kind != "f":
      raise UserError(f"column {col!r} is not numeric (e.g. {v[0]!r})")
    limit = LOSS_LIMIT if _is_loss(col) else COUNT_LIMIT
    nan, inf, nonpos = np.isnan(v), np.isinf(v), np.isfinite(v) & (v <= 0)
    huge = np.isfinite(v) & (v > limit)
    if (bad := nan | inf | nonpos | huge).any():
      reasons = [f"{k} {name}" for k, name in ((nan.sum(), "NaN"), (inf.sum(), "infinite"), (nonpos.sum(), "zero or negative"),
                                               (huge.sum(), f"above {limit:.0e}, not a plausible {'loss' if _is_loss(col) else 'count'}")) if k]
      raise UserError(f"column {col!r}: {bad.sum()} of {v.size} values rejected ({', '.join(reasons)}); "
                      f"first at data row {int(np.flatnonzero(bad)[0]) + 1}")
  if n_rows(table) == 0:
    raise UserError(f"{what}: the table has no rows")


# Beyond these a value is a unit or typing mistake, and C = 6ND or exp(loss) would overflow or
# swamp the fit: a loss (nats or bits) of 1e3 is far above log(vocabulary) for any tokenizer, and
# 1e30 is above any parameter, token or FLOP count of a trainable model.
LOSS_LIMIT, COUNT_LIMIT = 1e3, 1e30


def _is_loss(col: str) -> bool:
  return col in ("loss", "bpb") or col.startswith(("loss_", "bpb_"))


def subset(table, mask) -> dict[str, np.ndarray]:
  return {k: v[mask] for k, v in table.items()}


def groups(table, by) -> dict[str, dict[str, np.ndarray]]:
  """Splits rows by the values of the columns in `by`; keys read "source=a,fusion=early"."""
  if not by:
    return {"all": table}
  for col in by:
    if col not in table:
      raise UserError(f"--group_by column {col!r} is not in the table ({', '.join(sorted(table))})")
  keys = np.array([",".join(f"{c}={_fmt(table[c][i])}" for c in by) for i in range(n_rows(table))], dtype=str)
  return {k: subset(table, keys == k) for k in sorted(set(keys.tolist()))}


def _fmt(v):
  if isinstance(v, (float, np.floating)) and float(v).is_integer():
    return str(int(v))
  return str(v)


def drop_diverged(table) -> tuple[dict[str, np.ndarray], dict[str, str]]:
  """The rows of runs that did not diverge, and {run_id: why} for the runs left out.

  `mmscale collect` writes each run's status (and a diverged run's step and cause in status_reason):
  the evals a diverged run wrote before it blew up are not points of a converging run.
  """
  if "status" not in table or table["status"].dtype.kind == "f":  # No column, or all cells empty.
    return table, {}
  bad = np.char.lower(np.char.strip(table["status"].astype(str))) == contract.DIVERGED
  if not bad.any():
    return table, {}
  ids = table["run_id"].astype(str) if "run_id" in table else [f"row {i + 1}" for i in range(len(bad))]
  why = table.get("status_reason")
  left = {}
  for i in np.flatnonzero(bad):
    reason = str(why[i]).strip() if why is not None and why.dtype.kind != "f" else ""
    left.setdefault(str(ids[i]), f"diverged: {reason}" if reason else "diverged")
  return subset(table, ~bad), left


def left_out_note(key: str, left: dict[str, str]) -> str:
  """One line naming the runs left out of group `key` and why."""
  runs = "; ".join(f"{run} ({why})" for run, why in sorted(left.items()))
  return f"{key}: left out {len(left)} run{'s' if len(left) != 1 else ''}: {runs}"


def final_rows(table) -> dict[str, np.ndarray]:
  """The last eval of each finished run when the table says so (collect's `final` column), else all rows."""
  if "final" not in table:
    return table
  f = table["final"]
  mask = (f > 0) if f.dtype.kind == "f" else np.isin(np.char.lower(f.astype(str)), ("true", "1", "yes"))
  return subset(table, mask) if mask.any() else table


def compute(table) -> np.ndarray:
  """Training FLOPs per row: the `flops` column when present, else C = 6 N D."""
  if "flops" in table and table["flops"].dtype.kind == "f" and np.all(np.isfinite(table["flops"])):
    return table["flops"]
  return 6.0 * table["params"] * table["tokens"]


AVERAGED = ("loss", "bpb")


def average_sources(table) -> dict[str, np.ndarray]:
  """One row per (run, step) with loss and bpb averaged over the validation sources.

  A collect table has one row per run × eval point × source; fitting those rows together would
  treat each source as another run of the same (N, D). Averaging is the paper's "AVG" law (Shukor
  et al. 2025); `--group_by=source` fits each source instead. Tables without a `source` column, or
  with a single source, are returned unchanged.
  """
  if "source" not in table or len(set(table["source"].tolist())) < 2:
    return table
  key_cols = [c for c in ("run_id", "step") if c in table] or ["params", "tokens"]
  keys = [tuple(_fmt(table[c][i]) for c in key_cols) for i in range(n_rows(table))]
  order, index = [], {}
  for i, k in enumerate(keys):
    if k not in index:
      index[k] = len(order)
      order.append(i)
  group = np.array([index[k] for k in keys])
  out = {c: v[order] for c, v in table.items() if c != "source"}
  for c in AVERAGED:
    if c in table and table[c].dtype.kind == "f":
      out[c] = np.bincount(group, weights=table[c]) / np.bincount(group)
  out["source"] = np.array(["mean"] * len(order), dtype=str)
  return out

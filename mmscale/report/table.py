"""The records table as the report sees it: columns as numpy arrays, one row per run x eval x source.

Reading goes through the fitter's read_table (CSV) or the sweep's collector (a sweep root), so the
report sees exactly the table `mmscale fit` sees. From the full table the figures take
`final_points`: the last eval of each finished run, with the loss of one validation source or the
mean over sources (Shukor et al. report the average over data types).
"""

import json

import numpy as np
from etils import epath

from mmscale.contract import MODALITIES
from mmscale.errors import UserError
from mmscale.laws import read_table

# Tag columns that are study axes but not comparisons between model families.
_NOT_GROUPS = {"size", "budget", "trunk", "seed", "name", "run_id", "source", "flops_formula",
               "params_convention", "routing", "final", "step", "lr", "heldout", "kind",
               "wall_time", "status", "status_reason"}
COMPARISON_COLUMNS = ("fusion", "ffn", "mixture", "routing_mode", "moe_routing", "experts")


def read_csv(path) -> dict:
  path = epath.Path(path)
  if not path.exists():
    raise UserError(f"--records={path}: no such file")
  table = read_table(path)  # The fitter's reader: the report sees the table `mmscale fit` sees.
  for col in ("loss", "params", "tokens"):
    if col not in table:
      raise UserError(f"{path}: records table lacks column {col!r} (has {', '.join(sorted(table))})")
  if "run_id" not in table:  # A hand-made table (any CSV with params, tokens, loss): a run per row.
    table["run_id"] = np.array([f"row{i}" for i in range(n_rows(table))])
  return table


def n_rows(table) -> int:
  return len(next(iter(table.values())))


def take(table, mask) -> dict:
  return {k: v[mask] for k, v in table.items()}


def bool_column(table, name, default=False):
  if name not in table:
    return np.full(n_rows(table), default)
  col = table[name]
  if col.dtype.kind in "fi":
    return np.nan_to_num(col) != 0
  return np.isin(np.char.lower(col.astype(str)), ["true", "1", "yes"])


def sources(table) -> list:
  return sorted(set(table["source"].astype(str))) if "source" in table else []


def final_mask(table) -> np.ndarray:
  """Rows of the last eval of each finished run: the `final` column (collect marks it; trunks and
  unfinished runs have none), else each run's largest step."""
  if "final" in table:
    return bool_column(table, "final")
  if "step" not in table:
    return np.ones(n_rows(table), bool)
  mask = np.zeros(n_rows(table), bool)
  runs = table["run_id"].astype(str)
  for run in set(runs):
    idx = np.flatnonzero(runs == run)
    mask[idx[table["step"][idx] == np.nanmax(table["step"][idx])]] = True
  return mask


def final_points(table, source: str = "mean") -> dict:
  """One row per run: its final eval, loss of `source` or the mean over sources."""
  if "source" in table and source != "mean" and source not in sources(table):
    raise UserError(f"--source={source}: not in the table (has {', '.join(sources(table))})")
  table = take(table, final_mask(table))
  if "source" not in table:
    return table
  if source != "mean":
    return take(table, table["source"].astype(str) == source)
  runs = table["run_id"].astype(str)
  order = sorted(set(runs))
  first = [int(np.flatnonzero(runs == r)[0]) for r in order]
  out = {k: v[first] for k, v in table.items()}
  for k, v in table.items():
    if k in ("loss", "bpb") or (k.startswith(("loss_", "bpb_")) and v.dtype.kind == "f"):
      out[k] = np.array([np.nanmean(v[runs == r]) if np.isfinite(v[runs == r]).any() else np.nan
                         for r in order])
  out["source"] = np.array(["mean"] * len(order))
  return out


def comparison_columns(table) -> list:
  """Study axes that compare model families or mixtures: columns with 2..8 distinct values."""
  cols = [c for c in COMPARISON_COLUMNS if c in table]
  cols += [c for c in table if c not in cols and c not in _NOT_GROUPS
           and table[c].dtype.kind in "US" and not c.startswith(("loss", "bpb", "tokens"))]
  out = []
  for c in cols:
    values = set(table[c].astype(str)) - {"", "nan", "None"}
    if 2 <= len(values) <= 8:
      out.append(c)
  return out


def convention(table, fit=None) -> str:
  """One line saying how C and N were counted, from the table's own columns."""
  formulas = sorted(set(table["flops_formula"].astype(str))) if "flops_formula" in table else []
  # The trainer writes e.g. "C=6ND"; a bare "6ND" gets its "C = ".
  shown = [f if "=" in f else f"C = {f}" for f in formulas]
  if shown:
    flops = " / ".join(shown)
  elif "flops" in table:
    flops = "C = the table's flops column (formula not given)"
  else:
    flops = "C = 6ND (no flops column)"
  if len(formulas) > 1:
    flops += "  [MIXED FLOPs conventions]"
  params_col = (fit or {}).get("params_column", "params")
  conv = None
  for col in ("params_convention", "embeddings"):
    if col in table:
      conv = " / ".join(sorted(set(table[col].astype(str))))
  if conv is None:
    conv = {"params": "embeddings included", "non_embedding_params": "embeddings excluded",
            "active_params": "active parameters (MoE)"}.get(params_col, params_col)
  return f"{flops};  N = {params_col} ({conv})"


def flops(table) -> np.ndarray:
  """Training compute per row: the flops column, else 6ND."""
  if "flops" in table and np.isfinite(table["flops"]).all():
    return table["flops"]
  return 6.0 * table["params"] * table["tokens"]


# ---- a sweep root --------------------------------------------------------------------------------

def read_root(root, out_dir):
  """The table of a sweep root: the sweep's own collect, written to out_dir/records.csv (the
  report's input, kept beside it), routing column included."""
  from mmscale.sweep import collect
  root = str(root)
  if not epath.Path(root).is_dir():
    raise UserError(f"--root={root}: not a directory")
  csv_path = epath.Path(out_dir) / "records.csv"
  collect.collect(root, str(csv_path))
  return read_csv(csv_path)


def routing_from_table(table) -> dict:
  """Routing counts carried in the `routing` column (`mmscale collect`: the eval record's routing,
  JSON per row): the last one per run."""
  if "routing" not in table:
    return {}
  out = {}
  for run, cell in zip(table["run_id"].astype(str), table["routing"].astype(str)):
    if cell.strip().startswith("{"):
      try:
        out[run] = json.loads(cell)
      except json.JSONDecodeError:
        raise UserError(f"run {run}: routing column is not valid JSON") from None
  return out

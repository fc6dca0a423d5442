"""build_report: from a records table (and a Fit JSON or a fit made here) to REPORT_DIR/index.html.

Runs are split into studies, one per combination of the comparison columns (fusion, ffn, mixture,
...), because one law over early and late fusion together means nothing; each study gets its own fit.
"""

import json
import re
import time

import numpy as np
from etils import epath

from mmscale.errors import UserError
from mmscale.laws import table as laws_table
from mmscale.report import (coefficients, compare, curves, experts, frontier, isoflop, laws_api,
                            optimal, page, panels, parametric, questions, style)
from mmscale.report import table as tbl
from mmscale.report.context import Context, Study

# (title, draw function) in page order.
FAMILIES = [
    ("IsoFLOP curves", isoflop.draw), ("Loss against compute", frontier.draw),
    ("Compute-optimal N and D", optimal.draw), ("Parametric fit over (N, D)", parametric.draw_contours),
    ("Predicted against observed", parametric.draw_predicted),
    ("Fitted coefficients", coefficients.draw), ("Per validation source", panels.draw_sources),
    ("Per modality", panels.draw_modalities), ("Architecture and mixture comparisons", compare.draw),
    ("MoE expert specialization", experts.draw), ("The demo's questions", questions.draw),
    ("Training curves", curves.draw),
]


def _group_fit(fit, values: dict):
  """The entry of fit['groups'] whose key names all of `values` (keys like 'fusion=early,ffn=moe')."""
  best = None
  for key, entry in (fit.get("groups") or {}).items():
    tokens = set(re.findall(r"[\w.\-]+", str(key)))
    if set(values.values()) <= tokens and (best is None or len(tokens) < best[0]):
      best = (len(tokens), entry)
  return None if best is None else best[1]


def _fit(points, bootstrap, seed, heldout, progress, label):
  fit_all = laws_api.get("fit_all")
  if fit_all is None:
    progress(f"report: {label}: the laws library is not available, no fit")
    return None
  t0 = time.time()
  try:
    # fit_all keeps the per-resample fits (the exact band on N_opt(C), D_opt(C)) and checks them in its
    # diagnostics (ridges, degenerate replicates), which a bootstrap attached afterwards would miss.
    fit = fit_all(points, law="chinchilla", seed=seed, heldout=heldout, bootstrap=bootstrap)
  except UserError as e:
    progress(f"report: {label}: cannot fit ({e})")
    return None
  progress(f"report: {label}: fitted on {tbl.n_rows(points)} runs in {time.time() - t0:.1f}s")
  return fit


def make_studies(table, points, group_by, fit, heldout, bootstrap, seed, progress) -> list:
  if fit is not None and not fit.get("groups"):
    group_by = []  # One pooled fit was given: one study.
  combos = [()]
  if group_by:
    combos = sorted(set(zip(*(points[c].astype(str) for c in group_by))))
  studies = []
  for combo in combos:
    values = dict(zip(group_by, combo))
    m = np.ones(tbl.n_rows(points), bool)
    for c, v in values.items():
      m &= points[c].astype(str) == v
    pts = tbl.take(points, m)
    label = ",".join(f"{c}={v}" for c, v in values.items()) or "all runs"  # as laws' group keys
    rows = tbl.take(table, np.isin(table["run_id"].astype(str), pts["run_id"].astype(str)))
    if fit is not None:
      study_fit = _group_fit(fit, values) if values else fit
    elif tbl.n_rows(pts) >= 5:
      study_fit = _fit(pts, bootstrap, seed, heldout, progress, label)
    else:
      study_fit = None
      progress(f"report: {label}: {tbl.n_rows(pts)} runs, too few to fit 5 coefficients")
    studies.append(Study(label, rows, pts, study_fit))
  return studies


def build_report(table, out_dir, *, fit=None, routing=None, source="mean", metric="loss",
                 group_by=None, heldout=None, bootstrap=0, seed=0, title="mmscale scaling report",
                 progress=print):
  """Writes out_dir/index.html with PNG + SVG figures; returns {"index", "drawn", "skipped"}."""
  out_dir = epath.Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  if metric != "loss":
    if metric not in table:
      raise UserError(f"--metric={metric}: no such column (has {', '.join(sorted(table))})")
    table = {**table, "loss": table[metric]}
  table, left_out = laws_table.drop_diverged(table)  # As `mmscale fit` does: named, never silent.
  ok = np.isfinite(table["loss"]) & (table["params"] > 0) & (table["tokens"] > 0)
  runs = table["run_id"].astype(str)
  for run in sorted(set(runs[~ok]) - set(runs[ok])):
    left_out[run] = "no row with a finite loss and positive params and tokens"
  table = tbl.take(table, ok)
  if not ok.any():
    raise UserError("the records table has no row with a finite loss and positive params, tokens")
  if left_out:
    progress(laws_table.left_out_note("report", left_out))
  points = tbl.final_points(table, source)
  if group_by is None:
    group_by = (fit or {}).get("group_by") or tbl.comparison_columns(points)
  for c in group_by:
    if c not in points:
      raise UserError(f"--group_by={c}: no such column")
  progress(f"report: {tbl.n_rows(table)} rows, {tbl.n_rows(points)} finished runs, source={source}, "
           f"groups={list(group_by) or 'none'}")
  if tbl.n_rows(points):
    studies = make_studies(table, points, list(group_by), fit, heldout, bootstrap, seed, progress)
  else:
    studies = []
    progress("report: no finished run yet (no row with final=True): only training curves can be drawn")
  unit = "bits per byte" if metric.startswith("bpb") else "nats per token"
  ctx = Context(out_dir=out_dir, table=table, points=points, studies=studies,
                convention=tbl.convention(table, fit), routing=routing or {},
                metric_label=f"validation {metric} ({unit})",
                comparison_columns=tbl.comparison_columns(points), progress=progress)
  if "MIXED" in ctx.convention:
    progress(f"report: warning: the table mixes FLOPs conventions ({ctx.convention})")
  sections, skipped = [], []
  for name, draw in FAMILIES:
    t0 = time.time()
    try:
      new = draw(ctx)
    except style.CannotDraw as e:
      progress(f"report: cannot draw {name}: {e}")
      skipped.append((name, str(e)))
      continue
    sections.extend(new)
    files = [f"{stem}.png" for s in new for stem in s.images] or ["table"]
    progress(f"report: drew {name} -> {', '.join(files)} ({time.time() - t0:.1f}s)")
  n_studies = f"{len(studies)} stud{'y' if len(studies) == 1 else 'ies'}"
  meta = [f"{tbl.n_rows(points)} finished runs · {n_studies} · source: {source} · metric: {metric}"
          + (f" · held out: {heldout}" if heldout else ""), ctx.convention]
  if left_out:
    meta.append(laws_table.left_out_note("not drawn or fitted", left_out))
  if fit is not None:
    meta.append(f"fits read from --fit and drawn as given; the points are the {metric} of source "
                f"'{source}' (a fit made on other rows, e.g. every source at once, sits apart)")
  index = page.write(out_dir, title, meta, sections, skipped)
  if fit is None and any(s.fit for s in studies):  # The fits made here, as a Fit JSON for --fit.
    made = studies[0].fit if not group_by else {
        "law": "chinchilla", "group_by": list(group_by),
        "groups": {s.label: s.fit for s in studies if s.fit is not None}}
    (out_dir / "fit.json").write_text(json.dumps(made, indent=1, default=_jsonable))
  progress(f"report: wrote {index} ({len(sections)} sections, {len(skipped)} not drawn)")
  return {"index": index, "drawn": [s.key for s in sections], "skipped": skipped}


def _jsonable(x):
  if hasattr(x, "tolist"):
    return x.tolist()
  raise TypeError(type(x).__name__)


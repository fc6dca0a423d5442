"""The table of fitted coefficients with their intervals beside the published ones that match."""

import html

import numpy as np

from mmscale.report import law, published, style
from mmscale.report.frontier import frontier_of

QUANTITIES = [("E", "irreducible loss E"), ("A", "A"), ("B", "B"), ("alpha", "α (N exponent)"),
              ("beta", "β (D exponent)"), ("a", "a: N_opt ∝ C^a"), ("b", "b: D_opt ∝ C^b"),
              ("c", "c: L ∝ C^c"), ("d", "d: D_opt ∝ N^d")]


def fitted_values(study) -> dict:
  """Fitted quantity -> (value, interval or None, how the interval was made)."""
  fit = study.fit or {}
  out = {}
  if law.has_law(fit):
    a, b, _ = law.allocation(fit)
    vals = {k: fit[k] for k in law.PARAMS}
    vals.update(a=a, b=b, d=b / a)
    for k, v in vals.items():
      ci = law.ci95(fit, k)
      out[k] = (v, ci, "95 % bootstrap CI" if ci else None)
  fr = frontier_of(study.points, fit)
  if fr is not None and "c" in fr:
    out["c"] = (fr["c"], law.ci95(fit, "c"), None)
  return out


def _fmt(v) -> str:
  if v is None or not np.isfinite(v):
    return ""
  return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.3e}"


def _cell(value, ci=None, se=None) -> str:
  text = _fmt(value)
  if ci is not None:
    text += f" <span class=ci>[{_fmt(ci[0])}, {_fmt(ci[1])}]</span>"
  elif se is not None:
    text += f" <span class=ci>± {_fmt(se)} (std)</span>"
  return text


def constant_columns(points, columns) -> dict:
  out = {}
  for c in columns:
    if c in points:
      vals = set(points[c].astype(str))
      if len(vals) == 1:
        out[c] = vals.pop()
  return out


def draw(ctx):
  studies = [s for s in ctx.studies if fitted_values(s)]
  if not studies:
    raise style.CannotDraw("no fitted coefficients to tabulate")
  parts = []
  for study in studies:
    vals = fitted_values(study)
    refs = published.matching(constant_columns(study.points, ("fusion", "ffn", "mixture")))
    head = "<th>quantity</th><th>this study</th>" + "".join(
        f"<th title='{html.escape(r['cite'])}'>{html.escape(r['name'])}</th>" for r in refs)
    rows = []
    for key, label in QUANTITIES:
      if key not in vals and not any(key in r["values"] for r in refs):
        continue
      v, ci, _ = vals.get(key, (None, None, None))
      cells = [_cell(v, ci)] + [
          _cell(r["values"].get(key), (r.get("intervals") or {}).get(key), (r.get("se") or {}).get(key))
          for r in refs]
      rows.append(f"<tr><td>{html.escape(label)}</td>" + "".join(f"<td>{c}</td>" for c in cells)
                  + "</tr>")
    n = (study.fit or {}).get("n_points")
    boot = ((study.fit or {}).get("bootstrap") or {}).get("n")
    meta = f"{n} points" if n else ""
    meta += f", {boot} bootstrap resamples" if boot else ", no bootstrap"
    failed = law.failed_checks(study.fit)
    if (study.fit or {}).get("diagnostics") is not None:
      status = ("<b style='color:#c00'>UNRELIABLE: " + html.escape(", ".join(c["name"] for c in failed)) + "</b>"
                if failed else "all checks passed")
      rows.append(f"<tr><td>diagnostics</td><td>{status}</td>" + "<td></td>" * len(refs) + "</tr>")
    parts.append(f"<h3>{html.escape(study.label)} <small>({html.escape(meta)})</small></h3>"
                 + law.warning_html([study]) + f"<table class=coef><tr>{head}</tr>{''.join(rows)}</table>")
  note = (f"Published values from {published.SOURCE}; a column appears where the study matches "
          "(fusion / ffn / mixture). Intervals in brackets are 95 %; ± marks a bootstrap std.")
  return [style.Section("coefficients", "Fitted coefficients", note, html="\n".join(parts))]

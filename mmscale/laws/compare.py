"""Comparison tables in the manner of Shukor et al. (2025) Tables 2 and 3, with the published rows."""

# Published coefficients (Shukor et al. 2025 Table 2/3; Hoffmann et al. 2022 for Chinchilla).
PUBLISHED = [
    {"model": "Chinchilla (published)", "data": "text", "E": 1.693, "alpha": 0.339, "beta": 0.285, "a": 0.46, "b": 0.54},
    {"model": "early fusion (Shukor)", "data": "AVG", "E": 1.904, "alpha": 0.301, "beta": 0.335, "a": 0.526,
     "b": 0.473, "c": -0.0492, "d": 0.899},
    {"model": "late fusion (Shukor)", "data": "AVG", "E": 1.891, "alpha": 0.290, "beta": 0.338, "a": 0.636,
     "b": 0.462, "c": -0.0494, "d": 0.673},
    {"model": "sparse early fusion (Shukor)", "data": "AVG", "E": 2.158, "alpha": 0.710, "beta": 0.372, "a": 0.361,
     "b": 0.656, "c": -0.047, "d": 1.797},
]
COLUMNS = ("E", "A", "B", "alpha", "beta", "a", "b", "c", "d")
WITH_CI = ("E", "A", "B", "alpha", "beta")  # shown as "value [lo, hi]" when the fit has a bootstrap


def rows(fit_json, published=True) -> list[dict]:
  """One row per fitted group (or the single fit), then the published rows."""
  fits = fit_json.get("groups") or {"all": fit_json}
  out = []
  for key, f in fits.items():
    row = {"model": key, "data": "", "n_points": f.get("n_points")}
    row.update({k: f.get(k) for k in COLUMNS})
    ci = (f.get("bootstrap") or {}).get("ci95") or {}
    for k in WITH_CI:
      if k in ci and row.get(k) is not None:
        row[k] = f"{_g(row[k])} [{_g(ci[k][0])}, {_g(ci[k][1])}]"
    diag = f.get("diagnostics")
    if diag is not None:
      row["status"] = "ok" if diag.get("ok") else "UNRELIABLE: " + ",".join(diag["failed"])
    if "isoflop" in f:
      row["a_isoflop"] = f["isoflop"]["a"]
    if "bootstrap" in f:
      row["se_alpha"], row["se_beta"] = f["bootstrap"]["se"].get("alpha"), f["bootstrap"]["se"].get("beta")
    out.append(row)
  if published:
    out += [dict(r) for r in PUBLISHED]
  return out


def format_table(table_rows) -> str:
  cols = ["model", "data", "n_points", *COLUMNS, "a_isoflop", "se_alpha", "se_beta", "status"]
  cols = [c for c in cols if any(r.get(c) not in (None, "") for r in table_rows)]

  def cell(v):
    if v is None or v == "":
      return ""
    if isinstance(v, float):
      return f"{v:.4g}"
    return str(v)

  body = [[cell(r.get(c)) for c in cols] for r in table_rows]
  widths = [max(len(c), *(len(b[i]) for b in body)) for i, c in enumerate(cols)]
  lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths))]
  lines.append("  ".join("-" * w for w in widths))
  lines += ["  ".join(v.ljust(w) for v, w in zip(b, widths)) for b in body]
  return "\n".join(lines)


def _g(v) -> str:
  return "n/a" if v is None else f"{v:.4g}"

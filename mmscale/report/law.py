"""Evaluating a Fit JSON: the parametric law, its closed-form compute-optimal allocation, parabolas.

The law is mmscale.contract.LAW_FORMULA. Under C = 6ND, minimising L at fixed C gives (Hoffmann et al.
2022, eq. 4) N_opt = G (C/6)^a, D_opt = G^-1 (C/6)^b with a = beta/(alpha+beta),
b = alpha/(alpha+beta), G = (alpha A / (beta B))^(1/(alpha+beta)).
"""

import numpy as np

from mmscale.contract import chinchilla_loss

PARAMS = ("E", "A", "B", "alpha", "beta")


def has_law(fit) -> bool:
  return bool(fit) and all(isinstance(fit.get(k), (int, float)) and np.isfinite(fit[k])
                           for k in PARAMS)


def loss(fit, n, d):
  return chinchilla_loss(n, d, *(fit[k] for k in PARAMS))


def allocation(fit) -> tuple:
  """(a, b, G) of the closed-form optimum, from the fit's own fields or its coefficients."""
  al, be = fit["alpha"], fit["beta"]
  if not has_optimum(fit):  # a degenerate law (an exponent <= 0): no allocation, and no complex powers
    return float("nan"), float("nan"), float("nan")
  a = fit.get("a", be / (al + be))
  b = fit.get("b", al / (al + be))
  g = fit.get("G") or (al * fit["A"] / (be * fit["B"])) ** (1.0 / (al + be))
  return a, b, g


def has_optimum(fit) -> bool:
  return all(isinstance(fit.get(k), (int, float)) and np.isfinite(fit[k]) and fit[k] > 0
             for k in ("A", "B", "alpha", "beta"))


def optimum(fit, c):
  """(N_opt, D_opt) at compute c under C = 6ND."""
  a, b, g = allocation(fit)
  c = np.asarray(c, float)
  return g * (c / 6.0) ** a, (c / 6.0) ** b / g


def optimum_from_coefficients(sample, c):
  """Like optimum() but recomputes a, b, G from E/A/B/alpha/beta (for bootstrap samples)."""
  return optimum({k: sample[k] for k in PARAMS}, c)


def bootstrap_samples(fit) -> list:
  """Per-resample coefficient dicts if the fit kept them (bootstrap.samples), else []."""
  boot = fit.get("bootstrap") or {}
  samples = boot.get("samples") or []
  if isinstance(samples, dict):  # columns {k: [..]} -> rows
    keys = [k for k in PARAMS if k in samples]
    samples = [dict(zip(keys, vals)) for vals in zip(*(samples[k] for k in keys))]
  # Degenerate replicates (an exponent <= 0; counted in the fit's diagnostics) have no optimum to band.
  return [s for s in samples if has_law(s) and has_optimum(s)]


def ci95(fit, key):
  lohi = ((fit.get("bootstrap") or {}).get("ci95") or {}).get(key)
  return tuple(lohi) if lohi is not None and len(lohi) == 2 else None


def parabola_curve(p, n):
  """Loss predicted by one IsoFLOP parabola at parameter counts n.

  The fitter's form is a bare [c2, c1, c0] (highest power first) in ln N (mmscale.laws.approach2);
  a dict {"coef": [...], "x": "ln"|"log10"} is also accepted.
  """
  if isinstance(p, dict):
    coef = p.get("coef") or p.get("coeffs") or p.get("poly")
    x = str(p.get("x", p.get("log", "ln")))
  else:
    coef, x = p, "ln"
  if coef is None or len(coef) != 3:
    return None
  logn = np.log(n) if x in ("ln", "log", "loge", "natural") else np.log10(n)
  return np.polyval(coef, logn)


def failed_checks(fit) -> list:
  """The fit's failed diagnostics (mmscale.laws.diagnostics), as dicts with name, detail, fix."""
  diag = (fit or {}).get("diagnostics") or {}
  return [c for c in diag.get("checks", []) if c.get("level", "ok" if c.get("ok") else "fail") == "fail"]


def unreliable_title(study) -> str:
  """A figure title that says, in the plot itself, when the law drawn there failed its checks."""
  failed = failed_checks(study.fit)
  return study.label + (f"\nUNRELIABLE FIT ({', '.join(c['name'] for c in failed)})" if failed else "")


def set_title(ax, study):
  """The panel's title: the study's label, in red with the failed checks when its law is unreliable."""
  ax.set_title(unreliable_title(study), **({"color": "#c00"} if failed_checks(study.fit) else {}))


def warning_html(studies) -> str:
  """A red box per study whose law failed a check: the reason and what data would fix it."""
  import html
  parts = []
  for study in studies:
    failed = failed_checks(study.fit)
    if not failed:
      continue
    items = "".join(f"<li><b>{html.escape(c['name'])}</b>: {html.escape(c['detail'])}. "
                    f"Fix: {html.escape(c['fix'])}</li>" for c in failed)
    parts.append(f"<div class=unreliable style='border:2px solid #c00;background:#fee;padding:4px 10px;"
                 f"margin:6px 0'><b style='color:#c00'>UNRELIABLE FIT: {html.escape(study.label)}</b> "
                 f"(do not read its coefficients as a result)<ul>{items}</ul></div>")
  return "".join(parts)

"""`mmscale plan-next`: the runs that would most shrink an interval of the fit, per FLOP.

  mmscale plan-next --fit=fit.json --records=runs.csv [--target=a|loss@1e22] [--top=5]
                    [--flops=1e21] [--sizes=3e9,1e10] [--budgets=1e21] [--group=ffn=moe]

Needs a Chinchilla fit with a bootstrap (`mmscale fit --bootstrap=N --json=fit.json`) and the table it
was fitted on. Candidates are the table's sizes and budgets (plus one size beyond each end, one budget
x2 above the largest, and --sizes / --budgets), minus the cells already run; see mmscale.laws.plan.
"""

import json

from absl import flags

from mmscale.errors import UserError
from mmscale.flagparse import parse_flags

FLAGS = flags.FlagValues()
flags.DEFINE_string("fit", None, "Fit JSON written by `mmscale fit --bootstrap=N --json=...`.", flag_values=FLAGS)
flags.DEFINE_string("records", None, "The CSV the fit was made from.", flag_values=FLAGS)
flags.DEFINE_string("target", "a", "Interval to shrink: 'a' (N_opt ∝ C^a) or 'loss@C' (compute-optimal loss at "
                    "budget C).", flag_values=FLAGS)
flags.DEFINE_integer("top", 5, "Runs to plan.", flag_values=FLAGS)
flags.DEFINE_float("flops", None, "Total FLOPs the planned runs may use (default: no cap).", flag_values=FLAGS)
flags.DEFINE_list("sizes", [], "Extra candidate model sizes (parameter counts).", flag_values=FLAGS)
flags.DEFINE_list("budgets", [], "Extra candidate budgets (FLOPs).", flag_values=FLAGS)
flags.DEFINE_string("group", None, "Which group of a grouped fit (its key, e.g. ffn=moe).", flag_values=FLAGS)


def _floats(name, values):
  try:
    out = [float(v) for v in values]
  except ValueError:
    raise UserError(f"--{name}={','.join(values)}: expected positive numbers separated by commas") from None
  if any(not v > 0 for v in out):
    raise UserError(f"--{name}={','.join(values)}: expected positive numbers separated by commas")
  return out


def main(argv: list[str]) -> int:
  rest = parse_flags(FLAGS, argv)
  if len(rest) > 1:
    raise UserError(f"unexpected arguments: {' '.join(rest[1:])}")
  for name in ("fit", "records"):
    if not getattr(FLAGS, name):
      raise UserError(f"--{name}=FILE is required")
  if FLAGS.top < 1:
    raise UserError(f"--top={FLAGS.top}: must be >= 1")
  if FLAGS.flops is not None and not FLAGS.flops > 0:
    raise UserError(f"--flops={FLAGS.flops}: must be > 0")
  sizes, budgets = _floats("sizes", FLAGS.sizes), _floats("budgets", FLAGS.budgets)
  from mmscale.laws import plan
  q = plan.target(FLAGS.target)  # a bad --target fails before any file is read
  from etils import epath
  from mmscale.laws import table as tbl
  path = epath.Path(FLAGS.fit)
  if not path.exists():
    raise UserError(f"--fit={FLAGS.fit}: file does not exist")
  try:
    fit = json.loads(path.read_text())
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise UserError(f"--fit={FLAGS.fit}: not a Fit JSON ({e})") from None
  if not isinstance(fit, dict) or fit.get("law") != "chinchilla":
    raise UserError(f"--fit={FLAGS.fit}: plan-next needs a --law=chinchilla fit")
  table = tbl.read_table(FLAGS.records)
  if "source" not in (fit.get("group_by") or []):
    table = tbl.average_sources(table)
  if fit.get("groups"):
    if FLAGS.group not in fit["groups"]:
      raise UserError(f"--group={FLAGS.group}: the fit has groups {', '.join(sorted(fit['groups']))}; name one")
    table = tbl.groups(table, fit["group_by"])[FLAGS.group]
    fit = fit["groups"][FLAGS.group]
  rows, _ = tbl.drop_diverged(tbl.final_rows(table))
  tbl.require(rows, ("params", "tokens", "loss"), "plan-next")
  N, D, L, C = rows["params"], rows["tokens"], rows["loss"], tbl.compute(rows)
  theta = plan.theta_of(fit)
  S = plan.prior_cov(fit.get("bootstrap"), float(L.min()))
  cells = plan.candidates(N, C, sizes, budgets)
  res = plan.rank(theta, S, plan.noise_var(theta, N, D, L), cells, q, top=FLAGS.top, flops=FLAGS.flops)
  print(report(res, FLAGS.target, fit))
  return 0


def report(res, target, fit) -> str:
  what = "a (N_opt ∝ C^a)" if target == "a" else f"the compute-optimal loss at C={target[5:]}"
  lines = []
  if not (fit.get("diagnostics") or {}).get("ok", True):
    lines.append(f"!! the fit failed its checks ({', '.join(fit['diagnostics']['failed'])}): the plan below "
                 "is as uncertain as the fit")
  lines.append(f"plan-next: 95% interval of {what}: ±{res['before']:.4g} now -> ±{res['after']:.4g} after "
               f"{len(res['picked'])} runs ({res['flops']:.3g} FLOPs), each chosen for the largest shrink per FLOP")
  lines.append(f"  {'#':>2}  {'params':>10}  {'budget':>10}  {'tokens':>10}  {'±after':>9}")
  for i, p in enumerate(res["picked"], 1):
    lines.append(f"  {i:>2}  {p['params']:>10.3g}  {p['budget']:>10.3g}  {p['tokens']:>10.3g}  "
                 f"{p['half_width_after']:>9.4g}")
  budgets = sorted({p["budget"] for p in res["picked"]})
  cells = ", ".join(f"({p['params']:.3g}, {p['budget']:.3g})" for p in res["picked"])
  lines.append("study override (get_grid of the study; map each parameter count to a size of your grid):")
  lines.append(f'  "budgets": ({", ".join(f"{b:.3g}" for b in budgets)},),')
  lines.append(f"  # cells (params, budget): {cells}")
  return "\n".join(lines)

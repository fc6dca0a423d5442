"""`mmscale report --root=DIR --out=REPORT_DIR` or `--records=FILE.csv [--fit=FIT.json]`.

The MoE experts panel draws the table's `routing` column (written by `mmscale collect`), so a
table alone makes the whole report; --root collects that table from a sweep first.

Without --fit, each study (one per combination of fusion / ffn / mixture ...) is fitted here with
mmscale.laws.fit_all; with --fit, the given Fit JSON is drawn as it is.
"""

import json
import os
import shutil

from absl import flags
from etils import epath

from mmscale import outputs
from mmscale.errors import UserError
from mmscale.flagparse import parse_flags

FLAGS = flags.FlagValues()
flags.DEFINE_string("root", None, "Sweep root: the table is collected from its runs (not needed with "
                    "--records: the table carries the MoE routing).", flag_values=FLAGS)
flags.DEFINE_string("records", None, "Records table (CSV from mmscale collect).", flag_values=FLAGS)
flags.DEFINE_string("fit", None, "Fit JSON from `mmscale fit --json` (else fitted here).",
                    flag_values=FLAGS)
flags.DEFINE_string("routing", None, "JSON {run_id: {counts: [layer][expert][modality], "
                    "modalities: [...]}} for MoE runs, over the table's routing column.",
                    flag_values=FLAGS)
flags.DEFINE_string("out", None, "Report directory (index.html, PNG + SVG figures).", flag_values=FLAGS)
flags.DEFINE_string("source", "mean", "Validation source whose loss is fitted, or 'mean' over sources.",
                    flag_values=FLAGS)
flags.DEFINE_string("metric", "loss", "Column to fit and draw: loss (nats/token) or bpb.",
                    flag_values=FLAGS)
flags.DEFINE_list("group_by", None, "Columns that split runs into studies (default: fusion, ffn, "
                  "mixture... when they vary; 'none' for one study).", flag_values=FLAGS)
flags.DEFINE_integer("bootstrap", 0, "Bootstrap resamples per fit (bands on N_opt, D_opt).",
                     lower_bound=0, flag_values=FLAGS)
flags.DEFINE_string("heldout", None, "Hold out runs from the fit: 'largest', a fraction of sizes, or "
                    "a params threshold (as mmscale fit).", flag_values=FLAGS)
flags.DEFINE_integer("seed", 0, "Bootstrap seed.", flag_values=FLAGS)
flags.DEFINE_string("title", "mmscale scaling report", "Page title.", flag_values=FLAGS)


def _read_json(path, what):
  path = epath.Path(path)
  if not path.exists():
    raise UserError(f"--{what}={path}: no such file")
  if path.is_dir():
    raise UserError(f"--{what}={path}: is a folder; give a JSON file")
  try:
    value = json.loads(path.read_bytes().decode("utf-8"))
  except UnicodeDecodeError as e:
    raise UserError(f"--{what}={path}: not UTF-8 text (byte {e.start}), so not JSON") from None
  except json.JSONDecodeError as e:
    raise UserError(f"--{what}={path}: not valid JSON ({e.msg} at line {e.lineno})") from None
  if not isinstance(value, dict):
    raise UserError(f"--{what}={path}: holds a JSON {type(value).__name__}; must be an object")
  return value


COEFFICIENTS = ("E", "A", "B", "alpha", "beta")


def check_fit(fit: dict, path: str) -> dict:
  """A Fit JSON the report can draw: `mmscale fit --law=chinchilla --json`, pooled or grouped."""
  if fit.get("law", "chinchilla") != "chinchilla":
    raise UserError(f"--fit={path}: is a fit of law {fit['law']!r}; the report draws "
                    "--law=chinchilla fits (refit with `mmscale fit --law=chinchilla --json=...`)")
  groups = fit.get("groups")
  entries = list(groups.values()) if isinstance(groups, dict) and groups else [fit]
  def drawable(entry):
    return isinstance(entry, dict) and all(
        isinstance(entry.get(k), (int, float)) and not isinstance(entry.get(k), bool)
        for k in COEFFICIENTS)
  if not any(drawable(e) for e in entries):
    raise UserError(f"--fit={path}: no fit with numeric {', '.join(COEFFICIENTS)} in it (pooled, or "
                    "under 'groups'); give the file `mmscale fit --json` wrote")
  return fit


def main(argv: list[str]) -> int:
  parse_flags(FLAGS, argv)
  if not FLAGS.out:
    raise UserError("--out=REPORT_DIR is required")
  if not (FLAGS.root or FLAGS.records):
    raise UserError("give --root=SWEEP_DIR or --records=TABLE.csv")
  # Every input is read and checked before the report folder is created.
  outputs.check_dir("out", FLAGS.out)
  if FLAGS.root and "://" not in FLAGS.root and not os.path.isdir(FLAGS.root):
    raise UserError(f"--root={FLAGS.root}: no such sweep folder")
  fit = check_fit(_read_json(FLAGS.fit, "fit"), FLAGS.fit) if FLAGS.fit else None
  extra_routing = _read_json(FLAGS.routing, "routing") if FLAGS.routing else {}
  from mmscale.report import build, table  # Here, not at the top: --help must not load jax.

  records = table.read_csv(FLAGS.records) if FLAGS.records else None
  created = "://" not in FLAGS.out and not os.path.exists(FLAGS.out)
  try:
    return _report(build, table, records, fit, extra_routing)
  except UserError:  # Found only once the table is in hand: leave no half-made report folder.
    if created:
      shutil.rmtree(FLAGS.out, ignore_errors=True)
    raise


def _report(build, table, records, fit, extra_routing) -> int:
  out = epath.Path(FLAGS.out)
  out.mkdir(parents=True, exist_ok=True)
  if FLAGS.records:
    if FLAGS.root:
      print(f"report: --root={FLAGS.root} is not needed with --records (the table carries the MoE "
            "routing); ignoring it", flush=True)
  else:
    print(f"report: collecting {FLAGS.root}", flush=True)
    records = table.read_root(FLAGS.root, out)
  routing = table.routing_from_table(records)
  routing.update(extra_routing)
  group_by = FLAGS.group_by
  if group_by is not None and [g.lower() for g in group_by] in ([], ["none"]):
    group_by = []
  result = build.build_report(
      records, out, fit=fit, routing=routing, source=FLAGS.source, metric=FLAGS.metric,
      group_by=group_by, heldout=FLAGS.heldout, bootstrap=FLAGS.bootstrap, seed=FLAGS.seed,
      title=FLAGS.title, progress=lambda line: print(line, flush=True))
  print(f"report: open {result['index']}")
  return 0

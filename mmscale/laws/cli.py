"""`mmscale fit`: fit scaling laws to a records table, print a table, optionally write the Fit JSON.

  mmscale fit --records=runs.csv --law=chinchilla --json=fit.json [--group_by=source,fusion]
              [--bootstrap=100 --seed=0] [--heldout=largest|largest_budget|size:X|budget:X]
              [--tied] [--isoflop_window=5]

Every Chinchilla fit carries a diagnostics block (floor of E, exponents at the search bounds, IsoFLOP
minima bracketed, enough sizes and budgets, A-alpha / B-beta ridges and degenerate bootstrap replicates);
a failed check is printed as "!! UNRELIABLE FIT" with the reason and the data that would fix it.
"""

import json

from absl import flags

from mmscale import outputs
from mmscale.errors import UserError
from mmscale.flagparse import parse_flags
from mmscale.laws.names import LAWS

FLAGS = flags.FlagValues()
flags.DEFINE_string("records", None, "CSV table (mmscale collect, or any CSV with params, tokens, loss).",
                    flag_values=FLAGS)
flags.DEFINE_enum("law", "chinchilla", sorted(LAWS), "Law to fit.", flag_values=FLAGS)
flags.DEFINE_string("json", None, "Write the Fit JSON here.", flag_values=FLAGS)
flags.DEFINE_list("group_by", [], "Columns whose values split the fits (e.g. source,fusion).", flag_values=FLAGS)
flags.DEFINE_integer("bootstrap", 0, "Bootstrap replicates (each a full multi-start refit).", flag_values=FLAGS)
flags.DEFINE_integer("seed", 0, "Seed of the bootstrap resampling.", flag_values=FLAGS)
flags.DEFINE_string("heldout", None, "Held-out check: 'largest' (size), 'largest_budget', or size:X / budget:X "
                    "with X a fraction in (0, 1) of the sizes/budgets or a threshold (a bare X means size:X).",
                    flag_values=FLAGS)
flags.DEFINE_bool("tied", False, "Fit one exponent for both terms (alpha = beta), as Muennighoff et al. (2023).",
                  flag_values=FLAGS)
flags.DEFINE_integer("isoflop_window", None, "Approach 2: fit each budget's parabola to the k sizes around its "
                     "lowest loss (default: all sizes).", flag_values=FLAGS)


def main(argv: list[str]) -> int:
  # --group-by is accepted as a spelling of --group_by (the form in the docs of `mmscale fit`).
  argv = [("--group_by" + a[len("--group-by"):]) if a.startswith("--group-by") else a for a in argv]
  rest = parse_flags(FLAGS, argv)
  if len(rest) > 1:
    raise UserError(f"unexpected arguments: {' '.join(rest[1:])}")
  if not FLAGS.records:
    raise UserError("--records=FILE is required")
  if FLAGS.isoflop_window is not None and FLAGS.isoflop_window < 3:
    raise UserError(f"--isoflop_window={FLAGS.isoflop_window}: must be >= 3 (sizes around each budget's minimum)")
  if FLAGS.json:  # Before the fit, which may take minutes.
    outputs.check_file("json", FLAGS.json)
  from mmscale.laws import table as tbl

  table = tbl.read_table(FLAGS.records)  # A bad table is reported before jax loads for the fit.
  from mmscale.laws import fit as fit_lib  # Here, not at the top: --help must not load jax.
  result = fit_lib.fit_all(table, law=FLAGS.law, group_by=FLAGS.group_by, bootstrap=FLAGS.bootstrap,
                           seed=FLAGS.seed, heldout=FLAGS.heldout, tied=FLAGS.tied,
                           isoflop_window=FLAGS.isoflop_window)
  result = fit_lib.to_jsonable(result)
  print(summary(result))
  if FLAGS.json:
    from etils import epath  # here: --help should not pay for importing it

    path = epath.Path(FLAGS.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    print(f"wrote {path}")
  return 0


def summary(result) -> str:
  from mmscale.laws import compare
  from mmscale.laws import table as tbl

  lines = [f"law={result['law']}  n_points={result['n_points']}"]
  lines += [tbl.left_out_note(f"group {key}" if key != "all" else "fit", left)
            for key, left in result.get("left_out", {}).items()]
  lines += [f"group {key}: not fitted: {why}" for key, why in result.get("not_fitted", {}).items()]
  if result["law"] == "chinchilla":
    lines.append(compare.format_table(compare.rows(result)))
  fits = result.get("groups") or {"all": result}
  for key, f in fits.items():
    extra = f"  objective={f['objective']:.10g}  |grad|={f['grad_norm']:.2e}"
    if "bootstrap" in f:
      ci, b = f["bootstrap"]["ci95"], f["bootstrap"]
      extra += "  95% CI " + ", ".join(f"{k} [{_num(ci[k][0], 4)}, {_num(ci[k][1], 4)}]"
                                       for k in ("E", "A", "B", "alpha", "beta") if k in ci)
      extra += f"  ({b.get('n_degenerate', 0)} of {b['n']} replicates degenerate)"
    if "heldout" in f:
      h = f["heldout"]
      extra += f"  held-out ({h['n_test']} pts): MSE {h['mse']:.3g} R2 {_num(h['r2'])} MAE {h['mae_pct']:.2f}%"
    if result["law"] == "mixed_modal":
      from mmscale.laws import diagnostics
      for m, u in f.get("unimodal", {}).items():
        lines += [f"  {m} law: {line}" for line in diagnostics.verdict_lines(u.get("diagnostics"))]
      for pair, p in f["interaction"].items():
        shares = ", ".join(f"N={r['params']:.0e}: {r['share']:.2f}" for r in p["share_vs_size"][::3])
        lines.append(f"  {pair}: C={p['C']:.4g} ({'synergy' if p['synergy'] else 'competition'}) "
                     f"A={p['A']:.4g} alpha={p['alpha']:.3f} B={p['B']:.4g} beta={p['beta']:.3f}; "
                     f"optimal {pair.split('+')[1]} share {shares}")
        lines += [f"  {pair}: {line}" for line in diagnostics.verdict_lines(p.get("diagnostics"))]
    elif result["law"] != "chinchilla":
      extra += "  " + ", ".join(f"{k}={v:.4g}" for k, v in f.items() if isinstance(v, float) and k not in ("objective", "grad_norm"))
    lines.append(f"{key}:{extra}")
    if "isoflop" in f:
      iso = f["isoflop"]
      lines.append(f"  approach 2 ({len(iso['budgets'])} budgets, "
                   f"{'all sizes' if iso.get('window') is None else str(iso['window']) + ' sizes around each minimum'}, "
                   f"D_opt from {iso.get('d_opt_from', 'budget / (6 N)')}): a={iso['a']:.4f} b={iso['b']:.4f}")
    from mmscale.laws import diagnostics
    lines += [f"  {line}" for line in diagnostics.verdict_lines(f.get("diagnostics"))]
  return "\n".join(lines)


def _num(v, digits=3):
  return "n/a" if v is None else (f"{v:.{digits}g}" if digits != 3 else f"{v:.3f}")

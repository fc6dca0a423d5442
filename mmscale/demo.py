"""`mmscale demo`: the main job — real data, an IsoFLOP sweep, fits, a report and the headline.

Each stage is the same command a user would type, run in order; each reads only what the one
before wrote, and each skips what is already done, so re-running the demo reuses every finished
run, the prepared data and the tokenizer:

  mmscale data prepare --out OUT/data
  mmscale sweep   --config=experiments/demo.py --root=OUT/sweep --workers=2
  mmscale collect --root=OUT/sweep --out=OUT/records.csv
  mmscale fit     --records=OUT/records.csv --group_by=arch --bootstrap=N --json=OUT/fit.json
  mmscale report  --records=OUT/records.csv --fit=OUT/fit.json --out=OUT/report

then prints the headline (mmscale/report/headline.py: four questions, 95 % intervals, verdicts), how
it agrees with the study's reference run from another machine (mmscale/report/agreement.py) and
the wall and CPU seconds of every stage.
"""

import json
import os
import resource
import time

from absl import flags

from mmscale import outputs
from mmscale.errors import UserError
from mmscale.flagparse import parse_flags

FLAGS = flags.FlagValues()
_OUT = flags.DEFINE_string("out", "demo_out", "Folder for the data, the sweep, the table, the fit and the report.",
                           flag_values=FLAGS)
_WORKERS = flags.DEFINE_integer("workers", 2, "Local sweep workers.", lower_bound=1, flag_values=FLAGS)
_BOOTSTRAP = flags.DEFINE_integer("bootstrap", 50, "Bootstrap replicates per architecture.", lower_bound=0,
                                  flag_values=FLAGS)
_STUDY = flags.DEFINE_string("study", "experiments/demo.py", "Study file.", flag_values=FLAGS)
_REFERENCE = flags.DEFINE_string(
    "reference", None, "A headline.json from a run of the same study on another machine to compare "
    "this headline with (mmscale/report/agreement.py); default: the study's shipped reference, "
    "STUDY_reference.json beside the study file, when there is one. '' compares with none.",
    flag_values=FLAGS)


def _stage(title: str, argv: list[str]) -> None:
  """Runs one `mmscale` command in this process, with its own flags, and times it."""
  from mmscale import cli

  print(f"\n=== {title}: mmscale {' '.join(argv)}", flush=True)
  start, cpu = time.time(), _cpu_seconds()
  code = cli.run(["mmscale", *argv])
  if code != 0:
    raise UserError(f"demo stage '{title}' failed (exit code {code}); fix it and re-run `make demo` "
                    "(finished work is kept)")
  _TIMES.append((title, time.time() - start, _cpu_seconds() - cpu))
  print(f"=== {title}: done in {_TIMES[-1][1]:.0f} s wall, {_TIMES[-1][2]:.0f} CPU-s", flush=True)


_TIMES: list[tuple[str, float, float]] = []


def _cpu_seconds() -> float:
  """User + system CPU time of this process and its finished children (the sweep's runs): on a
  loaded machine wall time says little, CPU time divided by the cores says what a quiet one takes."""
  me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
  return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def headline(out: str) -> list[str]:
  """The four questions answered from the collected table (mmscale/report/headline.py)."""
  from mmscale.report import headline as hl
  from mmscale.laws import table as tbl

  from mmscale.report import agreement

  table = tbl.read_table(os.path.join(out, "records.csv"))
  ans = hl.answers(table)
  # What a second machine's headline is compared on: the same runs, computed where.
  ans["study"] = agreement.study_identity(r["run_id"] for r in hl.final_runs(table))
  ans["machine"] = agreement.machine()
  with open(os.path.join(out, "headline.json"), "w", encoding="utf-8") as f:
    json.dump(ans, f, indent=1, sort_keys=True, default=str)
  text = (["", "=" * 78, "mmscale demo: the seed papers' questions at CPU scale (95 % bootstrap intervals)",
           "=" * 78] + hl.lines(ans))
  ref = _reference_path()
  if ref:
    other = agreement.load(ref)
    m = other.get("machine", {})
    label = f"the reference run ({ref}: {m.get('cores', '?')} x {m.get('cpu', '?')})"
    text += agreement.lines(agreement.compare(ans, other), label)
  return text + [f"report: {os.path.abspath(os.path.join(out, 'report', 'index.html'))}"]


def _reference_path() -> str:
  """--reference, else the study's shipped reference (experiments/demo.py -> demo_reference.json)."""
  if _REFERENCE.value is not None:
    return _REFERENCE.value
  study, _, arg = _STUDY.value.partition(":")
  path = os.path.splitext(study)[0] + (f"_{arg}" if arg else "") + "_reference.json"
  return path if os.path.isfile(path) else ""


def main(argv: list[str]) -> int:
  parse_flags(FLAGS, argv)
  # Checked before the first stage: the data preparation takes minutes and writes into --out.
  if not os.path.isfile(_STUDY.value.split(":", 1)[0]):  # FILE.py or FILE.py:arg
    raise UserError(f"--study={_STUDY.value}: no such study file")
  outputs.check_dir("out", _OUT.value)
  if _REFERENCE.value and not os.path.isfile(_REFERENCE.value):
    raise UserError(f"--reference={_REFERENCE.value}: no such headline file")
  out = os.path.abspath(_OUT.value)
  data = os.path.join(out, "data")
  os.makedirs(out, exist_ok=True)
  started, cpu = time.time(), _cpu_seconds()
  # The persistent XLA cache lives beside the demo's outputs (a fresh `make demo` measures a cold
  # cache; a re-run reuses it); $MMSCALE_COMPILE_CACHE chooses another place.
  os.environ.setdefault("MMSCALE_COMPILE_CACHE", os.path.join(out, "xla_cache"))
  os.environ.setdefault("MMSCALE_DATA_CACHE", os.path.join(out, "data_cache"))  # mmscale/data/length_cache.py
  if not os.path.exists(os.path.join(data, "manifest.json")):
    _stage("data", ["data", "prepare", f"--out={data}"])
  else:
    print(f"=== data: reusing {data}", flush=True)
  study = [f"--config={_STUDY.value}", f"--config.data.data_dir={data}"]
  _stage("sweep", ["sweep", *study, f"--root={out}/sweep", f"--workers={_WORKERS.value}"])
  _stage("collect", ["collect", *study, f"--root={out}/sweep", f"--out={out}/records.csv"])
  _stage("fit", ["fit", f"--records={out}/records.csv", "--group_by=arch", f"--bootstrap={_BOOTSTRAP.value}",
                 f"--json={out}/fit.json"])
  # The table carries the MoE routing counts (a column of `mmscale collect`): it is all the report reads.
  _stage("report", ["report", f"--records={out}/records.csv", f"--fit={out}/fit.json", f"--out={out}/report"])
  for line in headline(out):
    print(line)
  total = (time.time() - started, _cpu_seconds() - cpu)
  print("time per stage (wall s / CPU-s of this process and its workers): " + ", ".join(
      f"{t} {w:.0f}/{c:.0f}" for t, w, c in _TIMES) + f"; total {total[0]:.0f}/{total[1]:.0f}")
  with open(os.path.join(out, "timings.json"), "w", encoding="utf-8") as f:
    json.dump({"stages": [{"stage": t, "wall_s": w, "cpu_s": c} for t, w, c in _TIMES],
               "total_wall_s": total[0], "total_cpu_s": total[1]}, f, indent=1)
  return 0

"""Do two runs of a study say the same thing? The demo's headline on two machines, compared.

At CPU scale the numbers move with floating-point rounding (a different core count splits XLA's
reductions differently, a different instruction set fuses differently), so the test is not
equality. Two headlines agree on a question when
  - the verdicts are the same ("agrees" / "disagrees" / "not resolved at this scale"), and
  - each effect lies inside the other's 95 % interval.
They are only comparable when they come from the same runs: the headline records the sorted run
ids' hash (`study`), and a mismatch is reported instead of a comparison.

  python -m mmscale.report.agreement A/headline.json B/headline.json    (exit 0: agree, 1: differ)

`mmscale demo` compares its own headline with the reference run shipped next to the study
(experiments/demo_reference.json) when there is one.
"""

import hashlib
import json
import math
import os
import platform
import sys

from mmscale.errors import UserError
from mmscale.report.headline import FINDINGS


def study_identity(run_ids) -> dict:
  """What makes two headlines comparable: the same set of runs (ids hash their configs)."""
  ids = sorted(set(run_ids))
  return {"runs": len(ids), "run_ids_sha256": hashlib.sha256("\n".join(ids).encode()).hexdigest()}


def machine() -> dict:
  """Where a headline was computed (the second machine of a comparison differs here)."""
  model = ""
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
  except OSError:
    pass
  import jax  # pylint: disable=g-import-not-at-top
  return {"cpu": model or platform.processor(), "cores": os.cpu_count(), "machine": platform.machine(),
          "jax": jax.__version__, "backend": jax.default_backend(),
          "xla_flags": os.environ.get("XLA_FLAGS", "")}


def _inside(x: float, lo: float, hi: float) -> bool:
  return all(map(math.isfinite, (x, lo, hi))) and lo <= x <= hi


def compare(mine: dict, ref: dict) -> dict:
  """Per question: verdicts, effects and whether each effect is inside the other's interval."""
  a, b = mine.get("study"), ref.get("study")
  if a is None or b is None:
    return {"comparable": False, "why": "a headline without its study identity (made before it was recorded)"}
  if a != b:
    return {"comparable": False, "why": f"different runs ({a['runs']} vs {b['runs']} runs, ids hash "
                                        f"{a['run_ids_sha256'][:10]} vs {b['run_ids_sha256'][:10]}): a changed study"}
  rows = {}
  for q in FINDINGS:
    x, y = mine.get(q, {}), ref.get(q, {})
    row = {"verdict": x.get("verdict"), "ref_verdict": y.get("verdict")}
    if "effect" in x and "effect" in y:
      row.update(effect=x["effect"], ref_effect=y["effect"],
                 mine_in_ref=_inside(x["effect"], y["lo"], y["hi"]),
                 ref_in_mine=_inside(y["effect"], x["lo"], x["hi"]))
    row["same_verdict"] = row["verdict"] == row["ref_verdict"]
    row["agrees"] = bool(row["same_verdict"] and row.get("mine_in_ref") and row.get("ref_in_mine"))
    rows[q] = row
  return {"comparable": True, "questions": rows, "all_agree": all(r["agrees"] for r in rows.values())}


def lines(result: dict, ref_label: str) -> list[str]:
  if not result["comparable"]:
    return [f"agreement with {ref_label}: not comparable: {result['why']}"]
  out = [f"agreement with {ref_label}: "
         + ("every question agrees (same verdict, each effect inside the other's 95% interval)"
            if result["all_agree"] else "DIFFERS on " + ", ".join(
                f"Q{k}" for k, r in enumerate(result["questions"].values(), 1) if not r["agrees"]))]
  for k, r in enumerate(result["questions"].values(), 1):
    if "effect" in r:
      nums = (f"{r['effect']:+.4f} vs {r['ref_effect']:+.4f}; mine in its interval: "
              f"{'yes' if r['mine_in_ref'] else 'NO'}, its in mine: {'yes' if r['ref_in_mine'] else 'NO'}")
    else:
      nums = "not measured in one of them"
    same = "same verdict" if r["same_verdict"] else f"verdict {r['verdict']!r} vs {r['ref_verdict']!r}"
    out.append(f"   Q{k}: {same}; {nums}")
  return out


def load(path: str) -> dict:
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except (OSError, ValueError) as e:
    raise UserError(f"{path}: cannot read a headline ({type(e).__name__}: {e})") from e


def main(argv: list[str]) -> int:
  if len(argv) != 3:
    raise UserError("usage: python -m mmscale.report.agreement MINE/headline.json REFERENCE/headline.json")
  mine, ref = load(argv[1]), load(argv[2])
  result = compare(mine, ref)
  for line in lines(result, argv[2]):
    print(line)
  return 0 if result.get("all_agree") else 1


if __name__ == "__main__":
  try:
    sys.exit(main(sys.argv))
  except UserError as e:
    print(f"mmscale: error: {e}", file=sys.stderr)
    sys.exit(2)

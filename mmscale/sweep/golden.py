"""Golden dumps: every study's config, grid and run list as `key: value` text under tests/golden/.

  python -m mmscale.sweep.golden            # compare; prints a diff and exits 1 on any drift
  python -m mmscale.sweep.golden --update   # rewrite the dumps (review the diff, then commit)

A changed default, shape rule or run id then shows up as a reviewable diff (AXLearn's golden
configs). Each experiments/*.py is dumped with its default argument and the VARIANTS below.
Runs are resolved without validation (mmscale.config.derive): validation checks that prepared
data is on disk, and the dumps describe the studies, not this machine. The repository's path is
written as `<repo>`.
"""

import difflib
import glob
import json
import os
import re
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GOLDEN_DIR = os.path.join(REPO, "tests", "golden")
# Arguments dumped besides the default one (experiments/FILE.py:arg).
VARIANTS = {
    "nmm.py": ("fusion=late", "ffn=moe", "ffn=modality,image_loss=next_patch",
               "ffn=moe,routing=aware,image_loss=vq", "fusion=late,ffn=moe,size=p3", "size=p6"),
    "tiny_isoflop.py": ("independent",),
    "demo.py": ("quick",),
}


def studies() -> list[tuple[str, str]]:
  """(path relative to the repo, arg) of every dump."""
  out = []
  for path in sorted(glob.glob(os.path.join(REPO, "experiments", "*.py"))):
    name = os.path.basename(path)
    out += [(f"experiments/{name}", arg) for arg in ("",) + VARIANTS.get(name, ())]
  return out


def golden_path(study: str, arg: str) -> str:
  stem = os.path.splitext(os.path.basename(study))[0]
  suffix = re.sub(r"[^A-Za-z0-9]+", "_", arg).strip("_")
  return os.path.join(GOLDEN_DIR, f"{stem}{'@' + suffix if suffix else ''}.txt")


def _value(v) -> str:
  if callable(v):
    return "<callable>"  # Its values show in the run list (lr, batch size per run).
  return json.dumps(v, sort_keys=True, default=str).replace(REPO, "<repo>")


def _flat(d: dict, prefix: str = "") -> list[str]:
  from mmscale import config as config_lib
  return [f"{k}: {_value(v)}" for k, v in sorted(config_lib.flatten(d, prefix).items())]


def _runs(specs) -> list[str]:
  from mmscale.sweep import plan
  lines = []
  for s in plan.ordered(specs):
    t = s.config["train"]
    trunk = f" from={s.depends_on}@{s.depends_step}" if s.depends_on else ""
    lines.append(f"{s.run_id}: kind={s.kind} N={s.params} D={s.tokens} C={s.flops:.6g} "
                 f"steps={s.steps} batch={s.config['data']['batch_size']} lr={t['lr']:.6g}{trunk}")
  return lines


class NeedsData(Exception):
  """A study's run list depends on prepared data that is not on this machine."""


def dump(study: str, arg: str) -> str:
  """The golden text of one study file and argument."""
  import dataclasses
  from mmscale import config as config_lib
  from mmscale.errors import ConfigError
  from mmscale.sweep import study as study_lib

  path = os.path.join(REPO, study)
  module = study_lib.load_module(path)
  config = module.get_config(arg) if arg else module.get_config()
  head = [f"# {study}{':' + arg if arg else ''}  (python -m mmscale.sweep.golden --update)"]
  if not hasattr(module, "get_grid") and "sweep" not in config:
    resolved = config_lib.derive(config)
    return "\n".join(head + ["", "## config"] + _flat(config.to_dict())
                     + ["", "## run", config_lib.run_id(resolved)]) + "\n"
  try:
    built = study_lib.build(path, arg, config, resolve_fn=config_lib.derive)
  except ConfigError as e:
    # Late fusion on prepared corpora: the grid measures the media share on the run's own batches
    # (mmscale/sweep/token_profile.py), so its dump exists only where the data has been prepared.
    if "no ArrayRecord shards" in str(e):
      raise NeedsData(f"{study}{':' + arg if arg else ''}: {e}") from None
    raise
  grid = {f.name: getattr(built.grid, f.name) for f in dataclasses.fields(built.grid)}
  notes = [f"note: {n}" for n in built.notes]
  return "\n".join(head + ["", "## config"] + _flat(built.config.to_dict())
                   + ["", "## grid"] + _flat(grid)
                   + ["", f"## runs ({len(built.specs)})"] + _runs(built.specs) + notes) + "\n"


def drift() -> list[str]:
  """Unified diffs of every dump that differs from its golden file (or has none)."""
  out = []
  for study, arg in studies():
    path = golden_path(study, arg)
    old = open(path, encoding="utf-8").read() if os.path.exists(path) else ""
    try:
      new = dump(study, arg)
    except NeedsData as e:
      print(f"skipped {e}")
      continue
    if old != new:
      out.append(drift_of(path, old, new))
  return out


def drift_of(path: str, old: str, new: str) -> str:
  rel = os.path.relpath(path, REPO)
  return "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True),
                                      f"{rel} (golden)", f"{rel} (now)"))


def update() -> list[str]:
  """Rewrites every dump and removes dumps of studies that are gone; returns the paths written."""
  os.makedirs(GOLDEN_DIR, exist_ok=True)
  keep = set()
  for study, arg in studies():
    path = golden_path(study, arg)
    keep.add(path)
    try:
      text = dump(study, arg)
    except NeedsData as e:  # Keep its last dump.
      print(f"kept {os.path.relpath(path, REPO)} as it was: {e}")
      continue
    with open(path, "w", encoding="utf-8") as f:
      f.write(text)
  for path in glob.glob(os.path.join(GOLDEN_DIR, "*.txt")):
    if path not in keep:
      os.remove(path)
  return sorted(keep)


def main(argv: list[str]) -> int:
  if argv[1:] not in ([], ["--update"]):
    print("usage: python -m mmscale.sweep.golden [--update]", file=sys.stderr)
    return 2
  if argv[1:] == ["--update"]:
    print(f"wrote {len(update())} golden dumps to {os.path.relpath(GOLDEN_DIR, REPO)}/")
    return 0
  diffs = drift()
  for d in diffs:
    print(d)
  print(f"{len(diffs)} of {len(studies())} golden dumps drifted" + (
      "; if intended: python -m mmscale.sweep.golden --update" if diffs else ""))
  return 1 if diffs else 0


if __name__ == "__main__":
  sys.exit(main(sys.argv))

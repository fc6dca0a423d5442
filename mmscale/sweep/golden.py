"""Golden dumps: every study's config, grid and run list as `key: value` text under tests/golden/.

  python -m mmscale.sweep.golden            # compare; prints a diff and exits 1 on any drift
  python -m mmscale.sweep.golden --update   # rewrite the dumps (review the diff, then commit)

A changed default, shape rule or run id then shows up as a reviewable diff (AXLearn's golden
configs). Each experiments/*.py is dumped with its default argument and the VARIANTS below.
Runs are resolved without validation (mmscale.config.derive): validation checks that prepared
data is on disk, and the dumps describe the studies, not this machine. The repository's path is
written as `<repo>`.

A late-fusion study on prepared corpora (the demo) plans from its data: the grid measures the media
share of each run's batches (mmscale/sweep/token_profile.py). `--data_dir=DIR` (or dump(...,
data_dir=DIR)) reads that data from DIR instead of the study's data.data_dir; the dump still shows
the study's own data_dir (run ids ignore where the data lives), so it is the same text wherever
the data was prepared. tests/golden/conftest.py prepares it once per test session.
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


def config_of(study: str, arg: str):
  """The study's get_config(arg)."""
  from mmscale.sweep import study as study_lib
  module = study_lib.load_module(os.path.join(REPO, study))
  return module, (module.get_config(arg) if arg else module.get_config())


def corpora(study: str, arg: str) -> list[str]:
  """The prepared corpora the study's streams read (what `mmscale data prepare --corpora` needs)."""
  _, config = config_of(study, arg)
  return sorted({str(s.name) for s in config.data.streams.values() if s.source == "corpus"})


def dump(study: str, arg: str, data_dir: str | None = None) -> str:
  """The golden text of one study file and argument; data_dir: where its prepared data is, if not
  at the study's data.data_dir (the text names the study's own)."""
  import dataclasses
  from mmscale import config as config_lib
  from mmscale.sweep import study as study_lib
  from mmscale.sweep import token_profile

  path = os.path.join(REPO, study)
  module, config = config_of(study, arg)
  own_dir = str(config.data.data_dir)
  if data_dir is not None:
    config.data.data_dir = str(data_dir)
  head = [f"# {study}{':' + arg if arg else ''}  (python -m mmscale.sweep.golden --update)"]
  if not hasattr(module, "get_grid") and "sweep" not in config:
    resolved = config_lib.derive(config)
    config.data.data_dir = own_dir
    return "\n".join(head + ["", "## config"] + _flat(config.to_dict())
                     + ["", "## run", config_lib.run_id(resolved)]) + "\n"
  try:
    built = study_lib.build(path, arg, config, resolve_fn=config_lib.derive)
  except token_profile.NeedsData as e:  # The plan measures the data, which is not prepared here.
    raise NeedsData(f"{study}{':' + arg if arg else ''}: {e}") from None
  built.config.data.data_dir = own_dir
  grid = {f.name: getattr(built.grid, f.name) for f in dataclasses.fields(built.grid)}
  notes = [f"note: {n}" for n in built.notes]
  return "\n".join(head + ["", "## config"] + _flat(built.config.to_dict())
                   + ["", "## grid"] + _flat(grid)
                   + ["", f"## runs ({len(built.specs)})"] + _runs(built.specs) + notes) + "\n"


def drift(data_dir: str | None = None) -> list[str]:
  """Unified diffs of every dump that differs from its golden file (or has none)."""
  out = []
  for study, arg in studies():
    path = golden_path(study, arg)
    old = open(path, encoding="utf-8").read() if os.path.exists(path) else ""
    try:
      new = dump(study, arg, data_dir)
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


def update(data_dir: str | None = None) -> list[str]:
  """Rewrites every dump and removes dumps of studies that are gone; returns the paths written."""
  os.makedirs(GOLDEN_DIR, exist_ok=True)
  keep = set()
  for study, arg in studies():
    path = golden_path(study, arg)
    keep.add(path)
    try:
      text = dump(study, arg, data_dir)
    except NeedsData as e:  # Keep its last dump.
      print(f"kept {os.path.relpath(path, REPO)} as it was: {e}")
      continue
    with open(path, "w", encoding="utf-8") as f:
      f.write(text)
  for path in glob.glob(os.path.join(GOLDEN_DIR, "*.txt")):
    if path not in keep:
      os.remove(path)
  return sorted(keep)


USAGE = "usage: python -m mmscale.sweep.golden [--update] [--data_dir=DIR]"


def main(argv: list[str]) -> int:
  args = argv[1:]
  dirs = [a.partition("=")[2] for a in args if a.startswith("--data_dir=")]
  if any(a not in ("--update",) and not a.startswith("--data_dir=") for a in args) or len(dirs) > 1:
    print(USAGE, file=sys.stderr)
    return 2
  data_dir = os.path.abspath(dirs[0]) if dirs else None
  if data_dir is not None and not os.path.isfile(os.path.join(data_dir, "manifest.json")):
    print(f"--data_dir={dirs[0]}: no prepared data there (no manifest.json); "
          f"mmscale data prepare --out {dirs[0]} prepares it", file=sys.stderr)
    return 2
  if "--update" in args:
    print(f"wrote {len(update(data_dir))} golden dumps to {os.path.relpath(GOLDEN_DIR, REPO)}/")
    return 0
  diffs = drift(data_dir)
  for d in diffs:
    print(d)
  print(f"{len(diffs)} of {len(studies())} golden dumps drifted" + (
      "; if intended: python -m mmscale.sweep.golden --update" if diffs else ""))
  return 1 if diffs else 0


if __name__ == "__main__":
  sys.exit(main(sys.argv))

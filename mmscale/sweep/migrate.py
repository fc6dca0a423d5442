"""Moves runs written under an older run-id scheme to the id their config has now.

Before run ids hashed only what makes a run (mmscale/config.py, "run identity"), they hashed
every key of the config (train.log_every included). A sweep over a root written then finds each of its runs under a new id; rather than train them
again, the old directory is renamed to the new id (checkpoints, records and summary move with it),
its run.json is updated (the id, and a branch's trunk) and `migrated.json` notes the old id. A run
whose claim is held is left alone until it is released.
"""

import json
import os

import ml_collections

from mmscale import config as config_lib
from mmscale.sweep import claims, registry
from mmscale.train.records import write_json_atomic

NOTE = "migrated.json"


def _current_id(spec: dict) -> str:
  return config_lib.run_id(ml_collections.ConfigDict(spec["config"]))


def migrate(root: str, specs) -> list[str]:
  """Renames old-id directories of `specs`' runs under root; returns one note per rename."""
  if not os.path.isdir(root):
    return []
  wanted = {s.run_id for s in specs}
  moves = {}
  for old in registry.list_runs(root):
    with open(os.path.join(registry.run_dir(root, old), registry.RUN_FILE)) as f:
      spec = json.load(f)
    new = _current_id(spec)
    if (new != old and new in wanted and not os.path.exists(registry.run_dir(root, new))
        and not claims.is_held(registry.run_dir(root, old))):
      moves[old] = (new, spec)
  renamed = {old: new for old, (new, _) in moves.items()}
  for name in registry.list_runs(root):  # Branches name their trunk: follow its new id.
    if name in moves:
      spec = moves[name][1]
    else:
      with open(os.path.join(registry.run_dir(root, name), registry.RUN_FILE)) as f:
        spec = json.load(f)
    trunk = spec.get("depends_on", "")
    if trunk in renamed:
      spec["depends_on"] = spec["config"]["train"]["init_from"] = renamed[trunk]
      if name not in moves:
        write_json_atomic(os.path.join(registry.run_dir(root, name), registry.RUN_FILE), spec)
  notes = []
  for old, (new, spec) in moves.items():
    spec["run_id"] = new
    d = registry.run_dir(root, old)
    write_json_atomic(os.path.join(d, NOTE), {"from": old, "to": new, "why": "run ids hash only what "
                                              "makes the run (presentation keys unhashed)"})
    write_json_atomic(os.path.join(d, registry.RUN_FILE), spec)
    os.rename(d, registry.run_dir(root, new))
    notes.append(f"migrated {old} -> {new} (same run, new id scheme; see {new}/{NOTE})")
  return notes

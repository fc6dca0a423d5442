"""The plan of a sweep: run order, the manifest workers read, and the --dry-run table."""

import hashlib
import os

from mmscale import contract
from mmscale.sweep import registry


def ordered(specs) -> list:
  """Trunks first (they unblock branches), then independent runs, then branches; longest first
  within a kind (fewer idle workers at the end), branches by how early their trunk reaches them."""
  rank = {"trunk": 0, "run": 1, "branch": 2}
  return sorted(specs, key=lambda s: (rank[s.kind], s.depends_step, -s.own_flops, -s.steps,
                                      s.run_id))


def manifest_path(root: str, study_path: str, specs) -> str:
  """root/sweeps/<study>-<digest of the run ids>.json."""
  ids = [s.run_id for s in ordered(specs)]
  digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:10]
  name = os.path.splitext(os.path.basename(study_path))[0]
  return os.path.join(root, "sweeps", f"{name}-{digest}.json")


def write_manifest(root: str, study_path: str, specs) -> str:
  """The ordered run ids of one sweep (what its workers work on)."""
  ids = [s.run_id for s in ordered(specs)]
  path = manifest_path(root, study_path, specs)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  if not os.path.exists(path):
    registry.write_json_atomic(path, {"study": study_path, "run_ids": ids})
  return path


def savings(specs) -> dict:
  """FLOPs of the sweep as planned vs as independent runs of the same budgets."""
  planned = sum(s.own_flops for s in specs)
  independent = sum(s.flops for s in specs if s.kind != "trunk")
  return {"planned": planned, "independent": independent,
          "saved": independent - planned, "fraction": 1 - planned / independent if independent else 0}


def reused(root: str, specs) -> float:
  """FLOPs of `specs` already computed under root: finished runs, and the finished part of a
  trunk that a larger budget extends."""
  total = 0.0
  for s in specs:
    if not root or not os.path.isdir(registry.run_dir(root, s.run_id)):
      continue
    summary = registry.summary(root, s.run_id) or {}
    if summary.get("status") == contract.DONE:  # A trunk to extend still has its old length on disk.
      total += min(registry.read_spec(root, s.run_id).own_flops, s.own_flops)
    elif summary.get("status") == contract.EXTENDED:  # Its spec has grown; the summary has the old end.
      total += s.own_flops * min(1.0, int(summary.get("step", 0)) / s.steps)
  return total


def _status(root: str, s) -> str:
  if not root or not os.path.isdir(registry.run_dir(root, s.run_id)):
    return "new"
  return "extend" if registry.extends(root, s) else registry.status(root, s.run_id)


def _time(seconds: float) -> str:
  if seconds < 120:
    return f"{seconds:.0f}s"
  if seconds < 7200:
    return f"{seconds / 60:.0f}m"
  return f"{seconds / 3600:.1f}h"


def format_plan(study, root: str = "", workers: int = 1) -> str:
  fps = float(study.grid.flops_per_second)
  specs = ordered(study.specs)
  lines = [f"{'run_id':<44} {'kind':<6} {'N':>9} {'D':>9} {'C':>9} {'steps':>6} {'from':>6} "
           f"{'est':>6} {'status':<9}"]
  for s in specs:
    st = _status(root, s)
    lines.append(f"{s.run_id:<44} {s.kind:<6} {s.params:>9.3g} {s.tokens:>9.3g} {s.flops:>9.3g} "
                 f"{s.steps:>6} {s.depends_step or '':>6} {_time(s.own_flops / fps):>6} {st:<9}")
  sv = savings(study.specs)
  lines.append(f"{len(specs)} runs ({sum(s.kind == 'trunk' for s in specs)} trunks); "
               f"compute {sv['planned']:.3g} FLOPs, est. {_time(sv['planned'] / fps)} at "
               f"{fps:.3g} FLOP/s per worker ({_time(sv['planned'] / fps / workers)} with "
               f"{workers} worker{'s' if workers > 1 else ''}; grid.flops_per_second sets the rate)")
  done = reused(root, specs)
  if done:
    lines.append(f"reuses {done:.3g} FLOPs already computed under {root} "
                 f"({100 * done / sv['planned']:.0f}%); {sv['planned'] - done:.3g} FLOPs to compute")
  if any(s.kind == "trunk" for s in specs):
    lines.append(f"cool-down branches save {sv['saved']:.3g} FLOPs ({100 * sv['fraction']:.0f}%) "
                 f"vs {sv['independent']:.3g} for independent runs")
  for note in study.notes:
    lines.append(f"note: {note}")
  return "\n".join(lines)

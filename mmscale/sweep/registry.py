"""Registry: grid cells -> RunSpecs with deterministic ids; one directory per run; status from disk.

run_id = readable name + a short hash of the resolved config (mmscale.config.run_id, as the
trainer computes it), so the same config always lands in the same directory and re-submitting a sweep skips
what is done and resumes what is not.

With grid.cooldown, every (axes, size) gets one constant-LR trunk that runs to the last branch
point and keeps a checkpoint at every branch point (train.save_steps); each budget is a cool-down
branch ("wsd") started from the trunk's checkpoint at its branch point. A branch's config names
its trunk by run id (train.init_from) so ids do not depend on where the root is; the runner
hands the trainer the trunk's directory.
"""

import dataclasses
import json
import math
import os

from mmscale import config as config_lib
from mmscale import contract
from mmscale.errors import UserError
from mmscale.sweep import grid as grid_lib
from mmscale.train.records import write_json_atomic

RUN_FILE = "run.json"  # The spec; written once by the registry, read by workers, status, collect.
ERROR_FILE = "worker_error.json"  # Written by a worker when a run's process died without a summary.


@dataclasses.dataclass
class RunSpec:
  run_id: str
  name: str
  kind: str  # "run" (independent), "trunk" or "branch".
  config: dict  # Resolved config as a plain dict.
  params: int
  tokens: int  # Tokens of the whole run (a branch counts its share of the trunk).
  flops: float  # FLOPs of the whole run, same convention.
  own_flops: float  # FLOPs this run itself computes (a branch: its cool-down only).
  steps: int
  tags: dict
  depends_on: str = ""  # Trunk run id of a branch.
  depends_step: int = 0  # Trunk step the branch starts from.

  def to_json(self) -> dict:
    return dataclasses.asdict(self)

  @classmethod
  def from_json(cls, d: dict) -> "RunSpec":
    return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d})


def _fmt(x: float) -> str:
  """1.5e8 -> '1.5e8' (readable and distinct for budgets that differ in 3 digits)."""
  mantissa, exp = f"{x:.2e}".split("e")
  return f"{mantissa.rstrip('0').rstrip('.')}e{int(exp)}"


def _run_name(g, cell, suffix) -> str:
  parts = [g.name] + [f"{v}" for v in cell.axes.values()] + [cell.size, suffix]
  return "_".join(str(p).replace("/", "-").replace(" ", "") for p in parts)


def branch_point(steps: int, cooldown_fraction: float) -> int:
  """The step where a WSD run's cool-down starts (its trunk checkpoint)."""
  return steps - math.ceil(cooldown_fraction * steps)


def build_specs(config, g, cells, resolve_fn) -> list[RunSpec]:
  """RunSpecs for the cells; trunks come before their branches."""
  specs = []
  if not g.cooldown:
    for cell in cells:
      tags = {"size": cell.size, "budget": cell.budget, **cell.axes, "trunk": ""}
      over = {**cell.overrides, "train.tokens": 0, "train.steps": cell.steps, "train.schedule": "wsd"}
      specs.append(_spec(config, over, _run_name(g, cell, f"C{_fmt(cell.budget)}"), "run", cell,
                         tags, resolve_fn, cell.flops))
    return specs
  groups = {}
  for cell in cells:
    groups.setdefault((tuple(cell.axes.items()), cell.size), []).append(cell)
  for (_, size), group in groups.items():
    base = grid_lib.apply(config, group[0].overrides)
    frac = float(base.train.cooldown_fraction)
    points = {c.budget: branch_point(c.steps, frac) for c in group}
    for c in group:
      if points[c.budget] <= int(base.train.warmup_steps) or points[c.budget] >= c.steps:
        raise UserError(f"grid cell size={size} C={c.budget:.3g}: {c.steps} steps leave no constant "
                        f"phase after {base.train.warmup_steps} warm-up steps for a cool-down branch")
    last = max(points.values())
    first = group[0]
    trunk_cell = dataclasses.replace(first, steps=last)
    tags = {"size": size, "budget": 0.0, **first.axes, "trunk": ""}
    over = {**first.overrides, "train.tokens": 0, "train.steps": last, "train.schedule": "constant",
            "train.save_steps": tuple(sorted(set(points.values())))}
    trunk = _spec(config, over, _run_name(g, first, "trunk"), "trunk", trunk_cell, tags, resolve_fn,
                  trunk_cell.flops)
    specs.append(trunk)
    for c in group:
      p = points[c.budget]
      tags = {"size": size, "budget": c.budget, **c.axes, "trunk": trunk.run_id}
      over = {**c.overrides, "train.tokens": 0, "train.steps": c.steps, "train.schedule": "wsd",
              "train.init_from": trunk.run_id, "train.init_step": p}
      spec = _spec(config, over, _run_name(g, c, f"C{_fmt(c.budget)}"), "branch", c, tags,
                   resolve_fn, c.flops_per_token * (c.steps - p) * c.tokens_per_step)
      spec.depends_on, spec.depends_step = trunk.run_id, p
      specs.append(spec)
  return specs


def _spec(config, over, name, kind, cell, tags, resolve_fn, own_flops) -> RunSpec:
  over = {**over, "run.name": name}
  over.update({f"run.tags.{k}": v for k, v in tags.items()})
  resolved = resolve_fn(grid_lib.apply(config, over))
  run_id = config_lib.run_id(resolved)  # The trainer derives the same id for its records.
  d = json.loads(json.dumps(resolved.to_dict(), default=str))
  return RunSpec(run_id=run_id, name=name, kind=kind, config=d, params=int(cell.params["params"]),
                 tokens=cell.tokens, flops=cell.flops, own_flops=float(own_flops),
                 steps=int(d["train"]["steps"]), tags=tags)


# ----------------------------------------------------------------------------- on disk


def run_dir(root: str, run_id: str) -> str:
  return os.path.join(root, run_id)


def _read_json(path: str):
  try:
    with open(path) as f:
      return json.load(f)
  except FileNotFoundError:
    return None
  except (json.JSONDecodeError, UnicodeDecodeError):
    return {"status": "unreadable"}


def check_root(root: str) -> str:
  """A sweep root must be a POSIX file system (local, NFS, a gcsfuse mount): claims are atomic
  O_EXCL file creations and runs write through the os module. A URL root (gs://...) is refused
  in one line, after asking etils.epath whether its file system is even installed, so that it
  never becomes a local folder named `gs:`."""
  scheme, sep, _ = root.partition("://")
  if not sep:
    return root
  from etils import epath
  try:
    epath.Path(root).exists()
  except ImportError as e:
    raise UserError(f"--root={root}: the {scheme}:// file system is not available here ({e}); "
                    "give a local or mounted path") from None
  except Exception:  # pylint: disable=broad-except  # Credentials, network: reachable or not,
    pass  # the answer below is the same.
  raise UserError(f"--root={root}: a sweep root must be a mounted file system (run claims need "
                  f"atomic file creation); mount {scheme}:// (e.g. gcsfuse) and pass the mount path")


def prepare_root(root: str) -> None:
  check_root(root)
  try:
    os.makedirs(root, exist_ok=True)
    probe = os.path.join(root, f".probe.{os.getpid()}")
    with open(probe, "w"):
      pass
    os.remove(probe)
  except OSError as e:
    raise UserError(f"sweep root {root!r} is not writable: {e.strerror or e}") from None


def write_specs(root: str, specs: list[RunSpec]) -> list[str]:
  """Creates one directory per run with its spec; an existing spec is never rewritten, except a
  trunk that a larger budget extends (constant LR: the same run, longer), which then continues
  from its last checkpoint. Returns a note per extended trunk."""
  prepare_root(root)
  notes = []
  for spec in specs:
    d = run_dir(root, spec.run_id)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, RUN_FILE)
    if not os.path.exists(path):
      write_json_atomic(path, spec.to_json())
    elif extends(root, spec):
      notes.append(_extend(root, spec))
  return notes


def extends(root: str, spec: RunSpec) -> bool:
  """Whether `spec` is a finished trunk on disk grown longer (a larger budget was added)."""
  old = _read_json(os.path.join(run_dir(root, spec.run_id), RUN_FILE)) or {}
  return spec.kind == "trunk" and int(old.get("steps", spec.steps)) < spec.steps


def _extend(root: str, spec: RunSpec) -> str:
  from mmscale.sweep import claims  # Avoids an import cycle.
  d = run_dir(root, spec.run_id)
  old = _read_json(os.path.join(d, RUN_FILE))
  if claims.is_held(d):
    return (f"trunk {spec.run_id} is running to step {old['steps']}; run the sweep again when it "
            f"is done to extend it to {spec.steps}")
  s = summary(root, spec.run_id)
  if s and s.get("status") == contract.DONE:  # Finished at the old length: it has more to do now.
    write_json_atomic(os.path.join(d, contract.SUMMARY_FILE), {**s, "status": contract.EXTENDED})
  write_json_atomic(os.path.join(d, RUN_FILE), spec.to_json())
  return (f"trunk {spec.run_id}: extended from {old['steps']} to {spec.steps} steps; it continues "
          "from its last checkpoint")


def read_spec(root: str, run_id: str) -> RunSpec:
  d = _read_json(os.path.join(run_dir(root, run_id), RUN_FILE))
  if not d or "run_id" not in d:
    raise UserError(f"{run_dir(root, run_id)}: missing or unreadable {RUN_FILE}")
  return RunSpec.from_json(d)


def list_runs(root: str) -> list[str]:
  check_root(root)
  if not os.path.isdir(root):
    raise UserError(f"sweep root {root!r} does not exist")
  return sorted(n for n in os.listdir(root) if os.path.isfile(os.path.join(root, n, RUN_FILE)))


def summary(root: str, run_id: str):
  return _read_json(os.path.join(run_dir(root, run_id), contract.SUMMARY_FILE))


def status(root: str, run_id: str, stale_after: float | None = None) -> str:
  """pending | running | preempted | done | diverged | failed | blocked (claims decide "running",
  stale after `stale_after` s, by default claims.STALE_AFTER_S; "blocked": a branch whose trunk
  diverged before the branch's starting checkpoint)."""
  from mmscale.sweep import claims  # Avoids an import cycle.

  s = summary(root, run_id) or {}
  if s.get("status") in contract.FINISHED:
    return s["status"]
  if claims.is_held(run_dir(root, run_id), claims.STALE_AFTER_S if stale_after is None
                    else stale_after):
    return contract.RUNNING
  if (s.get("status") == contract.FAILED
      or os.path.exists(os.path.join(run_dir(root, run_id), ERROR_FILE))):
    return contract.FAILED
  spec = _read_json(os.path.join(run_dir(root, run_id), RUN_FILE)) or {}
  trunk = spec.get("depends_on")
  if (trunk and (summary(root, trunk) or {}).get("status") == contract.DIVERGED
      and not checkpoint_ready(root, trunk, int(spec.get("depends_step", 0)))):
    return contract.BLOCKED
  if s.get("status") == contract.PREEMPTED:
    return contract.PREEMPTED
  return contract.PENDING


def checkpoint_ready(root: str, run_id: str, step: int) -> bool:
  """Whether a trunk has a finished checkpoint at `step` (Orbax renames a step's temporary
  directory to checkpoints/<step> only once it is complete)."""
  return os.path.isdir(os.path.join(run_dir(root, run_id), contract.CHECKPOINTS_DIR, str(step)))

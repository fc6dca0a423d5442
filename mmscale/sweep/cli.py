"""`mmscale sweep | status | collect`.

  mmscale sweep --config=experiments/STUDY.py[:arg] --root=DIR [--launcher=local|slurm|tpu]
                [--workers=N] [--dry-run] [--config.a.b=value ...]
  mmscale status --root=DIR [--json]
  mmscale collect --root=DIR --out=records.csv
"""

import importlib
import json
import os

from absl import flags, logging
from ml_collections import config_flags

from launch import LAUNCHERS
from mmscale.errors import UserError
from mmscale.flagparse import parse_flags

FLAGS = flags.FlagValues()
_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Study file with get_config(arg) and get_grid(arg), e.g. "
    "experiments/tiny_isoflop.py; leaves of the base config can be overridden (--config.seed=1).",
    flag_values=FLAGS, lock_config=False)
_ROOT = flags.DEFINE_string("root", None, "Sweep root: one directory per run.", flag_values=FLAGS)
_LAUNCHER = flags.DEFINE_enum("launcher", "local", sorted(LAUNCHERS), "Where to run.",
                              flag_values=FLAGS)
_WORKERS = flags.DEFINE_integer("workers", 1, "Worker processes (local), array tasks (slurm).",
                                lower_bound=1, flag_values=FLAGS)
_DRY_RUN = flags.DEFINE_bool("dry_run", False, "Print the plan (runs, N, D, C, est. time) only.",
                             flag_values=FLAGS)
_RETRY = flags.DEFINE_bool("retry_failed", False, "Run failed runs again.", flag_values=FLAGS)
_TRAIN_FN = flags.DEFINE_string("train_fn", "mmscale.train.loop:train",
                                "module:function that trains one run (config, workdir).",
                                flag_values=FLAGS)
_POLL = flags.DEFINE_float("poll_s", 2.0, "Seconds between checks while waiting on other workers.",
                           lower_bound=0.01,
                           flag_values=FLAGS)
_PROGRESS = flags.DEFINE_float("progress_s", 10.0, "Seconds between progress reports (runs per "
                               "status, each running run's step, loss and tokens/s, the sweep's "
                               "ETA) while the sweep runs; 0: none.", lower_bound=0.0,
                               flag_values=FLAGS)
_WAIT = flags.DEFINE_bool("wait", False, "slurm/tpu: wait until the jobs finish.", flag_values=FLAGS)
_PARTITION = flags.DEFINE_string("partition", "", "slurm: partition.", flag_values=FLAGS)
_TIMEOUT = flags.DEFINE_integer("timeout_min", 60 * 24, "slurm: time limit per task (minutes).",
                                lower_bound=1,
                                flag_values=FLAGS)
_SLURM_ARGS = flags.DEFINE_string("slurm_args", "", "slurm: extra sbatch parameters as JSON, "
                                  "e.g. '{\"gpus_per_node\": 8}'.", flag_values=FLAGS)
_TPU = flags.DEFINE_string("tpu", "", "tpu: TPU VM name.", flag_values=FLAGS)
_ZONE = flags.DEFINE_string("zone", "", "tpu: zone.", flag_values=FLAGS)
_PROJECT = flags.DEFINE_string("project", "", "tpu: GCP project.", flag_values=FLAGS)
_REPO = flags.DEFINE_string("repo_dir", "", "tpu: checkout of this repo on the hosts (default: "
                            "the local path).", flag_values=FLAGS)
_CLAIM_TIMEOUT = flags.DEFINE_float(
    "claim_timeout_s", 120.0, "Seconds without a heartbeat after which a run's claim counts as "
    "abandoned (its worker died) and another worker takes the run over; at least 30 (claims beat "
    "every 10 s).", flag_values=FLAGS)
_JSON = flags.DEFINE_bool("json", False, "status: print JSON.", flag_values=FLAGS)
_OUT = flags.DEFINE_string("out", None, "collect: output CSV.", flag_values=FLAGS)

# `mmscale status --help` and `collect --help` list their own flags only; sweep the rest.
HELP_FLAGS = {"status": ["root", "json"], "collect": ["root", "out", "config"]}
HELP_FLAGS["sweep"] = [n for n in FLAGS if n not in ("json", "out")]


def parse(argv: list[str]) -> None:
  argv = [a.replace("--dry-run", "--dry_run") if a.startswith("--dry-run") else a for a in argv]
  parse_flags(FLAGS, argv)


def _root() -> str:
  if not _ROOT.value:
    raise UserError("--root is required (the sweep directory)")
  from mmscale.sweep.registry import check_root
  return check_root(_ROOT.value)


def check_train_fn(spec: str) -> None:
  """--train_fn names a module (or .py file) that exists; found without importing it (jax)."""
  import importlib.util
  import os

  module = spec.rpartition(":")[0] if ":" in spec else spec
  if module.endswith(".py"):
    found = os.path.isfile(module)
  else:
    try:
      found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
      found = False
  if not found:
    raise UserError(f"--train_fn={spec}: no module {module!r}; give package.module:function or "
                    "path/to/file.py:function")


def sweep() -> int:
  from mmscale.sweep import plan, registry, study as study_lib

  if _CONFIG.value is None:
    raise UserError("--config is required, e.g. --config=experiments/tiny_isoflop.py")
  path, arg = study_lib.split_arg(FLAGS["config"].config_filename)
  root = _root()
  from mmscale.sweep import claims
  if not 3 * claims.HEARTBEAT_S <= _CLAIM_TIMEOUT.value < float("inf"):
    raise UserError(f"--claim_timeout_s={_CLAIM_TIMEOUT.value:g}: must be a number >= "
                    f"{3 * claims.HEARTBEAT_S:g} (claims beat every {claims.HEARTBEAT_S:g} s; a "
                    "shorter timeout would take live runs away from their workers)")
  check_train_fn(_TRAIN_FN.value)
  if _LAUNCHER.value == "tpu":
    from launch import tpu
    tpu.commands(_TPU.value, _ZONE.value, _PROJECT.value, "true")  # Its --tpu/--zone check.
  extra = {}
  if _LAUNCHER.value == "slurm":  # Checked here: launching is too late, the root is written by then.
    from launch import slurm
    extra = slurm.parse_slurm_args(_SLURM_ARGS.value)
    if not _DRY_RUN.value:  # The client on PATH and sbatch's view of the parameters; writes nothing.
      slurm.make_executor(root, _WORKERS.value, _PARTITION.value, _TIMEOUT.value, extra)
  # Runs execute in the root (mmscale/sweep/runner.py): a data folder given relative to here must be
  # found from there too. data_dir is not part of a run's identity, so run ids do not change.
  data_dir = _CONFIG.value.data.get("data_dir", "") if "data" in _CONFIG.value else ""
  if data_dir and "://" not in data_dir and not os.path.isabs(data_dir):
    _CONFIG.value.data.data_dir = os.path.abspath(data_dir)
  study = study_lib.build(path, arg, _CONFIG.value)
  if _DRY_RUN.value:
    print(plan.format_plan(study, root, _WORKERS.value))
    if _LAUNCHER.value == "tpu":  # Show the commands too; the manifest path is where it will be.
      from launch import tpu
      manifest = plan.manifest_path(root, path, study.specs)
      tpu.launch(root, manifest, _WORKERS.value, _TRAIN_FN.value, tpu=_TPU.value, zone=_ZONE.value,
                 project=_PROJECT.value, repo_dir=_REPO.value, dry_run=True)
    return 0
  from mmscale.sweep import migrate
  for note in migrate.migrate(root, study.specs):
    print(note)
  for note in registry.write_specs(root, study.specs):
    print(note)
  manifest = plan.write_manifest(root, path, study.specs)
  for note in study.notes:
    logging.info("grid: %s", note)
  launcher = importlib.import_module(LAUNCHERS[_LAUNCHER.value])
  from mmscale.sweep import watch
  # Shown while this process waits on the runs (local workers, or scheduler jobs with --wait).
  every = _PROGRESS.value if _LAUNCHER.value == "local" or _WAIT.value else 0
  with watch.Watcher(root, json.load(open(manifest))["run_ids"], every_s=every):
    rc = launcher.launch(root, manifest, _WORKERS.value, _TRAIN_FN.value,
                         retry_failed=_RETRY.value, poll_s=_POLL.value, wait=_WAIT.value,
                         claim_timeout_s=_CLAIM_TIMEOUT.value,
                         partition=_PARTITION.value, timeout_min=_TIMEOUT.value, slurm_args=extra,
                         tpu=_TPU.value, zone=_ZONE.value, project=_PROJECT.value,
                         repo_dir=_REPO.value)
  if _LAUNCHER.value == "local":
    from mmscale.sweep import status
    rows = status.table(root)
    ids = set(json.load(open(manifest))["run_ids"])
    print(status.format_table([r for r in rows if r["run_id"] in ids]))
  return rc


def main(argv: list[str]) -> int:
  parse(argv)
  logging.set_verbosity(logging.INFO)
  command = argv[0].removeprefix("mmscale-")
  if command == "sweep":
    return sweep()
  if command == "status":
    from mmscale.sweep import status
    rows = status.table(_root())
    print(json.dumps(rows, indent=1) if _JSON.value else status.format_table(rows))
    return 0
  if command == "collect":
    from mmscale.sweep import collect
    if not _OUT.value:
      raise UserError("--out is required (the CSV to write)")
    from mmscale import outputs
    outputs.check_file("out", _OUT.value)
    only = None
    if _CONFIG.value is not None:  # Only this study's current runs, not everything under the root.
      from mmscale.sweep import study as study_lib
      path, arg = study_lib.split_arg(FLAGS["config"].config_filename)
      only = [s.run_id for s in study_lib.build(path, arg, _CONFIG.value).specs]
    n = collect.collect(_root(), _OUT.value, only=only)
    print(f"wrote {n} rows to {_OUT.value}")
    return 0
  raise UserError(f"mmscale.sweep.cli serves sweep, status and collect, not {argv[0]!r}")

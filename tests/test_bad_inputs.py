"""Every bad input to every command: exit 2, one line on stderr, no traceback, nothing on disk changed.

The cases run through `mmscale.cli.run` in this process with the file descriptors captured (capfd:
absl logging and anything else written to fd 2 counts as a line), because a subprocess costs ~2 s
of start-up each on 2 cores; a handful run as real `python -m mmscale` subprocesses at the end.
The inputs live in one folder whose every file, folder and byte is hashed before and after.
"""

import hashlib
import json
import os
import subprocess
import sys

import pytest
import submitit  # noqa: F401  Imported now: its import runs logging.config.dictConfig, which
                 # closes the handlers pytest's fd capture (capfd) is writing through.

from mmscale import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

BASE = "from mmscale.config import base_config\n"
STUDY = BASE + "def get_config(arg=''):\n  c = base_config(); c.run.name = 's'; return c\n"
STUDIES = {
    "syntax.py": "def get_config(arg=''):\n  return (\n",
    "raising.py": "def get_config(arg=''):\n  raise RuntimeError('boom')\n",
    "import_raising.py": "import no_such_module_anywhere\n",
    "no_get_config.py": "X = 1\n",
    "returns_none.py": "def get_config(arg=''):\n  base = 1\n",
    "grid_raising.py": STUDY + "def get_grid(arg=''):\n  return {}['budgets']\n",
    "grid_none.py": STUDY + "def get_grid(arg=''):\n  pass\n",
    "grid_field.py": STUDY + "def get_grid(arg=''):\n  return {'budget': (1e12,)}\n",
    "string_budget.py": STUDY + "def get_grid(arg=''):\n  return {'budgets': ('1e12',), "
                        "'sizes': {'a': {'model.width': 16}}}\n",
    "sizes_list.py": STUDY + "def get_grid(arg=''):\n  return {'budgets': (1e12,), 'sizes': [16, 32]}\n",
    "range_two.py": STUDY + "def get_grid(arg=''):\n  return {'budget_range': (1e12, 1e13), "
                    "'sizes': {'a': {'model.width': 16}}}\n",
    "lr_rule_raising.py": STUDY + "def get_grid(arg=''):\n  return {'budgets': (1e11,), "
                          "'sizes': {'a': {'model.width': 16}}, 'lr_rule': lambda n: 1 / 0}\n",
    "lr_rule_string.py": STUDY + "def get_grid(arg=''):\n  return {'budgets': (1e11,), "
                         "'sizes': {'a': {'model.width': 16}}, 'lr_rule': lambda n: '3e-3'}\n",
    "min_steps_zero.py": STUDY + "def get_grid(arg=''):\n  return {'budgets': (1e12,), "
                         "'sizes': {'a': {'model.width': 16}}, 'min_steps': 0}\n",
}


def _root_with_records(path, lines: bytes):
  """A sweep root holding one run (its spec as the registry writes it) with these records bytes."""
  from mmscale import contract
  from mmscale.sweep import registry

  spec = registry.RunSpec(run_id="r_s1_C1e9-0123456789", name="r_s1_C1e9", kind="run", config={},
                          params=1000, tokens=10_000, flops=6e7, own_flops=6e7, steps=10,
                          tags={"size": "s1"})
  registry.write_specs(str(path), [spec])
  records = os.path.join(registry.run_dir(str(path), spec.run_id), contract.RECORDS_FILE)
  with open(records, "wb") as f:
    f.write(lines)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
  """Every input the cases name, in one folder."""
  w = tmp_path_factory.mktemp("inputs")
  for name, text in STUDIES.items():
    (w / name).write_text(text)
  (w / "a_file").write_text("not a folder\n")
  (w / "bad_workdir").mkdir()
  (w / "bad_workdir" / "config.json").write_text("{not json")
  good = "params,tokens,loss\n1e6,2e7,3.1\n2e6,2e7,3.0\n4e6,2e7,2.9\n"
  (w / "good.csv").write_text(good)
  (w / "latin1.csv").write_bytes(b"params,tokens,loss,source\n1e6,2e7,3.1,caf\xe9\n")
  (w / "huge_loss.csv").write_text(good.replace("3.1", "1e300"))
  (w / "huge_params.csv").write_text(good.replace("1e6", "1e300"))
  (w / "nan_loss.csv").write_text(good.replace("3.1", "nan"))
  (w / "no_loss.csv").write_text("params,tokens\n1e6,2e7\n")
  (w / "header_only.csv").write_text("params,tokens,loss\n")
  (w / "latin1_config.py").write_bytes(b"# caf\xe9\ndef get_config(arg=''):\n  pass\n")
  (w / "fit_list.json").write_text("[1, 2]")
  (w / "fit_empty.json").write_text("{}")
  (w / "fit_other_law.json").write_text(json.dumps({"law": "mixed_modal", "groups": {}}))
  (w / "fit_broken.json").write_text('{"law": "chinchilla",')
  (w / "routing_list.json").write_text("[]")
  record = {"kind": "eval", "run_id": "x", "step": 4, "tokens": 10, "val": {}}
  _root_with_records(w / "root_latin1", b'{"kind": "eval", "note": "caf\xe9"}\n')
  no_step = {k: v for k, v in record.items() if k != "step"}
  _root_with_records(w / "root_no_step", (json.dumps(no_step) + "\n").encode())
  (w / "root_empty").mkdir()
  return w


def _tree(path) -> dict:
  """Every file and folder under path -> sha256 of its bytes (None for a folder)."""
  out = {}
  for dirpath, dirnames, filenames in os.walk(path):
    for d in dirnames:
      out[os.path.relpath(os.path.join(dirpath, d), path)] = None
    for f in filenames:
      p = os.path.join(dirpath, f)
      with open(p, "rb") as fh:
        out[os.path.relpath(p, path)] = hashlib.sha256(fh.read()).hexdigest()
  return out


TINY, ISO = "--config=experiments/tiny.py", "--config=experiments/tiny_isoflop.py"
# (argv with {w} for the inputs folder, a piece of the expected error line). Each is a distinct mistake.
CASES = [
    # train: the config file, its overrides, the workdir, what the run would read.
    ("train {TINY} --workdir={w}/r --config.train.lrr=1", "config.train has no key 'lrr' (did you mean 'lr'?)"),
    ("train {TINY} --workdir={w}/r --config.trian.lr=1", "config has no key 'trian' (did you mean 'train'?)"),
    ("train {TINY} --workdir={w}/r --config.zzzz=1", "config has no key 'zzzz' (its keys: data, "),
    ("train {TINY} --workdir={w}/r --config.train.lr.x=1", "config.train.lr is a value (float), not a group"),
    ("train {TINY} --workdir={w}/r --config.train.lr=abc", "--config.train.lr=abc: could not convert"),
    ("train {TINY} --workdir={w}/r --config.train.lr=0", "config.train.lr=0"),
    ("train --config={w}/syntax.py --workdir={w}/r", "syntax.py: syntax error at line 2: '(' was never closed"),
    ("train --config={w}/raising.py --workdir={w}/r", "RuntimeError: boom (at {w}/raising.py:2)"),
    ("train --config={w}/import_raising.py --workdir={w}/r", "loading it raised ModuleNotFoundError"),
    ("train --config={w}/no_get_config.py --workdir={w}/r", "the file defines no get_config(arg) function"),
    ("train --config={w}/returns_none.py --workdir={w}/r", "get_config returned NoneType, not an ml_collections"),
    ("train --config={w}/nope.py --workdir={w}/r", "--config={w}/nope.py: no such config file"),
    ("train {TINY}:bogus=1 --workdir={w}/r", "unknown argument 'bogus' (allowed: steps=N)"),
    ("train --config=experiments/nmm.py:size=zz --workdir={w}/r",
     "flag --config=experiments/nmm.py:size=zz: experiments/nmm.py: unknown size 'zz' (allowed: t1,"),
    ("train --config={w}/latin1_config.py --workdir={w}/r", "latin1_config.py: cannot read it ('utf-8' codec"),
    ("train --workdir={w}/r", "--config is required"),
    ("train {TINY}", "--workdir is required"),
    ("train {TINY} --workdirr={w}/r", "Unknown command line flag 'workdirr'"),
    ("train experiments/tiny.py --workdir={w}/r", "unexpected argument 'experiments/tiny.py': flags are"),
    ("sweep {ISO} --root={w}/s --dry-run now", "unexpected argument 'now'"),
    ("data prepare {w}/data", "unexpected argument '{w}/data'"),
    ("train {TINY} --workdir={w}/a_file", "is a file; must be a directory"),
    ("train {TINY} --workdir={w}/bad_workdir", "its config.json is not a JSON object"),
    ("train {TINY} --workdir={w}/r --config.train.init_from={w}/no_trunk --config.train.init_step=5",
     "no checkpoint of step 5 in {w}/no_trunk/checkpoints"),
    # sweep: the study's grid, the launcher's arguments.
    ("sweep --config={w}/grid_raising.py --root={w}/s", "get_grid raised KeyError: 'budgets' (at"),
    ("sweep --config={w}/grid_none.py --root={w}/s", "get_grid returned NoneType, not a dict"),
    ("sweep --config={w}/grid_field.py --root={w}/s", "grid has no field 'budget'"),
    ("sweep --config={w}/string_budget.py --root={w}/s", "grid.budgets=('1e12',): must be a tuple of FLOP"),
    ("sweep --config={w}/sizes_list.py --root={w}/s", "grid.sizes=[16, 32]: must be a dict {name: overrides}"),
    ("sweep --config={w}/range_two.py --root={w}/s", "grid.budget_range=(1000000000000.0, "),
    ("sweep --config={w}/min_steps_zero.py --root={w}/s", "grid.min_steps=0: must be an integer >= 1"),
    ("sweep --config={w}/lr_rule_raising.py --root={w}/s --dry-run",
     ") raised ZeroDivisionError: division by zero (at {w}/lr_rule_raising.py:5)"),
    ("sweep --config={w}/lr_rule_string.py --root={w}/s --dry-run", ") returned '3e-3'; must be a positive number"),
    ("sweep {ISO} --root={w}/s --train_fn=no_such_module:train", "--train_fn=no_such_module:train: no module"),
    ("sweep {ISO} --root={w}/s --poll_s=-1", "--poll_s=-1: -1.0 is not number >= 0.01"),
    ("sweep {ISO} --root={w}/s --launcher=tpu", "--launcher=tpu needs --tpu=NAME and --zone=ZONE"),
    ("sweep {ISO} --root={w}/s --config.train.lrr=1", "config.train has no key 'lrr' (did you mean 'lr'?)"),
    ("sweep {ISO} --root={w}/s --launcher=slurm --slurm_args={{gpus", "--slurm_args={gpus: not JSON"),
    ("sweep {ISO} --root={w}/s --launcher=slurm --slurm_args=[1]", "must be a JSON object of sbatch"),
    ("sweep {ISO} --root={w}/s --launcher=slurm --slurm_args={{\"gpus_per_nod\":1}}",
     "unknown sbatch parameter 'gpus_per_nod' (did you mean 'gpus_per_node'?)"),
    ("sweep {ISO} --root={w}/s --workers=0", "--workers=0"),
    ("sweep {ISO} --root={w}/s --launcher=k8s", "--launcher=k8s"),
    ("sweep {ISO}", "--root is required"),
    # status and collect: the root, its records, the output.
    ("status", "--root is required"),
    ("collect --root={w}/root_latin1 --out={w}/t.csv", "line 1 is not UTF-8 text (corrupt records file)"),
    ("collect --root={w}/root_no_step --out={w}/t.csv", "record 1 has no integer 'step'"),
    ("collect --root={w}/root_empty --out={w}/t.csv", "holds no runs"),
    ("collect --root={w}/root_no_step --out={w}/a_file/t.csv", "{w}/a_file is a file, not a folder"),
    ("collect --root={w}/root_no_step", "--out is required"),
    # fit: the table and the output.
    ("fit --records={w}/latin1.csv", "latin1.csv is not UTF-8 text (line 2, byte 41: b'\\xe9')"),
    ("fit --records={w}/huge_loss.csv", "1 above 1e+03, not a plausible loss"),
    ("fit --records={w}/huge_params.csv", "1 above 1e+30, not a plausible count"),
    ("fit --records={w}/nan_loss.csv", "column 'loss': 1 of 3 values rejected (1 NaN)"),
    ("fit --records={w}/no_loss.csv", "needs column 'loss'"),
    ("fit --records={w}/missing.csv", "missing.csv does not exist"),
    ("fit --records={w}", "is a directory; give a CSV file"),
    ("fit --records={w}/good.csv --json={w}/a_file/fit.json", "{w}/a_file is a file, not a folder"),
    ("fit --records={w}/good.csv --json={w}", "--json={w}: is a folder; give a file name"),
    ("fit --records={w}/good.csv --law=kaplan", "--law=kaplan"),
    ("fit", "--records=FILE is required"),
    # report: the fit, the routing, the output folder.
    ("report --records={w}/good.csv --fit={w}/fit_list.json --out={w}/rep", "holds a JSON list; must be an object"),
    ("report --records={w}/good.csv --fit={w}/fit_empty.json --out={w}/rep", "no fit with numeric E, A, B"),
    ("report --records={w}/good.csv --fit={w}/fit_other_law.json --out={w}/rep", "is a fit of law 'mixed_modal'"),
    ("report --records={w}/good.csv --fit={w}/fit_broken.json --out={w}/rep", "not valid JSON"),
    ("report --records={w}/good.csv --routing={w}/routing_list.json --out={w}/rep", "holds a JSON list"),
    ("report --records={w}/good.csv --out={w}/a_file", "--out={w}/a_file: is a file; give a folder"),
    ("report --records={w}/latin1.csv --out={w}/rep", "is not UTF-8 text"),
    ("report --root={w}/no_root --out={w}/rep", "--root={w}/no_root: no such sweep folder"),
    ("report --records={w}/good.csv", "--out=REPORT_DIR is required"),
    ("report --records={w}/good.csv --out={w}/rep --metric=bpb", "--metric=bpb: no such column"),
    ("report --records={w}/header_only.csv --out={w}/rep", "the records table has no row with a finite"),
    ("report --records={w}/good.csv --out={w}/rep --bootstrap=-5", "-5 is not a non-negative integer"),
    # data: the output folder and the preparation's settings.
    ("data prepare --out={w}/a_file/data", "{w}/a_file is a file, not a folder"),
    ("data prepare --out={w}/a_file", "--out={w}/a_file: is a file; give a folder"),
    ("data prepare --out={w}/data --corpora=wikipedia", "unknown corpus 'wikipedia'"),
    ("data prepare --out={w}/data --bpe_vocab_size=100", "--bpe_vocab_size=100: must be at least"),
    ("data prepare --out={w}/data --max_examples=0", "--max_examples=0: must be a positive integer"),
    ("data stats --config={w}/syntax.py", "syntax error at line 2"),
    ("data stats {TINY} --sequences=0", "--sequences=0: must be a positive integer"),
    ("data stats {TINY} --process_count=0", "need 0 <= process_index < process_count"),
    ("data bogus", "usage: mmscale data prepare"),
    # demo: checked before its first stage prepares data for minutes.
    ("demo --workers=0 --out={w}/demo", "--workers=0: 0 is not a positive integer"),
    ("demo --bootstrap=-1 --out={w}/demo", "--bootstrap=-1: -1 is not a non-negative integer"),
    ("demo --study={w}/nope.py --out={w}/demo", "--study={w}/nope.py: no such study file"),
    ("demo --out={w}/a_file", "--out={w}/a_file: is a file; give a folder"),
    ("demo --reference={w}/nope.json --out={w}/demo", "--reference={w}/nope.json: no such headline file"),
    ("trian", "unknown command 'trian' (did you mean 'train'? commands: train, sweep, "),
]


def _argv(template: str, w) -> list[str]:
  return template.format(w=w, TINY=TINY, ISO=ISO).split()


@pytest.mark.parametrize("template,expected", CASES, ids=[c[0][:60] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(world, template, expected, capfd,
                                                         monkeypatch):
  monkeypatch.chdir(ROOT)  # experiments/... paths are relative, as in the README.
  before = _tree(world)
  code = cli.run(["mmscale", *_argv(template, world)])
  out, err = capfd.readouterr()
  lines = [l for l in err.splitlines() if l.strip()]
  assert code == 2, (code, err)
  assert len(lines) == 1 and "Traceback" not in err, err
  assert lines[0].startswith("mmscale: error: "), lines[0]
  assert expected.replace("{w}", str(world)) in lines[0], lines[0]
  assert _tree(world) == before  # Nothing created, changed or removed.


def test_there_are_at_least_40_distinct_cases():
  assert len({c[0] for c in CASES}) == len(CASES) >= 40
  assert {c[0].split()[0] for c in CASES} >= {"train", "sweep", "collect", "fit", "report", "data"}


def test_a_csv_with_a_byte_order_mark_is_read(tmp_path):
  """What a spreadsheet writes: the mark is dropped, not read into the first column's name."""
  from mmscale.laws import table as tbl

  (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbfparams,tokens,loss\r\n1e6,2e7,3.1\r\n")
  t = tbl.read_table(tmp_path / "bom.csv")
  assert sorted(t) == ["loss", "params", "tokens"] and t["params"].tolist() == [1e6]


REAL = [("train {TINY} --workdir={w}/r --config.train.lrr=1", "did you mean 'lr'?"),
        ("sweep --config={w}/sizes_list.py --root={w}/s --dry-run", "grid.sizes=[16, 32]"),
        ("fit --records={w}/huge_loss.csv --json={w}/f.json", "not a plausible loss"),
        ("report --records={w}/good.csv --fit={w}/fit_list.json --out={w}/rep", "holds a JSON list")]


@pytest.mark.parametrize("template,expected", REAL, ids=[c[0].split()[0] for c in REAL])
def test_real_command_line(world, template, expected):
  """The same through `python -m mmscale`: the exit status and stderr a shell sees."""
  before = _tree(world)
  r = subprocess.run([sys.executable, "-m", "mmscale", *_argv(template, world)], cwd=ROOT,
                     capture_output=True, text=True, timeout=120)
  assert r.returncode == 2, r.stderr
  assert r.stderr.count("\n") == 1 and expected in r.stderr, r.stderr
  assert _tree(world) == before

"""The disk contract's file names and run statuses are written once, in mmscale/contract.py: a
stage that spells "records.jsonl" or "running" itself could drift from the stage that writes it, so
no other module under mmscale/ or launch/ may hold a file name as a string constant, nor may the
sweep and its launchers (which read, derive and print statuses) hold a status (docstrings and
messages that mention a name inside longer text are fine)."""

import ast
import os

from mmscale import contract

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMES = {contract.CONFIG_FILE, contract.RECORDS_FILE, contract.SUMMARY_FILE,
         contract.CHECKPOINTS_DIR}
# The trainer's statuses and those the sweep derives; "failed" and "done" are also ordinary words
# elsewhere (a fit's failed checks), so statuses are checked where runs are scheduled and shown.
STATUSES = {*contract.STATUS_OF_EXIT.values(), *contract.SWEEP_STATUSES}
STATUS_DIRS = ("mmscale/sweep", "launch")


def _sources(tops=("mmscale", "launch")):
  for top in tops:
    for dirpath, _, files in os.walk(os.path.join(ROOT, top)):
      for name in sorted(files):
        if name.endswith(".py"):
          yield os.path.join(dirpath, name)


def name_literals(source: str, names=frozenset(NAMES)) -> list[tuple[int, str]]:
  """(line, name) of every string constant equal to one of `names` (contract file names)."""
  return [(node.lineno, node.value) for node in ast.walk(ast.parse(source))
          if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names]


def test_the_check_finds_a_name_wherever_it_is_spelled():
  source = ('import os\np = os.path.join(d, "records.jsonl")\n'
            'msg = f"{os.path.join(d, \'checkpoints\')} is missing"\n'
            '"""A docstring naming summary.json is fine."""\n')
  assert name_literals(source) == [(2, "records.jsonl"), (3, "checkpoints")]


def test_contract_file_names_are_spelled_only_in_contract_py():
  contract_py = os.path.join(ROOT, "mmscale", "contract.py")
  found = []
  for path in _sources():
    if path == contract_py:
      continue
    with open(path, encoding="utf-8") as f:
      found += [f"{os.path.relpath(path, ROOT)}:{line}: {name!r}"
                for line, name in name_literals(f.read())]
  assert not found, "use mmscale.contract's names instead of:\n" + "\n".join(found)


def test_contract_defines_each_name_and_status_once():
  assert len(NAMES) == 4
  assert set(contract.EXIT_OF_STATUS) == set(contract.STATUS_OF_EXIT.values())
  assert contract.EXIT_OF_STATUS[contract.PREEMPTED] == 143  # 128 + SIGTERM: schedulers requeue.
  assert set(contract.FINISHED) <= set(contract.EXIT_OF_STATUS)


def test_the_check_finds_a_planted_status():
  source = ('def status(s):\n  if s.get("status") == "extended":\n    return "pending"\n'
            '  return f"{s} is running"  # Inside longer text: fine.\n')
  assert name_literals(source, STATUSES) == [(2, "extended"), (3, "pending")]


def test_statuses_are_spelled_only_in_contract_py():
  found = []
  for path in _sources(STATUS_DIRS):
    with open(path, encoding="utf-8") as f:
      found += [f"{os.path.relpath(path, ROOT)}:{line}: {name!r}"
                for line, name in name_literals(f.read(), STATUSES)]
  assert not found, "use mmscale.contract's status names instead of:\n" + "\n".join(found)


def test_sweep_statuses_are_distinct_from_the_trainers():
  assert len(STATUSES) == len(contract.STATUS_OF_EXIT) + len(contract.SWEEP_STATUSES) == 8
  # A sweep-only status never comes from a process's exit code.
  assert not set(contract.SWEEP_STATUSES) & set(contract.EXIT_OF_STATUS)

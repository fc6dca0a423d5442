"""The disk contract's file names are written once, in mmscale/contract.py: a stage that spells
"records.jsonl" itself could drift from the trainer that writes it, so no other module under
mmscale/ or launch/ may hold one of these names as a string constant (docstrings and messages that
mention a name inside longer text are fine)."""

import ast
import os

from mmscale import contract

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMES = {contract.CONFIG_FILE, contract.RECORDS_FILE, contract.SUMMARY_FILE,
         contract.CHECKPOINTS_DIR}


def _sources():
  for top in ("mmscale", "launch"):
    for dirpath, _, files in os.walk(os.path.join(ROOT, top)):
      for name in sorted(files):
        if name.endswith(".py"):
          yield os.path.join(dirpath, name)


def name_literals(source: str) -> list[tuple[int, str]]:
  """(line, name) of every string constant equal to a contract file name."""
  return [(node.lineno, node.value) for node in ast.walk(ast.parse(source))
          if isinstance(node, ast.Constant) and node.value in NAMES]


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

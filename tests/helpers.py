"""Helpers shared by test files in different folders (tests/conftest.py puts tests/ on sys.path,
since pytest's importlib mode does not)."""

import ast
import csv
import os


def csv_rows(path):
  """The rows of a CSV table (as `mmscale collect` writes it) as dicts of strings, header as keys."""
  with open(path, newline="", encoding="utf-8") as f:
    return list(csv.DictReader(f))


def name_compares(source: str, names) -> list[int]:
  """Lines of `source` comparing something with one of `names` (`x == "late"`, `"byte" != y`): the
  registry checks' way of finding a choice decided by its name instead of by its registry entry."""
  return [node.lineno for node in ast.walk(ast.parse(source))
          if isinstance(node, ast.Compare) and any(
              isinstance(x, ast.Constant) and isinstance(x.value, str) and x.value in names
              for x in [node.left, *node.comparators])]


def name_compares_in(repo: str, tops, names, skip=()) -> list[str]:
  """`path:line` of every name comparison in the .py files under repo/top for each top, files
  named in `skip` left out."""
  found = []
  for top in tops:
    for dirpath, _, files in os.walk(os.path.join(repo, top)):
      for name in sorted(files):
        if name.endswith(".py") and name not in skip:
          path = os.path.join(dirpath, name)
          with open(path, encoding="utf-8") as f:
            found += [f"{os.path.relpath(path, repo)}:{n}" for n in name_compares(f.read(), names)]
  return found

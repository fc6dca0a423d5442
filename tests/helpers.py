"""Helpers shared by test files in different folders (tests/conftest.py puts tests/ on sys.path,
since pytest's importlib mode does not)."""

import csv


def csv_rows(path):
  """The rows of a CSV table (as `mmscale collect` writes it) as dicts of strings, header as keys."""
  with open(path, newline="", encoding="utf-8") as f:
    return list(csv.DictReader(f))

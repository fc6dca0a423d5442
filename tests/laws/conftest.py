"""Fixtures for the laws tests (helpers live in laws_testdata.py, importable from the test modules)."""

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
from laws_testdata import DATA  # noqa: E402
from mmscale.laws import table as tbl  # noqa: E402


@pytest.fixture(scope="session")
def epoch():
  t = tbl.read_table(DATA / "epoch_chinchilla_svg_extracted_data.csv")
  N, C, L = t["Model Size"], t["Training FLOP"], t["loss"]
  return N, C / (6 * N), L


@pytest.fixture(scope="session")
def epoch240(epoch):
  N, D, L = epoch
  keep = np.argsort(L)[:240]  # Epoch's subset: drop the 5 highest losses
  return N[keep], D[keep], L[keep]


@pytest.fixture(scope="session")
def fit240(epoch240):
  from mmscale.laws import chinchilla
  return chinchilla.fit(*epoch240)

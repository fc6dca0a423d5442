"""Data for the laws tests: the published benchmark tables and synthetic draws from known laws."""

import pathlib

import numpy as np

DATA = pathlib.Path(__file__).resolve().parents[1] / "testdata" / "benchmarks"
TRUE = {"E": 1.8, "A": 400.0, "B": 2000.0, "alpha": 0.34, "beta": 0.37}


def synthetic(law=TRUE, sigma=0.005, seed=0, sizes=(1e7, 3e7, 1e8, 3e8, 1e9, 3e9), ratios=(2, 6, 20, 60, 200)):
  """Points on an IsoFLOP-like grid of (N, D) with multiplicative log-normal noise on the loss."""
  rng = np.random.default_rng(seed)
  N, D = (a.ravel() for a in np.meshgrid(np.asarray(sizes, float), np.asarray(ratios, float)))
  D = D * N
  L = law["E"] + law["A"] / N ** law["alpha"] + law["B"] / D ** law["beta"]
  return N, D, L * np.exp(sigma * rng.standard_normal(N.size))

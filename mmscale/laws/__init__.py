"""Scaling-law fitting: Approaches 1-3, derived laws, bootstrap, held-out checks, multimodal laws."""

from mmscale.laws.fit import fit_all
from mmscale.laws.isoflop import approach1, approach2, frontier
from mmscale.laws.table import read_table

__all__ = ["read_table", "fit_all", "approach1", "approach2", "frontier"]

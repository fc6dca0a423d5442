"""mmscale report: the figures of a scaling-law study, drawn from a records table and its fits."""

from mmscale.report.build import build_report

__all__ = ["build_report"]

"""mmscale report: the figures of a scaling-law study, drawn from a records table and its fits.

build_report is imported on first use (PEP 562), so `mmscale report --help` loads no matplotlib
or jax.
"""

__all__ = ["build_report"]


def __getattr__(name):
  if name == "build_report":
    from mmscale.report.build import build_report  # pylint: disable=g-import-not-at-top
    return build_report
  raise AttributeError(f"module 'mmscale.report' has no attribute {name!r}")

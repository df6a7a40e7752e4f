"""Fixtures of the renderer tests; the sample findings live in report_samples.py."""

from report_samples import baseline_audit, mixed_report

__all__ = ["baseline_audit", "mixed_report"]

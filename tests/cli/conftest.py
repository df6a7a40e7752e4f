"""Fixtures of the CLI contract tests; the helpers live in clirun.py."""

from clirun import engine, planted, recorded

__all__ = ["engine", "planted", "recorded"]

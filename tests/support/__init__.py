"""Helpers shared by the tests that drive a real Docker engine (integration tests, benchmarks)."""

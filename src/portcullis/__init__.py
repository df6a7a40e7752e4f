"""Portcullis: measure and prove the security of Docker hosts, images and containers."""

__version__ = "0.1.0"
CIS_BENCHMARK_VERSION = "1.8.0"

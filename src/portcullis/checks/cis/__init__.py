"""CIS Docker Benchmark 1.8.0 controls, one module per section."""

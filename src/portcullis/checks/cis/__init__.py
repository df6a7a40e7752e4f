"""CIS Docker Benchmark 1.8.0 controls, one module per section (section 5: a package, one module per theme)."""

"""Pure rules over facts. Nothing in this package does I/O."""

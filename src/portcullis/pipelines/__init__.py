"""The flows every caller shares (CLI, harden, tests, a service): plain arguments in, a Report or a typed error out."""

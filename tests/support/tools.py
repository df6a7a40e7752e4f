"""Where the PyPI tools of scripts/programs.tsv live: one scratch venv outside the project (install-programs.sh)."""

import os
from pathlib import Path

TOOLS_VENV = Path(os.environ.get("PORTCULLIS_TOOLS_VENV", "/var/tmp/portcullis-tools"))


def tool(name: str) -> Path:
    """The path of a tool installed into the tools venv (it may not exist yet: `make programs` installs it)."""
    return TOOLS_VENV / "bin" / name

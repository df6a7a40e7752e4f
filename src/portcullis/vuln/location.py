"""Where the vulnerability database lives: small enough to ask before deciding to open it."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

DB_FILENAME = "vuln.db"


def default_path() -> Path:
    """The database in the user cache dir (platformdirs); PORTCULLIS_DB overrides it."""
    override = os.environ.get("PORTCULLIS_DB")
    if override:
        return Path(override)
    return Path(platformdirs.user_cache_dir("portcullis")) / DB_FILENAME

"""Shared paths and helpers for the vulnerability tests: the real advisory data in ../shared/vulndata, and
databases built from it."""

from __future__ import annotations

from pathlib import Path

from portcullis.model.vuln import OsRelease
from portcullis.vuln.db import SourceInfo, now_iso, rebuild
from portcullis.vuln.sources import load_path

HERE = Path(__file__).parent
DATA = HERE / "data"
SHARED = HERE.parents[2] / "shared" / "vulndata"
if not SHARED.is_dir():  # the work tree may sit elsewhere; the shared data has one home on this machine
    SHARED = Path("/work/shared/vulndata")
TRACKER_JSON = DATA / "debian-tracker-converted.json"
PYPI_DIR = SHARED / "pypi" / "pypa-advisory-database" / "vulns"
SECDB_DIR = SHARED / "alpine" / "alpine-secdb"
NPM_DIR = DATA / "osv-npm"
BOOKWORM = OsRelease(id="debian", version_id="12", codename="bookworm")


def build_db(path: Path, *inputs: Path) -> Path:
    with rebuild(path) as db:
        for source in inputs:
            for feed in load_path(source):
                db.replace_source(SourceInfo(feed.name, str(source), now_iso()), feed.advisories)
    return path

"""`db update` refreshes the end-of-life tables from endoflife.date's API (v1) and keeps them beside the database.

One GET per product (`/api/v1/products/<product>`), each capped in size and time and validated before anything is
written; the tables are replaced whole and atomically, so a failed refresh leaves the previous ones (or none, and
then the rules use the tables frozen into this release). The API's release fields map onto our tables as:
eolFrom -> end (the last day of security fixes every user can install), eoasFrom -> regular_end (Debian: the end
of regular security support before LTS), eoesFrom -> paid_until (Ubuntu ESM, RHEL ELS).
"""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from portcullis.model.facts import EolTables
from portcullis.vuln.db import now_iso
from portcullis.vuln.download import fetch
from portcullis.vuln.sources import FeedError

API = "https://endoflife.date/api/v1/products/"
# endoflife.date's product -> the os-release ID our table is keyed by
OS_PRODUCTS = {
    "debian": "debian",
    "ubuntu": "ubuntu",
    "alpine": "alpine",
    "rhel": "rhel",
    "centos": "centos",
    "rocky-linux": "rocky",
    "almalinux": "almalinux",
    "oracle-linux": "ol",
    "amazon-linux": "amzn",
    "fedora": "fedora",
}
ENGINE_PRODUCT = "docker-engine"
MAX_PRODUCT_BYTES = 2 * 1024 * 1024  # a product's whole history is tens of KB (debian: ~15 KB in 2025)
PRODUCT_DEADLINE = 60.0  # seconds one product may take
_RELEASE = re.compile(r"\d+(\.\d+)*")  # the release names our tables can match (12, 22.04, 3.19, 20.10)


class EolTableError(Exception):
    """A product's answer that cannot be used: the previous tables are kept."""


def eol_path(db_path: Path) -> Path:
    """Where the refreshed tables of the database at `db_path` live: beside it, named after it."""
    return db_path.with_name(db_path.name + ".eol.json")


def load(db_path: Path) -> EolTables | None:
    """The tables beside the database; None when there are none. A damaged file raises EolTableError."""
    path = eol_path(db_path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise EolTableError(f"{path}: cannot read the end-of-life tables: {exc}") from None
    try:
        return EolTables.model_validate_json(text)
    except ValidationError as exc:
        raise EolTableError(f"{path}: not end-of-life tables ({exc.error_count()} errors); rerun `db update`") from None


def save(tables: EolTables, db_path: Path) -> Path:
    """Write the tables beside the database, atomically (readers see the old file or the new, never half)."""
    path = eol_path(db_path)
    work = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        work.write_text(tables.model_dump_json(indent=1), encoding="utf-8")
        os.replace(work, path)
    finally:
        work.unlink(missing_ok=True)
    return path


def _day(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise EolTableError(f"{where}: a date field holds {type(value).__name__}, not a string")
    try:
        return date.fromisoformat(value[:10]).isoformat()
    except ValueError:
        raise EolTableError(f"{where}: {value[:40]!r} is not a date") from None


def releases(document: Any, url: str) -> list[dict[str, Any]]:
    """The `result.releases` of a v1 product answer, each with a string name and a boolean isEol."""
    result = document.get("result") if isinstance(document, dict) else None
    found = result.get("releases") if isinstance(result, dict) else None
    if not isinstance(found, list) or not found:
        raise EolTableError(f"{url}: no result.releases list (not an endoflife.date v1 product answer)")
    for release in found:
        if not (isinstance(release, dict) and isinstance(release.get("name"), str)):
            raise EolTableError(f"{url}: a release without a name")
        if not isinstance(release.get("isEol"), bool):
            raise EolTableError(f"{url}: release {release['name'][:40]!r} has no boolean isEol")
    return found


def os_releases(found: Iterable[dict[str, Any]], url: str) -> dict[str, dict[str, Any]]:
    """Our table's rows for one distribution; a release with no end date announced is left out (unknown, so the
    rule skips it rather than calling it supported)."""
    rows: dict[str, dict[str, Any]] = {}
    for release in found:
        where = f"{url} release {release['name'][:40]!r}"
        end = _day(release.get("eolFrom"), where)
        if end is None or not _RELEASE.fullmatch(release["name"]):
            continue
        row: dict[str, Any] = {"end": end}
        codename = release.get("codename")
        if isinstance(codename, str) and codename:
            row["name"] = codename.lower()
        if (regular := _day(release.get("eoasFrom"), where)) and regular < end:
            row["regular_end"] = regular
        if (paid := _day(release.get("eoesFrom"), where)) and paid > end:
            row["paid_until"] = paid
        rows[release["name"]] = row
    if not rows:
        raise EolTableError(f"{url}: no release with an end-of-life date")
    return rows


def engine_lines(found: Iterable[dict[str, Any]], url: str) -> list[dict[str, Any]]:
    """engine_releases.yaml's lines from the docker-engine product, newest first as the API lists them."""
    lines = [
        {
            "line": release["name"],
            "end_of_life": release["isEol"],
            "since": _day(release.get("eolFrom"), f"{url} release {release['name'][:40]!r}"),
            "note": "",
        }
        for release in found
        if _RELEASE.fullmatch(release["name"])
    ]
    if not lines:
        raise EolTableError(f"{url}: no release line named MAJOR or MAJOR.MINOR")
    return lines


def _get(url: str, deadline: float) -> Any:
    body = io.BytesIO()
    try:
        if fetch(url, body, limit=MAX_PRODUCT_BYTES, deadline=deadline) is None:
            raise EolTableError(f"{url}: answered 304 to an unconditional request")
    except FeedError as exc:
        raise EolTableError(str(exc)) from None
    try:
        return json.loads(body.getvalue())
    except (ValueError, RecursionError) as exc:
        raise EolTableError(f"{url}: not JSON: {exc}") from None


def refresh(db_path: Path, base: str = API, deadline: float = PRODUCT_DEADLINE) -> EolTables:
    """Fetch every product from `base`, validate it all, then replace the tables beside the database; on any
    error (EolTableError) nothing is written."""
    base = base if base.endswith("/") else base + "/"
    distributions = {
        distribution: os_releases(releases(_get(base + product, deadline), base + product), base + product)
        for product, distribution in OS_PRODUCTS.items()
    }
    engine_url = base + ENGINE_PRODUCT
    lines = engine_lines(releases(_get(engine_url, deadline), engine_url), engine_url)
    tables = EolTables(origin=base, fetched_at=now_iso(), distributions=distributions, engine_lines=lines)
    save(tables, db_path)
    return tables

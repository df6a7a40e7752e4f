"""Moving a database to an air-gapped host: `db export` writes a tar bundle (the SQLite file plus a manifest with
its SHA-256 and size); `db import` checks the manifest before anything replaces the local database. Also the
import of upstream feed files (tracker JSON, OSV files/directories/zips, secdb documents)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import tarfile
from pathlib import Path
from typing import Any

from portcullis.vuln.db import DatabaseError, SourceInfo, VulnDB, now_iso, rebuild, upgrade
from portcullis.vuln.location import DB_FILENAME
from portcullis.vuln.sources import Feed, FeedError, load_path

BUNDLE_FORMAT = "portcullis-vulndb-bundle/1"
MANIFEST = "manifest.json"


class BundleError(Exception):
    """A bundle that is not ours, incomplete or tampered with."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def export_bundle(db_path: Path, out: Path) -> dict[str, Any]:
    """Write a gzip tar holding a consistent copy of the database and its checksum manifest."""
    with VulnDB.open(db_path) as db:
        sources = [vars(s) for s in db.sources()]
        snapshot = out.with_name(f".{out.name}.{os.getpid()}.db")
        try:
            target = sqlite3.connect(snapshot)
            db.conn.backup(target)  # a consistent copy even if another process reads the database
            target.close()
            manifest = {
                "format": BUNDLE_FORMAT,
                "created_at": now_iso(),
                "schema_version": db.meta("schema_version"),
                "files": {DB_FILENAME: {"sha256": _sha256(snapshot), "size": snapshot.stat().st_size}},
                "sources": sources,
            }
            work = out.with_name(f".{out.name}.{os.getpid()}.tmp")
            with tarfile.open(work, "w:gz") as tar:
                tar.add(snapshot, arcname=DB_FILENAME)
                data = json.dumps(manifest, indent=2).encode()
                info = tarfile.TarInfo(MANIFEST)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            os.replace(work, out)
        finally:
            snapshot.unlink(missing_ok=True)
    return manifest


def is_bundle(path: Path) -> bool:
    if not path.is_file() or not tarfile.is_tarfile(path):
        return False
    try:
        with tarfile.open(path) as tar:
            return MANIFEST in tar.getnames()
    except (tarfile.TarError, OSError, EOFError):
        return False


def import_bundle(bundle: Path, db_path: Path) -> dict[str, Any]:
    """Verify the manifest checksums and the database itself, then swap it in; the old one stays on any error."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    work = db_path.with_name(f".{db_path.name}.{os.getpid()}.import")
    try:
        try:
            with tarfile.open(bundle) as tar:
                manifest = json.loads(tar.extractfile(MANIFEST).read())  # type: ignore[union-attr]
                if manifest.get("format") != BUNDLE_FORMAT:
                    raise BundleError(f"{bundle}: not a portcullis database bundle ({manifest.get('format')!r})")
                expected = manifest["files"][DB_FILENAME]
                member = tar.getmember(DB_FILENAME)
                if not member.isfile():
                    raise BundleError(f"{bundle}: {DB_FILENAME} is not a regular file")
                source = tar.extractfile(member)
                assert source is not None
                with work.open("wb") as handle:
                    shutil.copyfileobj(source, handle)
        except (tarfile.TarError, KeyError, json.JSONDecodeError, EOFError, OSError) as exc:
            raise BundleError(f"{bundle}: unreadable bundle: {exc}") from None
        size, digest = work.stat().st_size, _sha256(work)
        if size != expected.get("size") or digest != expected.get("sha256"):
            raise BundleError(f"{bundle}: {DB_FILENAME} does not match the manifest checksum (tampered or corrupt)")
        try:
            upgrade(work)  # a bundle exported by an earlier release: carried to the current schema
            VulnDB.open(work).close()
        except (DatabaseError, sqlite3.DatabaseError) as exc:
            raise BundleError(f"{bundle}: {exc}") from None
        os.replace(work, db_path)
        return dict(manifest)
    finally:
        work.unlink(missing_ok=True)


def import_feeds(path: Path, db_path: Path) -> list[SourceInfo]:
    """Load upstream feed files from `path` into the database; each feed replaces the source it names."""
    feeds: list[Feed] = load_path(path)
    if not any(feed.advisories for feed in feeds):
        raise FeedError(f"{path}: no advisories found")
    done = []
    with rebuild(db_path) as db:
        for feed in feeds:
            done.append(db.replace_source(SourceInfo(feed.name, str(path.resolve()), now_iso()), feed.advisories))
    return done

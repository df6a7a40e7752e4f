"""Moving a database to an air-gapped host: `db export` writes a tar bundle (the SQLite file plus a manifest with
its SHA-256 and size); `db import` checks the manifest before anything replaces the local database. Also the
import of upstream feed files (tracker JSON, OSV files/directories/zips, secdb documents). A bundle also carries the
end-of-life tables `db update` refreshed, when the database has them, and the import puts them beside it."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from portcullis.model.facts import EolTables
from portcullis.vuln.db import (
    DatabaseError,
    SourceInfo,
    VulnDB,
    check_database,
    failure,
    now_iso,
    rebuild,
    upgrade,
    work_file,
    writing,
)
from portcullis.vuln.eol_refresh import EolTableError, eol_path, save
from portcullis.vuln.eol_refresh import load as load_eol
from portcullis.vuln.location import DB_FILENAME
from portcullis.vuln.sources import Feed, FeedError, load_path

BUNDLE_FORMAT = "portcullis-vulndb-bundle/1"
EOL_MEMBER = "eol.json"  # optional: bundles written before the tables were refreshable have none
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
    """Write a gzip tar holding a consistent copy of the database and its checksum manifest; a damaged database
    is refused rather than spread to other hosts."""
    check_database(db_path)
    try:
        tables = load_eol(db_path)
    except EolTableError as exc:
        raise DatabaseError(f"{exc}; remove it or rerun `db update` before exporting") from None
    eol_data = tables.model_dump_json(indent=1).encode() if tables else None
    with VulnDB.open(db_path) as db:
        sources = [vars(s) for s in db.sources()]
        snapshot = out.with_name(f".{out.name}.{os.getpid()}.db")
        try:
            target = sqlite3.connect(snapshot)
            db.conn.backup(target)  # a consistent copy even if another process reads the database
            target.close()
            files: dict[str, dict[str, Any]] = {
                DB_FILENAME: {"sha256": _sha256(snapshot), "size": snapshot.stat().st_size}
            }
            if eol_data is not None:
                files[EOL_MEMBER] = {"sha256": hashlib.sha256(eol_data).hexdigest(), "size": len(eol_data)}
            manifest: dict[str, Any] = {
                "format": BUNDLE_FORMAT,
                "created_at": now_iso(),
                "schema_version": db.meta("schema_version"),
                "files": files,
                "sources": sources,
            }
            work = out.with_name(f".{out.name}.{os.getpid()}.tmp")
            with tarfile.open(work, "w:gz") as tar:
                tar.add(snapshot, arcname=DB_FILENAME)
                data = json.dumps(manifest, indent=2).encode()
                info = tarfile.TarInfo(MANIFEST)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                if eol_data is not None:
                    info = tarfile.TarInfo(EOL_MEMBER)
                    info.size = len(eol_data)
                    tar.addfile(info, io.BytesIO(eol_data))
            os.replace(work, out)
        finally:
            snapshot.unlink(missing_ok=True)
    return manifest


def is_bundle(path: Path) -> bool:
    if not path.is_file() or not tarfile.is_tarfile(path):
        return False
    try:
        with tarfile.open(path) as tar:
            return MANIFEST in _members(tar, path)
    except (tarfile.TarError, OSError, EOFError, zlib.error, BundleError):
        return False


# A bundle holds two members, read with these caps before anything is read whole (a 1 GiB manifest, a bomb).
MAX_MEMBERS = 8
MAX_MANIFEST_BYTES = 1024 * 1024  # the manifest lists the sources: a few KB
MAX_DATABASE_BYTES = 8 * 1024 * 1024 * 1024  # every feed together is a few hundred MB


def _members(tar: tarfile.TarFile, bundle: Path) -> dict[str, tarfile.TarInfo]:
    """The members by name, reading no more than MAX_MEMBERS headers (tarfile would list every one it finds)."""
    members: dict[str, tarfile.TarInfo] = {}
    while (member := tar.next()) is not None:
        if len(members) == MAX_MEMBERS:
            raise BundleError(f"{bundle}: more than {MAX_MEMBERS} members, not a portcullis database bundle")
        members[member.name] = member
    return members


def _read_manifest(tar: tarfile.TarFile, member: tarfile.TarInfo | None, bundle: Path) -> dict[str, Any]:
    if member is None or not member.isfile():
        raise BundleError(f"{bundle}: no {MANIFEST} file in the bundle")
    if member.size > MAX_MANIFEST_BYTES:
        raise BundleError(f"{bundle}: {MANIFEST} is {member.size} bytes, over the {MAX_MANIFEST_BYTES}-byte limit")
    handle = tar.extractfile(member)
    assert handle is not None  # a regular file
    try:
        manifest = json.loads(handle.read(MAX_MANIFEST_BYTES + 1))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise BundleError(f"{bundle}: {MANIFEST} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise BundleError(f"{bundle}: not a portcullis database bundle ({found!r})")
    files = manifest.get("files")
    entry = files.get(DB_FILENAME) if isinstance(files, dict) else None
    if not (
        isinstance(entry, dict)
        and isinstance(entry.get("sha256"), str)
        and type(entry.get("size")) is int
        and isinstance(manifest.get("sources", []), list)  # earlier releases wrote no list
    ):
        raise BundleError(f"{bundle}: {MANIFEST} lacks files.{DB_FILENAME}.sha256/size, or a field has the wrong type")
    return manifest


def _sources(path: Path) -> int:
    with VulnDB.open(path) as db:
        return len(db.sources())


def import_bundle(bundle: Path, db_path: Path) -> dict[str, Any]:
    """Verify the manifest checksums and the database itself, then swap it in; the old one stays on any error.

    A bundle holding no sources never replaces a database that holds some.
    """
    with writing(db_path):
        work = work_file(db_path, "import")
        try:
            try:
                manifest, tables = _extract(bundle, work)
            except (tarfile.TarError, EOFError, zlib.error) as exc:
                raise BundleError(f"{bundle}: unreadable bundle: {exc}") from None
            except OSError as exc:
                raise failure(db_path, exc) from None
            if _sha256(work) != manifest["files"][DB_FILENAME]["sha256"]:
                raise BundleError(f"{bundle}: {DB_FILENAME} does not match the manifest checksum (tampered or corrupt)")
            try:
                upgrade(work)  # a bundle exported by an earlier release: carried to the current schema
                check_database(work, f"the bundle's {DB_FILENAME}")
                if _sources(work) == 0 and db_path.is_file() and _sources(db_path) > 0:
                    raise BundleError(f"{bundle}: the bundle holds no sources; the database at {db_path} is kept")
            except (DatabaseError, sqlite3.DatabaseError) as exc:
                raise BundleError(f"{bundle}: {exc}") from None
            try:
                os.replace(work, db_path)
                if tables is not None:
                    save(tables, db_path)
                else:  # the bundle's database comes without refreshed tables: the built-in ones apply again
                    eol_path(db_path).unlink(missing_ok=True)
            except OSError as exc:
                raise failure(db_path, exc) from None
            return manifest
        finally:
            work.unlink(missing_ok=True)


def _extract(bundle: Path, work: Path) -> tuple[dict[str, Any], EolTables | None]:
    """The manifest and the end-of-life tables (None: the bundle has none), with the database copied to `work` once
    its size is the manifest's."""
    with tarfile.open(bundle) as tar:
        members = _members(tar, bundle)
        manifest = _read_manifest(tar, members.get(MANIFEST), bundle)
        expected = manifest["files"][DB_FILENAME]["size"]
        member = members.get(DB_FILENAME)
        if member is None or not member.isfile():
            raise BundleError(f"{bundle}: {DB_FILENAME} is missing or not a regular file")
        if member.size != expected or member.size > MAX_DATABASE_BYTES:
            raise BundleError(
                f"{bundle}: {DB_FILENAME} is {member.size} bytes; the manifest says {expected}"
                f" (at most {MAX_DATABASE_BYTES})"
            )
        source = tar.extractfile(member)
        assert source is not None  # a regular file
        with work.open("wb") as handle:
            shutil.copyfileobj(source, handle)
        return manifest, _eol_tables(tar, members.get(EOL_MEMBER), manifest, bundle)


MAX_EOL_BYTES = 4 * 1024 * 1024  # the tables are tens of KB


def _eol_tables(
    tar: tarfile.TarFile, member: tarfile.TarInfo | None, manifest: dict[str, Any], bundle: Path
) -> EolTables | None:
    """The bundle's end-of-life tables, checked against the manifest like the database."""
    entry = manifest["files"].get(EOL_MEMBER)
    if member is None and entry is None:
        return None
    if member is None or not member.isfile() or not isinstance(entry, dict):
        raise BundleError(f"{bundle}: {EOL_MEMBER} and the manifest disagree (one lists it, the other lacks it)")
    if member.size != entry.get("size") or member.size > MAX_EOL_BYTES:
        raise BundleError(f"{bundle}: {EOL_MEMBER} is {member.size} bytes; the manifest says {entry.get('size')}")
    handle = tar.extractfile(member)
    assert handle is not None  # a regular file
    data = handle.read(MAX_EOL_BYTES + 1)
    if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
        raise BundleError(f"{bundle}: {EOL_MEMBER} does not match the manifest checksum (tampered or corrupt)")
    try:
        return EolTables.model_validate_json(data)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise BundleError(f"{bundle}: {EOL_MEMBER} holds no end-of-life tables: {exc}") from None


@dataclass
class Imported:
    """One source after `import_feeds`: its new counts, and what it held before (None: it is new)."""

    info: SourceInfo
    files: int  # advisories in the imported files
    before: int | None
    replaced: int  # advisories the import took the place of: the whole source with `replace`, else the same ids


def import_feeds(path: Path, db_path: Path, replace: bool = False) -> list[Imported]:
    """Load upstream feed files from `path` into the database.

    By default the files are merged into the sources they name: an advisory in the files takes the place of the
    one with its id, every other advisory is kept. With `replace` each named source is replaced whole.
    """
    feeds: list[Feed] = load_path(path)
    if not any(feed.advisories for feed in feeds):
        raise FeedError(f"{path}: no advisories found")
    done = []
    with rebuild(db_path) as db:
        for feed in feeds:
            known = db.source(feed.name)
            ids = {adv.id for adv in feed.advisories}
            info = SourceInfo(feed.name, str(path.resolve()), now_iso())
            advisories = feed.advisories
            replaced = known.advisories if known and replace else 0
            if known and not replace:
                old = db.source_advisories(feed.name)
                kept = [adv for adv in old if adv.id not in ids]
                replaced = len(old) - len(kept)
                # the age is the oldest content's; a new origin makes the next `db update` fetch it whole again
                info = SourceInfo(feed.name, f"{known.origin} + {info.origin}", known.fetched_at)
                advisories = kept + advisories
            info = db.replace_source(info, advisories)
            done.append(Imported(info, len(ids), known.advisories if known else None, replaced))
    return done

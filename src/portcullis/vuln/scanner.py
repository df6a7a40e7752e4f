"""Vulnerability findings for many images in one process: one open database, matched and reported once per package.

`portcullis image --all` (and `image REF REF …`) judges image after image against the same database file, and
images that share base layers share most of their packages. A Scanner keeps, for one open database, the Matcher's
memo (each distinct installed version decided once) and the parts of each finding that do not depend on the image
(`FindingParts`, built once per package record and advisory): a package already seen in another image costs a
dictionary lookup and the copy of its findings for this image's target.

`shared_scanner(path)` hands out the process's Scanner for a database file. It is keyed by the file's identity
(device, inode, size, modification time): `db update` and `db import` swap a new file in, so a changed database is
opened afresh with an empty memo, never matched from the old one's.
"""

from __future__ import annotations

import contextlib
import operator
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

from portcullis.model.findings import Finding, Target
from portcullis.model.layers import LayerRef
from portcullis.model.vuln import OsRelease, Package
from portcullis.vuln.db import VulnDB
from portcullis.vuln.findings import FindingParts, finding_parts, problem_finding
from portcullis.vuln.match import OS_ECOSYSTEMS, Matcher, gc_paused, in_matching_order, undecided, unmatched

_PACKAGE_FIELDS = operator.attrgetter(*(f for f in Package.model_fields if f != "layer"))
_LAYER_FIELDS = operator.attrgetter(*LayerRef.model_fields)
_RELEASE_FIELDS = operator.attrgetter(*OsRelease.model_fields)
_MEMO_LIMIT = 200_000  # package records kept per Scanner before its memo starts over


def _record(package: Package) -> tuple[object, ...]:
    """Every field of the package record, hashable (LayerRef is not): equal records give equal findings."""
    layer = package.layer
    return _PACKAGE_FIELDS(package), None if layer is None else _LAYER_FIELDS(layer)


class _Reported(NamedTuple):
    """What a scan reports for one package record: its findings' parts and the advisories it could not decide."""

    parts: tuple[FindingParts, ...]
    problems: tuple[str, ...]


_NOTHING = _Reported((), ())  # what most package records report: shared


class Scanner:
    """Findings against one open database, memoised for the life of the object (see the module docstring)."""

    def __init__(self, db: VulnDB) -> None:
        self.matcher = Matcher(db)
        self._reported: dict[tuple[object, tuple[object, ...]], _Reported] = {}

    def scan(self, packages: Sequence[Package], release: OsRelease | None, target: Target) -> list[Finding]:
        """One finding per (package, advisory) that applies, ordered by package name, version and title, then one
        `error` finding per package that could not be matched."""
        with gc_paused():  # the work's garbage is freed inside: only what is kept meets the collector after
            return self._scan(packages, release, target)

    def _scan(self, packages: Sequence[Package], release: OsRelease | None, target: Target) -> list[Finding]:
        memo = self._reported
        if len(memo) > _MEMO_LIMIT:
            memo.clear()
        release_key = None if release is None else _RELEASE_FIELDS(release)
        keys = [(release_key, _record(p)) for p in packages]
        missing = [i for i, key in enumerate(keys) if key not in memo]
        if missing:
            self._report([packages[i] for i in missing], [keys[i] for i in missing], release)
        problems = [unmatched(p) for p in packages if p.ecosystem in OS_ECOSYSTEMS and release is None]
        collected: list[tuple[FindingParts, Finding]] = []
        for reported in in_matching_order(packages, [memo.get(key) for key in keys]):
            if reported.problems:
                problems.extend(reported.problems)
            collected.extend((part, part.finding(target)) for part in reported.parts)
        collected.sort(key=lambda pair: pair[0].order)
        findings = [finding for _, finding in collected]
        findings.extend(problem_finding(p, target) for p in problems)
        return findings

    def _report(
        self,
        packages: list[Package],
        keys: list[tuple[object, tuple[object, ...]]],
        release: OsRelease | None,
    ) -> None:
        """Match the packages not seen yet and keep what each one reports (none for a package that cannot be
        matched: it is reported by `scan` every time)."""
        for package, key, verdict in zip(packages, keys, self.matcher.verdicts(packages, release), strict=True):
            if verdict is None:
                continue
            if not verdict.hits and not verdict.undecided:
                self._reported[key] = _NOTHING
                continue
            parts = tuple(
                finding_parts(
                    package,
                    hit.advisory_id,
                    hit.aliases,
                    hit.summary,
                    hit.fix_state,
                    hit.fixed_version,
                    hit.vendor,
                    hit.vendor_severity,
                    hit.cvss,
                )
                for hit in verdict.hits
            )
            self._reported[key] = _Reported(parts, tuple(undecided(package, verdict)))


_shared_lock = threading.Lock()
_shared: dict[Path, tuple[tuple[int, ...], Scanner]] = {}


def _identity(path: Path) -> tuple[int, ...]:
    st = path.stat()
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


@contextlib.contextmanager
def shared_scanner(path: Path) -> Iterator[Scanner]:
    """The process's Scanner for the database at `path`, held by this thread for the block. Raises DatabaseError
    when the file cannot be opened as a database. A block that raises drops the Scanner: its memo may be half made."""
    with _shared_lock:
        try:
            identity = _identity(path)
        except OSError:
            identity = ()
        kept = _shared.get(path)
        if kept is not None and kept[0] != identity:
            _forget(path)
            kept = None
        if kept is None:
            kept = identity, Scanner(VulnDB.open(path, any_thread=True))
            _shared[path] = kept
        try:
            yield kept[1]
        except BaseException:
            _forget(path)
            raise


def _forget(path: Path) -> None:
    _, scanner = _shared.pop(path)
    scanner.matcher.db.close()


def forget_shared() -> None:
    """Close every shared database and drop its memo (a service that wants its memory back; benchmarks)."""
    with _shared_lock:
        for path in list(_shared):
            _forget(path)

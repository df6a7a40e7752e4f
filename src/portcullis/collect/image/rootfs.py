"""A root filesystem directory, walked without following a single symlink (they are recorded, never opened).

Every name is opened relative to its directory's descriptor, one open directory per level of the walk: no path
grows past PATH_MAX and no depth is too deep. What cannot be read is recorded as unread, never skipped in
silence, so the rules that needed it cannot pass.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from pathlib import Path
from typing import Any

from portcullis.collect.image import secrets
from portcullis.collect.image.errors import ImageError, Limits
from portcullis.collect.image.layer import DIR, FILE, OTHER, SYMLINK, Entry, LayerScan

_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def scan_rootfs(root: Path, limits: Limits) -> LayerScan:
    scan = LayerScan()
    identity = hashlib.sha256()  # a stable id for the tree: its paths, modes and sizes
    try:
        top = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise ImageError(f"cannot open {root}: {exc.strerror}") from None
    # Depth first, each level's directory descriptor and the subdirectories it has left to visit (last name first,
    # the order the tree's identity has always been hashed in).
    stack = [(top, "", _list(top, "", scan, identity, limits))]
    try:
        while stack:
            fd, relative, subdirs = stack[-1]
            if not subdirs:
                os.close(fd)
                stack.pop()
                continue
            name = subdirs.pop()
            path = f"{relative}/{name}" if relative else name
            try:
                child = os.open(name, _DIRECTORY, dir_fd=fd)
            except OSError as exc:
                scan.unread.append(("/" + path, f"unreadable directory ({exc.strerror})"))
                continue
            stack.append((child, path, _list(child, path, scan, identity, limits)))
    finally:
        for fd, _, _ in stack:
            os.close(fd)
    scan.diff_id = "sha256:" + identity.hexdigest()
    return scan


def _list(fd: int, relative: str, scan: LayerScan, identity: Any, limits: Limits) -> list[str]:
    """Record one directory's entries; returns the names of its subdirectories."""
    try:
        with os.scandir(fd) as listing:
            children = sorted(listing, key=lambda d: d.name)
    except OSError as exc:
        scan.unread.append(("/" + relative, f"unreadable directory ({exc.strerror})"))
        return []
    subdirs = []
    for child in children:
        path = f"{relative}/{child.name}" if relative else child.name
        try:
            info = child.stat(follow_symlinks=False)
        except OSError as exc:
            scan.unread.append(("/" + path, f"cannot stat ({exc.strerror})"))
            continue
        mode = stat.S_IMODE(info.st_mode)
        identity.update(f"{path}\0{info.st_mode}\0{info.st_size}\n".encode("utf-8", "surrogateescape"))
        if stat.S_ISLNK(info.st_mode):
            try:
                link = os.readlink(child.name, dir_fd=fd)
            except OSError as exc:  # replaced since it was listed
                scan.unread.append(("/" + path, f"unreadable symlink ({exc.strerror})"))
                continue
            scan.entries.append(Entry(path, SYMLINK, mode, link=link))
        elif stat.S_ISDIR(info.st_mode):
            scan.entries.append(Entry(path, DIR, mode))
            subdirs.append(child.name)
        elif stat.S_ISREG(info.st_mode):
            secret = secrets.path_kind(path)
            if info.st_size <= limits.content_file_bytes:
                try:
                    head = _head(fd, child.name, limits)
                except OSError as exc:
                    scan.unread.append(("/" + path, f"unreadable file ({exc.strerror})"))
                else:
                    secret = secrets.classify(path, head) if head is not None else secret
            scan.entries.append(Entry(path, FILE, mode, info.st_size, secret=secret))
            scan.size += info.st_size
        elif stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode):
            scan.unsafe.append(("/" + path, "device node"))
        else:
            scan.entries.append(Entry(path, OTHER, mode))
        if len(scan.entries) > limits.max_entries:
            raise ImageError(f"the directory holds more than {limits.max_entries} entries")
    return subdirs


def _head(fd: int, name: str, limits: Limits) -> bytes | None:
    """The first bytes of a file; None when it is no longer a regular file (swapped since it was listed)."""
    # O_NOFOLLOW, O_NONBLOCK: never follow a swapped-in symlink, never wait on a swapped-in FIFO.
    try:
        file = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return None
        raise
    with os.fdopen(file, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None
        return handle.read(limits.content_read_bytes)

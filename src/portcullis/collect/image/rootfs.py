"""A root filesystem directory, walked without following a single symlink (they are recorded, never opened)."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from portcullis.collect.image import secrets
from portcullis.collect.image.errors import ImageError, Limits
from portcullis.collect.image.layer import DIR, FILE, OTHER, SYMLINK, Entry, LayerScan


def scan_rootfs(root: Path, limits: Limits) -> LayerScan:
    scan = LayerScan()
    identity = hashlib.sha256()  # a stable id for the tree: its paths, modes and sizes
    stack = [""]
    while stack:
        relative = stack.pop()
        directory = os.path.join(root, relative) if relative else str(root)
        try:
            with os.scandir(directory) as listing:
                children = sorted(listing, key=lambda d: d.name)
        except OSError as exc:
            scan.unsafe.append(("/" + relative, f"unreadable directory ({exc.strerror})"))
            continue
        for child in children:
            path = f"{relative}/{child.name}" if relative else child.name
            try:
                info = child.stat(follow_symlinks=False)
            except OSError:
                continue
            mode = stat.S_IMODE(info.st_mode)
            identity.update(f"{path}\0{info.st_mode}\0{info.st_size}\n".encode("utf-8", "surrogateescape"))
            if stat.S_ISLNK(info.st_mode):
                scan.entries.append(Entry(path, SYMLINK, mode, link=os.readlink(child.path)))
            elif stat.S_ISDIR(info.st_mode):
                scan.entries.append(Entry(path, DIR, mode))
                stack.append(path)
            elif stat.S_ISREG(info.st_mode):
                head = _head(child.path, limits) if info.st_size <= limits.content_file_bytes else None
                secret = secrets.classify(path, head) if head is not None else secrets.path_kind(path)
                scan.entries.append(Entry(path, FILE, mode, info.st_size, secret=secret))
                scan.size += info.st_size
            elif stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode):
                scan.unsafe.append(("/" + path, "device node"))
            else:
                scan.entries.append(Entry(path, OTHER, mode))
            if len(scan.entries) > limits.max_entries:
                raise ImageError(f"{root} holds more than {limits.max_entries} entries")
    scan.diff_id = "sha256:" + identity.hexdigest()
    return scan


def _head(path: str, limits: Limits) -> bytes | None:
    try:  # O_NOFOLLOW: the entry was a regular file a moment ago; never follow a swapped-in symlink
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None
        return handle.read(limits.content_read_bytes)

"""Opening a file named by the user or by hostile content: regular files only, and never a wait."""

from __future__ import annotations

import os
import stat
from typing import BinaryIO

from portcullis.collect import CollectionError


def open_regular(path: str | os.PathLike[str], error: type[CollectionError] = CollectionError) -> BinaryIO:
    """Open for reading; a FIFO, socket, device or directory is refused with `error`, one line.

    Opening a FIFO blocks until a writer comes and opening some devices acts on them: stat first, then open
    without blocking and check again what was opened, in case the path was swapped in between.
    """
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise error(f"{os.fspath(path)} is not a regular file")
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise error(f"cannot open {os.fspath(path)}: {exc.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise error(f"{os.fspath(path)} is not a regular file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")

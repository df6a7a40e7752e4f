"""Byte streams for the layer reader: hashing, counting, decompression chosen by magic bytes."""

from __future__ import annotations

import hashlib
import io
import os
import sys
import tarfile
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import IO, Any, Protocol, cast

from portcullis.collect.image.errors import ImageError

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
CHUNK = 1024 * 1024
MAX_PENDING_CHUNKS = 6  # chunks queued for hashing: bounds the memory the hashing thread may hold back
RING_SIZE = MAX_PENDING_CHUNKS + 2  # reused chunk buffers: the pending ones, the reader's current one and the next

# sha256 releases the GIL on large buffers, so hashing on one background thread overlaps with the tar walk on
# the main one. One worker keeps every hash's updates in order. Keyed by process: a forked child (layer_pool)
# inherits the executor but not its thread, so it starts its own.
_HASHING: dict[int, ThreadPoolExecutor] = {}


def _hashing_thread() -> ThreadPoolExecutor:
    pid = os.getpid()
    executor = _HASHING.get(pid)
    if executor is None:
        executor = _HASHING[pid] = ThreadPoolExecutor(max_workers=1, thread_name_prefix="portcullis-sha256")
    return executor


try:  # ISA-L's gzip is several times faster than zlib's on the hot path
    from isal import igzip as _gzip_module
except ImportError:  # pragma: no cover - isal is a declared dependency; zlib is the fallback
    import gzip as _gzip_module  # type: ignore[no-redef]

try:
    from compression import zstd as _zstd_module  # type: ignore[import-not-found]  # Python 3.14
except ImportError:
    from backports import zstd as _zstd_module


def gzip_implementation() -> str:
    return _gzip_module.__name__


class Readable(Protocol):
    """What the layer readers need from a source: sized reads returning new bytes objects (b"" at the end)."""

    def read(self, size: int = -1, /) -> bytes: ...


class _ReadBased(io.RawIOBase):
    """A raw reader defined by `read`: readinto (what BufferedReader and the decompressors call) goes through it."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class HashingReader(_ReadBased):
    """Pass bytes through while hashing and counting them, stopping at an optional byte limit.

    It also lets tarfile treat the stream as seekable: seeks go forward by reading (so every byte is
    hashed) and never back. Hashing happens on a background thread, at most MAX_PENDING_CHUNKS behind.
    """

    def __init__(self, inner: Readable, limit: int | None = None, what: str = "stream", hashing: bool = True) -> None:
        self._inner = inner
        self._hash = hashlib.sha256() if hashing else None
        self.limit = limit  # public: set once the stream turns out to be the uncompressed tar
        self._what = what
        self._pending: deque[Future[None]] = deque()
        self._ring: list[memoryview] = []
        self._chunks = 0
        self.count = 0

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.count

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = offset if whence == io.SEEK_SET else self.count + offset
        if whence not in (io.SEEK_SET, io.SEEK_CUR) or target < self.count:
            raise OSError("the layer is read in one forward pass; it cannot seek back")
        while self.count < target and self.read(min(CHUNK, target - self.count)):
            pass
        return self.count

    def read(self, size: int = -1) -> bytes:
        data = self._inner.read(size if size is not None and size >= 0 else CHUNK)
        self._passed(data)
        return data

    def next_chunk(self) -> bytes | memoryview:
        """The next chunk of up to CHUNK bytes; b"" at the end.

        When the inner stream can fill a buffer, the chunk is a view of one of RING_SIZE reused buffers rather than a
        new bytes object: a fresh megabyte per chunk costs the kernel a page fault per page. The buffer is filled
        again RING_SIZE chunks later, so a caller keeps only the latest chunk and copies what it needs from it.
        """
        readinto = getattr(self._inner, "readinto", None)
        if readinto is None or self._hash is None:
            return self.read(CHUNK)
        if not self._ring:
            self._ring = [memoryview(bytearray(CHUNK)) for _ in range(RING_SIZE)]
        # This buffer last held the chunk RING_SIZE back; at most MAX_PENDING_CHUNKS hashes are pending and they
        # run in order, so that chunk's hash has finished.
        buffer = self._ring[self._chunks % RING_SIZE]
        self._chunks += 1
        got = readinto(buffer) or 0
        data = buffer[:got]
        self._passed(data)
        return data

    def _passed(self, data: bytes | memoryview) -> None:
        if not data:
            return
        self.count += len(data)
        if self.limit is not None and self.count > self.limit:
            raise ImageError(f"{self._what} expands beyond the limit of {self.limit} bytes (decompression bomb?)")
        if self._hash is not None:
            self._pending.append(_hashing_thread().submit(self._hash.update, data))
            if len(self._pending) > MAX_PENDING_CHUNKS:
                self._pending.popleft().result()

    def drain(self) -> None:
        """Read to the end so the digest covers every byte (tar padding included)."""
        while self.next_chunk():
            pass

    @property
    def digest(self) -> str:
        if self._hash is None:
            return ""
        while self._pending:
            self._pending.popleft().result()
        return "sha256:" + self._hash.hexdigest()


class MemberReader(_ReadBased):
    """The data of one member of an outer tar, read straight from the archive rather than through tarfile.

    With a file descriptor it reads by offset (pread: no shared file position, no intermediate buffers);
    otherwise it reads the stream forward from where tarfile left it, just past the member's header.
    `read()` without a size returns all that is left: callers bound the member's size first.
    """

    def __init__(self, source: IO[bytes] | int, offset: int, size: int) -> None:
        self._source = source
        self._offset = offset
        self._left = size

    def read(self, size: int = -1) -> bytes:
        want = self._left if size is None or size < 0 else min(size, self._left)
        if want <= 0:
            return b""
        if isinstance(self._source, int):
            data = os.pread(self._source, want, self._offset)
            self._offset += len(data)
        else:
            data = self._source.read(want)
        self._left -= len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        if not isinstance(self._source, int):
            return super().readinto(buffer)
        view = memoryview(buffer).cast("B")[: self._left]
        got = os.preadv(self._source, [view], self._offset) if len(view) else 0
        self._offset += got
        self._left -= got
        return got


class ForwardReader:
    """Forward-only reads over the chunks another reader returns: a read copies just what it returns, a skip copies
    nothing at all.

    The layer walk reads headers and the first bytes of files and skips everything else, so most bytes are never
    looked at after hashing; a BufferedReader would copy each of them into its buffer and out again first. Chunks
    come from the inner reader's `next_chunk` (a HashingReader: views of reused buffers, valid while they are the
    latest) or else its `read` (new bytes objects); either way only the current chunk is kept.
    """

    def __init__(self, inner: Readable, chunk_size: int = CHUNK) -> None:
        self._inner = inner
        self._next_chunk: Callable[[], bytes | memoryview] = getattr(inner, "next_chunk", None) or partial(
            inner.read, chunk_size
        )
        self._chunk: bytes | memoryview = b""
        self._pos = 0

    def peek(self, size: int) -> bytes:
        """Up to `size` bytes ahead, not consumed (only ever asked for a few magic bytes)."""
        while len(self._chunk) - self._pos < size:
            more = self._next_chunk()
            if not more:
                break
            self._chunk, self._pos = bytes(self._chunk[self._pos :]) + bytes(more), 0
        return bytes(self._chunk[self._pos : self._pos + size])

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = sys.maxsize
        end = self._pos + size
        if end <= len(self._chunk):  # the common case: inside the current chunk
            data = bytes(self._chunk[self._pos : end])
            self._pos = end
            return data
        out = bytearray(self._chunk[self._pos :])  # copied now: an earlier chunk's buffer is reused later
        self._chunk, self._pos = b"", 0
        while len(out) < size:
            more = self._next_chunk()
            if not more:
                break
            want = size - len(out)
            if len(more) > want:
                out += more[:want]
                self._chunk, self._pos = more, want
                break
            out += more
        return bytes(out)

    def readinto(self, buffer: Any) -> int:
        """What is left of the current chunk, or of the next one, up to the buffer's size (the decompressors' way)."""
        if self._pos >= len(self._chunk):
            self._chunk, self._pos = self._next_chunk(), 0
        view = memoryview(buffer).cast("B")
        count = min(len(view), len(self._chunk) - self._pos)
        view[:count] = self._chunk[self._pos : self._pos + count]
        self._pos += count
        return count

    def skip(self, size: int) -> int:
        """Move `size` bytes forward; returns how many there were (fewer at the end of the stream)."""
        left = len(self._chunk) - self._pos
        if size <= left:
            self._pos += size
            return size
        skipped = left
        self._chunk, self._pos = b"", 0
        while skipped < size:
            more = self._next_chunk()
            if not more:
                break
            if len(more) > size - skipped:
                self._chunk, self._pos = more, size - skipped
                return size
            skipped += len(more)
        return skipped


class IteratorReader(_ReadBased):
    """A file-like view of an iterator of byte chunks (the Engine API's image export)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""

    def read(self, size: int = -1) -> bytes:
        want = size if size is not None and size >= 0 else CHUNK
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return b""
        data, self._pending = self._pending[:want], self._pending[want:]
        return data


def read_exactly(stream: IO[bytes], size: int) -> bytes:
    parts: list[bytes] = []
    remaining = size
    while remaining > 0:
        data = stream.read(remaining)
        if not data:
            break
        parts.append(data)
        remaining -= len(data)
    return b"".join(parts)


def buffered(raw: io.RawIOBase, size: int = CHUNK) -> io.BufferedReader:
    """Our raw readers as the binary file objects tarfile and the decompressors expect.

    BufferedReader is slow at reads as large as its buffer or larger; readers feeding another one get a bigger buffer.
    """
    return io.BufferedReader(raw, buffer_size=size)


def decompressed(raw: ForwardReader) -> tuple[IO[bytes] | ForwardReader, str]:
    """The uncompressed view of `raw` and the compression found by its magic bytes (gzip, zstd, none)."""
    head = raw.peek(4)
    if head.startswith(GZIP_MAGIC):
        return cast(IO[bytes], _gzip_module.GzipFile(fileobj=raw, mode="rb")), "gzip"  # type: ignore[no-untyped-call]
    if head.startswith(ZSTD_MAGIC):
        return cast(IO[bytes], _zstd_module.ZstdFile(raw, mode="rb")), "zstd"
    return raw, "none"


# What a corrupt or truncated layer raises: the decompressors' errors and tarfile's.
READ_ERRORS: tuple[type[Exception], ...] = (EOFError, zlib.error, OSError, _zstd_module.ZstdError, tarfile.TarError)

"""Scanning several layers at once: a forked child takes about half the bytes while this process reads the rest.

The walk is Python code, so threads cannot share it; a fork shares everything already imported and costs a few
milliseconds. It is used only where both processes can open their layers independently (files read by offset or
by path, never a shared stream) and only when there is enough to split. The child sends its LayerScans back
pickled through a pipe (its own objects, built by this same code), and it is always reaped, also on errors and
Ctrl-C. Each layer keeps the whole byte budget; the total is checked once both halves are in.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

from portcullis.collect.image.errors import ImageError, Limits
from portcullis.collect.image.layer import LayerScan, scan_layer
from portcullis.collect.image.streams import MemberReader

if TYPE_CHECKING:
    from portcullis.collect.image.layer_cache import LayerCache

PARALLEL_MIN_BYTES = 32 * 1024 * 1024  # below this the fork and the pickling cost more than they save


@dataclass(frozen=True)
class LayerJob:
    open: Callable[[], IO[bytes] | MemberReader]  # opens the layer blob; called in whichever process scans it
    size: int  # stored bytes, to split the work evenly
    what: str  # how errors name the layer
    diff_id: str = ""  # what the image's config says the uncompressed bytes hash to: the cache key, when known


def scan_layers(
    jobs: Sequence[LayerJob],
    limits: Limits,
    parallel: bool = True,
    min_parallel_bytes: int = PARALLEL_MIN_BYTES,
    cache: LayerCache | None = None,
) -> list[LayerScan]:
    """Every job's LayerScan, in job order; a failing layer's ImageError is raised.

    A layer the cache holds under the job's diff_id is not opened at all; every layer read is offered to the cache.
    `parallel=False` is for sources a forked child cannot reopen (a network stream): one layer after another.
    """
    known: dict[int, LayerScan] = {}
    if cache is not None:
        for index, job in enumerate(jobs):
            hit = cache.layer(job.diff_id) if job.diff_id else None
            if hit is not None:
                if len(hit.entries) > limits.max_entries:
                    raise ImageError(f"{job.what} holds more than {limits.max_entries} entries")
                known[index] = hit
    todo = [job for index, job in enumerate(jobs) if index not in known]
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    big_enough = sum(j.size for j in todo) >= min_parallel_bytes
    if parallel and len(todo) >= 2 and cpus >= 2 and hasattr(os, "fork") and big_enough:
        fresh = _scan_in_two(todo, limits)
    else:
        fresh, used = [], sum(scan.size for scan in known.values())
        for job in todo:  # one by one, each layer may only use what the earlier ones left of the budget
            fresh.append(_scan(job, limits, limits.max_total_bytes - used))
            used += fresh[-1].size
    if cache is not None:
        for scan in fresh:
            cache.keep_layer(scan)
    unread = iter(fresh)
    scans = [known[index] if index in known else next(unread) for index in range(len(jobs))]
    total = sum(scan.size for scan in scans)
    if total > limits.max_total_bytes:
        raise ImageError(f"the image expands beyond the limit of {limits.max_total_bytes} bytes (decompression bomb?)")
    return scans


def _scan(job: LayerJob, limits: Limits, budget: int) -> LayerScan:
    with job.open() as handle:
        return scan_layer(handle, limits, budget, job.what)


def split_shares(jobs: Sequence[LayerJob]) -> tuple[list[int], list[int]]:
    """Job indexes for the child and for this process, largest first into the lighter share."""
    shares: tuple[list[int], list[int]] = ([], [])
    weight = [0, 0]
    for index in sorted(range(len(jobs)), key=lambda i: -jobs[i].size):
        lighter = 0 if weight[0] <= weight[1] else 1
        shares[lighter].append(index)
        weight[lighter] += jobs[index].size
    return sorted(shares[0]), sorted(shares[1])


def _scan_in_two(jobs: Sequence[LayerJob], limits: Limits) -> list[LayerScan]:
    theirs, ours = split_shares(jobs)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: scan its share, report, and leave without running the parent's cleanup
        os.close(read_end)
        _child(jobs, theirs, limits, write_end)
    os.close(write_end)
    results: dict[int, LayerScan] = {}
    finished = False
    try:
        for index in ours:
            results[index] = _scan(jobs[index], limits, limits.max_total_bytes)
        with os.fdopen(read_end, "rb") as incoming:
            read_end = -1
            outcome, payload = pickle.loads(incoming.read())  # our own child's objects, never image bytes
        finished = True
    finally:
        if read_end != -1:
            os.close(read_end)
        _reap(pid, stop=not finished)
    if outcome != "ok":
        raise ImageError(payload)
    results.update(zip(theirs, payload, strict=True))
    return [results[index] for index in range(len(jobs))]


def _child(jobs: Sequence[LayerJob], share: list[int], limits: Limits, write_end: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C ends the child at once; the parent reports it
    try:
        try:
            message: tuple[str, object] = (
                "ok",
                [_scan(jobs[index], limits, limits.max_total_bytes) for index in share],
            )
        except ImageError as exc:
            message = ("error", str(exc))
        except Exception as exc:  # reported by the parent as one line, like any other reader failure
            message = ("error", f"reading layers in a second process failed: {type(exc).__name__}: {exc}")
        with os.fdopen(write_end, "wb") as out:
            out.write(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))
    finally:
        os._exit(0)


def _reap(pid: int, stop: bool) -> None:
    """Wait for the child; when this process is leaving early (an error, Ctrl-C), stop it first."""
    if stop:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)

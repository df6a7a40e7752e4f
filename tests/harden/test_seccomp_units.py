"""Syscall tables, record parsers and profile rules of `harden seccomp`, on recorded data (no engine)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from portcullis.harden import HardenError
from portcullis.harden.seccomp import (
    DOCKER_DEFAULT_PROFILE,
    ENOSYS,
    build_profile,
    docker_default_profile,
    generate,
    profile_size,
    works,
)
from portcullis.harden.syscall_record import RunOutcome, parse_audit_record, parse_strace
from portcullis.harden.syscalls import (
    GENERIC_HEADER,
    X86_64_HEADERS,
    SyscallTableError,
    fallback_table,
    parse_headers,
    syscall_name,
)

DATA = Path(__file__).parent / "data"
# A real record from this VM's kernel (SCMP_ACT_LOG run of busybox under runc 1.1).
AUDIT_LOG_RECORD = (
    'audit(1795443450.234:557): auid=4294967295 uid=0 gid=0 ses=4294967295 pid=23306 comm="runc:[2:INIT]" '
    'exe="/" sig=0 arch=c000003e syscall=138 compat=0 ip=0x46e5d8 code=0x7ffc0000'
)


def test_x86_64_numbers_match_the_kernel_abi() -> None:
    if not any(h.is_file() for h in X86_64_HEADERS):
        pytest.skip("linux-libc-dev is not installed")
    table = parse_headers("x86_64")
    assert table is not None
    assert (table[0], table[72], table[138], table[257], table[436]) == (
        "read", "fcntl", "fstatfs", "openat", "close_range",
    )  # fmt: skip


def test_aarch64_numbers_come_from_the_generic_table_with_64_bit_names() -> None:
    if not GENERIC_HEADER.is_file():
        pytest.skip("linux-libc-dev is not installed")
    table = parse_headers("aarch64")
    assert table is not None
    # fcntl/newfstatat/mmap are the 64-bit names of the __NR3264_* placeholders; renameat is arm64-only.
    assert (table[25], table[38], table[56], table[79], table[221], table[222], table[435]) == (
        "fcntl", "renameat", "openat", "newfstatat", "execve", "mmap", "clone3",
    )  # fmt: skip
    assert "fcntl64" not in table.values() and "sync_file_range2" not in table.values()


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_committed_fallback_equals_the_installed_headers(arch: str) -> None:
    parsed = parse_headers(arch)
    if parsed is None:
        pytest.skip("linux-libc-dev is not installed")
    assert fallback_table(arch) == parsed, "rerun scripts/gen-syscall-tables.py"


def test_audit_log_record_names_the_syscall_and_pid() -> None:
    record = parse_audit_record(AUDIT_LOG_RECORD)
    assert record is not None
    assert (record.pid, record.syscall) == (23306, "fstatfs")


def test_records_of_other_seccomp_actions_are_not_log_records() -> None:
    errno_record = AUDIT_LOG_RECORD.replace("code=0x7ffc0000", "code=0x50001")
    assert parse_audit_record(errno_record) is None
    assert parse_audit_record("audit(1.0:1): op=load") is None
    assert syscall_name("c00000b7", 56) == "openat"
    with pytest.raises(SyscallTableError, match="40000003"):  # i386 compat calls are not mapped
        syscall_name("40000003", 5)


def test_strace_recording_of_busybox_httpd_skips_the_gate_and_keeps_file_and_socket_use() -> None:
    # Recorded on this VM: `sh -c 'read _; exec "$@"' gate httpd -f -p 8080 -h /etc`, one GET /hostname, stop.
    text = (DATA / "strace-busybox-httpd.txt").read_text()
    recording = parse_strace(text, gated_pid=22439)
    # The gate's read(0) and restart_syscall come before its execve and are not the workload's.
    assert "restart_syscall" not in recording.syscalls
    assert recording.syscalls["execve"] == 1
    assert {"socket", "bind", "listen", "accept", "sendfile", "clone", "exit_group"} <= set(recording.syscalls)
    assert recording.sockets == {("inet6", "stream")}
    assert recording.bound_ports == {8080}
    # The request child inherited the server's cwd (/etc) and opened `hostname` relative to it.
    assert recording.reads == {"/etc/hostname"}
    assert recording.writes == set()
    assert recording.capability_hints == set()  # port 8080 needs no NET_BIND_SERVICE
    ungated = parse_strace(text, gated_pid=None)
    assert ungated.syscalls["restart_syscall"] == 1


def test_allow_list_profile_shape_and_clone3_fallback() -> None:
    profile = build_profile({"read", "write", "execve"}, "x86_64")
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO"
    assert profile["archMap"] == [
        {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}
    ]
    assert profile["syscalls"][0] == {"names": ["execve", "read", "write"], "action": "SCMP_ACT_ALLOW"}
    assert profile["syscalls"][1]["names"] == ["clone3"]
    assert profile["syscalls"][1]["errnoRet"] == ENOSYS
    assert profile_size(profile).names == 3
    with_clone3 = build_profile({"clone3", "read"}, "aarch64")
    assert len(with_clone3["syscalls"]) == 1
    assert build_profile({"read"}, "x86_64", "SCMP_ACT_LOG")["defaultAction"] == "SCMP_ACT_LOG"


def test_docker_default_profile_size_is_measured_from_the_installed_file() -> None:
    default = docker_default_profile()
    if default is None:
        pytest.skip(f"{DOCKER_DEFAULT_PROFILE} is missing (`make programs` installs it)")
    size = profile_size(default)
    unconditional = [
        r for r in default["syscalls"] if not r.get("args") and not r.get("includes") and not r.get("excludes")
    ]
    assert size.unconditional == len({n for r in unconditional for n in r["names"]})
    assert 300 < size.unconditional < size.names
    assert size.compact_bytes == len(json.dumps(default, separators=(",", ":")).encode())


def _outcome(exited: bool, code: int | None, smoke: bool | None = None, started: bool = True) -> RunOutcome:
    return RunOutcome(exited, code, smoke, "", "", started=started)


def test_a_profile_works_only_if_the_run_behaves_like_the_reference() -> None:
    batch, service = _outcome(True, 0), _outcome(False, None, smoke=True)
    assert works(batch, _outcome(True, 0))
    assert not works(batch, _outcome(True, 1))
    assert not works(batch, _outcome(False, None))  # hung instead of finishing
    assert works(service, _outcome(False, None, smoke=True))
    assert not works(service, _outcome(False, None, smoke=False))
    assert not works(service, _outcome(True, 0, smoke=True))  # a service that exits has failed
    assert not works(batch, _outcome(False, None, started=False))


def test_unknown_recording_route_is_refused_before_anything_runs() -> None:
    with pytest.raises(HardenError, match="unknown recording route"):
        generate(None, None, routes=frozenset({"ebpf"}))  # type: ignore[arg-type]

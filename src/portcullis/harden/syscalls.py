"""Syscall number -> name tables for x86_64 and aarch64, read from the kernel's UAPI headers.

The kernel's audit records (`type=1326 … arch=c000003e syscall=N`) carry numbers; seccomp profiles carry
names. The headers of Debian's `linux-libc-dev` are the source of truth; `syscall_tables.json` next to this
module is generated from them by `scripts/gen-syscall-tables.py` and used only where the headers are absent.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from pathlib import Path

# Audit architecture tokens (AUDIT_ARCH_* in linux/audit.h) as they appear in the records' `arch=` field.
AUDIT_ARCH = {"c000003e": "x86_64", "c00000b7": "aarch64"}
# Docker's names for the same architectures (archMap in seccomp profiles).
SECCOMP_ARCH = {"x86_64": "SCMP_ARCH_X86_64", "aarch64": "SCMP_ARCH_AARCH64"}
SECCOMP_SUBARCHES = {"x86_64": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"], "aarch64": ["SCMP_ARCH_ARM"]}

X86_64_HEADERS = (Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h"), Path("/usr/include/asm/unistd_64.h"))
GENERIC_HEADER = Path("/usr/include/asm-generic/unistd.h")
# What arch/arm64/include/uapi/asm/unistd.h defines before including the generic table.
AARCH64_WANTS = frozenset(
    {
        "__ARCH_WANT_RENAMEAT",
        "__ARCH_WANT_NEW_STAT",
        "__ARCH_WANT_SET_GET_RLIMIT",
        "__ARCH_WANT_TIME32_SYSCALLS",
        "__ARCH_WANT_SYS_CLONE3",
        "__ARCH_WANT_MEMFD_SECRET",
    }
)
FALLBACK_TABLES = "syscall_tables.json"

_DEFINE = re.compile(r"^#define\s+__NR(3264)?_(\w+)\s+(\S+)")


class SyscallTableError(Exception):
    """No syscall table for an architecture (headers missing and no generated fallback entry)."""


def parse_x86_64(text: str) -> dict[int, str]:
    """`#define __NR_read 0` lines of asm/unistd_64.h."""
    table: dict[int, str] = {}
    for line in text.splitlines():
        match = _DEFINE.match(line)
        if match and not match.group(1) and match.group(3).isdigit():
            table[int(match.group(3))] = match.group(2)
    return table


def _atom_holds(atom: str, defined: frozenset[str]) -> bool:
    atom = atom.strip()
    if match := re.fullmatch(r"(!?)\s*defined\s*\(\s*(\w+)\s*\)", atom):
        return (match.group(2) in defined) != bool(match.group(1))
    if match := re.fullmatch(r"__BITS_PER_LONG\s*(==|!=)\s*(\d+)", atom):
        return (int(match.group(2)) == 64) == (match.group(1) == "==")
    raise SyscallTableError(f"unexpected preprocessor condition in {GENERIC_HEADER}: {atom!r}")


def _condition_holds(expression: str, defined: frozenset[str]) -> bool:
    """The `A || B`, `A && B` conditions of asm-generic/unistd.h, for a native 64-bit build."""
    return any(
        all(_atom_holds(atom, defined) for atom in alternative.split("&&")) for alternative in expression.split("||")
    )


def parse_generic_64(text: str, wants: frozenset[str] = AARCH64_WANTS) -> dict[int, str]:
    """asm-generic/unistd.h as a native 64-bit architecture sees it (aarch64, riscv64, …)."""
    defined: set[str] = set(wants)
    numbers: dict[str, int] = {}  # __NR3264_* placeholders
    table: dict[int, str] = {}
    active: list[bool] = []  # one entry per open #if: is this branch taken (and all enclosing ones)?
    for raw in text.splitlines():
        line = raw.strip()
        enclosing = all(active)
        if line.startswith("#ifdef"):
            active.append(line.split()[1] in defined)
        elif line.startswith("#ifndef"):
            active.append(line.split()[1] not in defined)
        elif line.startswith("#if"):
            active.append(_condition_holds(line[3:].split("/*")[0], frozenset(defined | numbers.keys())))
        elif line.startswith("#else") and active:
            outer = all(active[:-1])
            active[-1] = outer and not active[-1]
        elif line.startswith("#endif") and active:
            active.pop()
        elif enclosing and (match := _DEFINE.match(line)):
            placeholder, name, value = match.groups()
            if placeholder:
                numbers[f"__NR3264_{name}"] = int(value)
                defined.add(f"__NR3264_{name}")
            elif value.isdigit():
                table[int(value)] = name
            elif value in numbers:
                table[numbers[value]] = name
    return table


def parse_headers(arch: str) -> dict[int, str] | None:
    """The table from this machine's headers, or None if they are not installed."""
    if arch == "x86_64":
        for header in X86_64_HEADERS:
            if header.is_file():
                return parse_x86_64(header.read_text(encoding="utf-8"))
        return None
    if arch == "aarch64":
        if GENERIC_HEADER.is_file():
            return parse_generic_64(GENERIC_HEADER.read_text(encoding="utf-8"))
        return None
    raise SyscallTableError(f"no syscall table for architecture {arch!r} (supported: x86_64, aarch64)")


def fallback_table(arch: str) -> dict[int, str] | None:
    data = json.loads(resources.files(__package__).joinpath(FALLBACK_TABLES).read_text(encoding="utf-8"))
    entry = data["tables"].get(arch)
    return {int(number): name for number, name in entry.items()} if entry else None


@cache
def syscall_table(arch: str) -> dict[int, str]:
    table = parse_headers(arch) or fallback_table(arch)
    if not table:
        raise SyscallTableError(f"no syscall table for {arch}: install linux-libc-dev (kernel UAPI headers)")
    return table


def syscall_name(audit_arch: str, number: int) -> str:
    """The name of syscall `number` for an audit `arch=` token; `syscall_<N>` for unknown numbers."""
    arch = AUDIT_ARCH.get(audit_arch.lower())
    if arch is None:
        raise SyscallTableError(f"audit architecture {audit_arch} is not supported (only x86_64 and aarch64)")
    return syscall_table(arch).get(number, f"syscall_{number}")

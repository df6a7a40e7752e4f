"""An AppArmor profile for a container from a small declarative policy and from what strace saw it do.

The policy (TOML or YAML) names read-only and writable paths, the programs it may and may not run, its
capabilities and its network use, in the spirit of genuinetools/bane. Observed use (files written, programs run,
socket kinds, capabilities implied by successful calls) is added to it. The result is checked with
`apparmor_parser --skip-kernel-load`; loading and enforcing it needs a kernel with AppArmor, which this
project's CI machine does not have.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from portcullis.harden import HardenError
from portcullis.harden.syscall_record import StraceRecording

APPARMOR_SECURITYFS = Path("/sys/kernel/security/apparmor")
APPARMOR_MODULE = Path("/sys/module/apparmor/parameters/enabled")
CAPABILITIES = frozenset(
    [
        "audit_control",
        "audit_read",
        "audit_write",
        "block_suspend",
        "bpf",
        "checkpoint_restore",
        "chown",
        "dac_override",
        "dac_read_search",
        "fowner",
        "fsetid",
        "ipc_lock",
        "ipc_owner",
        "kill",
        "lease",
        "linux_immutable",
        "mac_admin",
        "mac_override",
        "mknod",
        "net_admin",
        "net_bind_service",
        "net_broadcast",
        "net_raw",
        "perfmon",
        "setfcap",
        "setgid",
        "setpcap",
        "setuid",
        "sys_admin",
        "sys_boot",
        "sys_chroot",
        "sys_module",
        "sys_nice",
        "sys_pacct",
        "sys_ptrace",
        "sys_rawio",
        "sys_resource",
        "sys_time",
        "sys_tty_config",
        "syslog",
        "wake_alarm",
    ]
)
PROTOCOLS = {"tcp": "stream", "udp": "dgram", "icmp": "raw"}
# Socket families strace reports that AppArmor network rules name the same way.
FAMILIES = frozenset({"inet", "inet6", "unix", "netlink", "packet"})
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# Paths the workload writes through the kernel's own objects; the base abstraction and the runtime cover them.
VOLATILE_WRITES = ("/dev/", "/proc/")

_POLICY_KEYS = {
    "name": str,
    "filesystem": {"read_only": list, "writable": list, "allow_exec": list, "deny_exec": list},
    "capabilities": {"allow": list},
    "network": {"raw": bool, "packet": bool, "protocols": list},
}


@dataclass
class Policy:
    name: str = "portcullis-container"
    read_only: list[str] = field(default_factory=list)
    writable: list[str] = field(default_factory=list)
    allow_exec: list[str] = field(default_factory=list)
    deny_exec: list[str] = field(default_factory=list)
    capabilities: list[str] = field(default_factory=list)
    raw: bool = False
    packet: bool = False
    protocols: list[str] = field(default_factory=list)


def load_policy(path: Path) -> Policy:
    """Read a policy file (.toml, .yaml or .yml); every mistake is one clear HardenError line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise HardenError(f"cannot read policy {path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0]
        raise HardenError(
            f"policy {path} is not valid {'TOML' if path.suffix == '.toml' else 'YAML'}: {first}"
        ) from None
    return policy_from_dict(data or {}, str(path))


def _check_shape(data: Any, shape: dict[str, Any], where: str) -> None:
    if not isinstance(data, dict):
        raise HardenError(f"{where}: expected a table of settings")
    for key, value in data.items():
        if key not in shape:
            raise HardenError(f"{where}: unknown setting {key!r} (known: {', '.join(shape)})")
        expected = shape[key]
        if isinstance(expected, dict):
            _check_shape(value, expected, f"{where}.{key}")
        elif not isinstance(value, expected) or (expected is list and not all(isinstance(v, str) for v in value)):
            kind = "a list of strings" if expected is list else expected.__name__
            raise HardenError(f"{where}.{key}: expected {kind}")


def policy_from_dict(data: dict[str, Any], where: str = "policy") -> Policy:
    _check_shape(data, _POLICY_KEYS, where)
    files = data.get("filesystem", {})
    network = data.get("network", {})
    policy = Policy(
        name=data.get("name", Policy.name),
        read_only=files.get("read_only", []),
        writable=files.get("writable", []),
        allow_exec=files.get("allow_exec", []),
        deny_exec=files.get("deny_exec", []),
        capabilities=[c.lower().removeprefix("cap_") for c in data.get("capabilities", {}).get("allow", [])],
        raw=network.get("raw", False),
        packet=network.get("packet", False),
        protocols=[p.lower() for p in network.get("protocols", [])],
    )
    if not NAME.match(policy.name):
        raise HardenError(f"{where}: profile name {policy.name!r} must be letters, digits, '.', '_' or '-'")
    for path in policy.read_only + policy.writable + policy.allow_exec + policy.deny_exec:
        _check_path(path, where)
    if unknown := sorted(set(policy.capabilities) - CAPABILITIES):
        raise HardenError(f"{where}: unknown capabilit{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)}")
    if unknown := sorted(set(policy.protocols) - PROTOCOLS.keys()):
        raise HardenError(f"{where}: unknown protocol(s) {', '.join(unknown)} (known: {', '.join(PROTOCOLS)})")
    return policy


def _check_path(path: str, where: str) -> None:
    if not path.startswith("/"):
        raise HardenError(f"{where}: path {path!r} must be absolute")
    if any(ch in path for ch in '"\n\r\t\0') or "," in path:
        raise HardenError(f"{where}: path {path!r} contains a character a profile rule cannot hold")


def _quoted(path: str) -> str:
    return f'"{path}"' if " " in path else path


def _writable_pattern(path: str) -> str:
    """A written file allows its directory's files (tmp names, rotations), not just the one name seen."""
    parent = path.rsplit("/", 1)[0] or ""
    return f"{parent}/*" if parent else path


def render_profile(policy: Policy, observed: StraceRecording | None = None) -> str:
    """The profile text: declared rules first, then what was observed, then the fixed protections."""
    capabilities = set(policy.capabilities)
    writable = list(policy.writable)
    execs = list(policy.allow_exec)
    networks: set[str] = set()
    for protocol in policy.protocols:
        networks.add(f"inet {PROTOCOLS[protocol]}")
        networks.add(f"inet6 {PROTOCOLS[protocol]}")
    if observed is not None:
        capabilities |= observed.capability_hints
        for path in sorted(observed.writes):
            if not path.startswith(VOLATILE_WRITES) and (pattern := _writable_pattern(path)) not in writable:
                writable.append(pattern)
        execs += [p for p in sorted(observed.execs) if not p.startswith("/proc/") and p not in execs]
        for family, kind in sorted(observed.sockets):
            if family in FAMILIES and family != "packet" and kind in ("stream", "dgram", "seqpacket", "raw"):
                networks.add(f"{family} {kind}")
    for path in writable + execs:
        _check_path(path, "observed use")
    lines = [
        "# Generated by portcullis harden apparmor. Load it with `apparmor_parser -r -W <file>` on a host with",
        f"# AppArmor, then run the container with --security-opt apparmor={policy.name}.",
        "#include <tunables/global>",
        "",
        f"profile {policy.name} flags=(attach_disconnected,mediate_deleted) {{",
        "  #include <abstractions/base>",
        "",
        "  # network",
    ]
    lines += [f"  network {rule}," for rule in sorted(networks)] or ["  # (no sockets declared or observed)"]
    lines.append("  network raw," if policy.raw else "  deny network raw,")
    lines.append("  network packet," if policy.packet else "  deny network packet,")
    lines += ["", "  # capabilities"]
    lines += [f"  capability {cap}," for cap in sorted(capabilities)] or ["  # (none)"]
    lines += ["", "  # files: read anywhere, write only where declared or observed, run only what is listed"]
    lines.append("  /** r,")
    lines += [f"  {_quoted(path)} rwk," for path in writable]
    lines += [f"  {_quoted(path)} mrix," for path in execs]
    lines += [f"  deny {_quoted(path)} wl," for path in policy.read_only]
    lines += [f"  deny {_quoted(path)} x," for path in policy.deny_exec]
    lines += [
        "",
        "  # protections no container needs to give up",
        "  deny mount,",
        "  deny umount,",
        "  deny pivot_root,",
        "  deny /proc/sys/** wl,",
        "  deny /proc/sysrq-trigger rwklx,",
        "  deny /proc/kcore rwklx,",
        "  deny /sys/** wl,",
        "  deny @{PROC}/*/attr/** w,",
        "  ptrace (read, readby) peer=@{profile_name},",
        "  signal (send, receive) peer=@{profile_name},",
        "}",
    ]
    return "\n".join(lines) + "\n"


@dataclass
class Validation:
    ok: bool
    message: str


def validate_profile(text: str) -> Validation:
    """Compile the profile with `apparmor_parser --skip-kernel-load` (nothing is loaded, no cache written)."""
    parser = shutil.which("apparmor_parser")
    if parser is None:
        raise HardenError("apparmor_parser is not installed (apt-get install apparmor)")
    with tempfile.NamedTemporaryFile("w", suffix=".apparmor", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        done = subprocess.run(
            [parser, "--skip-kernel-load", "--skip-cache", "--quiet", handle.name],
            capture_output=True,
            text=True,
            timeout=60,
        )
    # Without AppArmor in the kernel the parser says so on every run; that line is not about the profile.
    messages = [line for line in done.stderr.splitlines() if "Cache read/write disabled" not in line]
    detail = " ".join(messages).replace(handle.name, "<profile>").strip()
    return Validation(done.returncode == 0, detail or ("compiles" if done.returncode == 0 else "rejected"))


def kernel_enforces_apparmor() -> bool:
    try:
        return APPARMOR_MODULE.read_text().strip() == "Y" or APPARMOR_SECURITYFS.is_dir()
    except OSError:
        return APPARMOR_SECURITYFS.is_dir()

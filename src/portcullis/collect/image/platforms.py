"""Platforms (os/arch[/variant]) and picking one manifest out of a multi-platform index."""

from __future__ import annotations

import platform as host_platform
from dataclasses import dataclass
from typing import Any

from portcullis.collect.image.errors import ImageError

_MACHINE_ARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "i686": "386",
    "i386": "386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}
REF_NAME = "org.opencontainers.image.ref.name"


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    @classmethod
    def parse(cls, text: str) -> Platform:
        parts = text.strip().lower().split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ImageError(f"--platform {text!r} is not os/arch or os/arch/variant (e.g. linux/arm64)")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else "")

    @classmethod
    def host(cls) -> Platform:
        machine = host_platform.machine().lower()
        arch = _MACHINE_ARCH.get(machine, machine)
        return cls("linux", arch, "v7" if machine == "armv7l" else "")

    def matches(self, described: dict[str, Any]) -> bool:
        if described.get("os") != self.os or described.get("architecture") != self.architecture:
            return False
        return not self.variant or described.get("variant", "") == self.variant


def describe(descriptor: dict[str, Any]) -> str:
    plat = descriptor.get("platform")
    if isinstance(plat, dict):
        return "/".join(str(plat.get(k)) for k in ("os", "architecture", "variant") if plat.get(k))
    return str(descriptor.get("annotations", {}).get(REF_NAME, descriptor.get("digest", "?")))


def select_manifest(index: dict[str, Any], wanted: Platform | None, ref_name: str, what: str) -> dict[str, Any]:
    """The descriptor to follow: by ref name when given, else by platform, else the only one."""
    manifests = [m for m in index.get("manifests") or [] if isinstance(m, dict) and isinstance(m.get("digest"), str)]
    if ref_name:
        manifests = [m for m in manifests if (m.get("annotations") or {}).get(REF_NAME) == ref_name]
        if not manifests:
            raise ImageError(f"{what} has no image named {ref_name!r}")
    with_platform = [m for m in manifests if isinstance(m.get("platform"), dict)]
    real = [m for m in with_platform if m["platform"].get("os") != "unknown"]  # attestations say unknown/unknown
    if real:
        target = wanted or Platform.host()
        chosen = [m for m in real if target.matches(m["platform"])]
        if chosen:
            return chosen[0]
        listed = ", ".join(sorted(describe(m) for m in real))
        raise ImageError(f"{what} has no image for platform {target} (it has: {listed}); choose one with --platform")
    if len(manifests) == 1:
        return manifests[0]
    if not manifests:
        raise ImageError(f"{what} lists no manifests")
    names = ", ".join(describe(m) for m in manifests)
    raise ImageError(f"{what} holds several images ({names}); name one as oci:PATH:NAME")

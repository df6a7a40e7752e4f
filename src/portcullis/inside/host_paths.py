"""The host directories whose bind mount exposes the host: the one list CIS-5.6 (containers), DKR-CMP-005
(compose files) and DKR-IN-008 (`inside`) judge a mount by, so they agree about the same mount.

Standard library only and valid on Python 3.8: it travels in the zipapp.
"""

from __future__ import annotations

from typing import Dict, Optional

# Host path -> why a container must not see it. A mount of the path or of anything under it counts,
# except "/", which counts only when mounted itself.
SENSITIVE_HOST_PATHS: Dict[str, str] = {
    "/": "the whole host filesystem",
    "/bin": "host binaries: replacing one runs code as whoever calls it on the host",
    "/boot": "the kernel and boot loader: a changed one takes over the host at the next boot",
    "/dev": "host devices: raw disks, memory, terminals",
    "/etc": "host configuration and secrets: shadow, SSH host keys, TLS keys, sudoers, cron",
    "/home": "users' files: SSH keys, shell histories, credentials",
    "/lib": "host libraries and kernel modules",
    "/lib32": "host libraries",
    "/lib64": "host libraries and the dynamic loader",
    "/proc": "the host's processes and kernel settings",
    "/root": "root's files: SSH keys, credentials",
    "/run": "runtime sockets and state of host services, the engine's socket among them",
    "/sbin": "host system binaries",
    "/sys": "kernel and device settings",
    "/usr": "host binaries and libraries",
    "/var/lib/containerd": "containerd's state: every container's filesystem",
    "/var/lib/docker": "the engine's state: every container's and volume's files",
    "/var/lib/kubelet": "the kubelet's state: pod secrets and service-account tokens",
    "/var/run": "runtime sockets and state of host services, the engine's socket among them",
}


def sensitive_root(path: str) -> Optional[str]:
    """The sensitive host directory an absolute, normalised `path` is or lies under; None for other paths."""
    if path == "/":
        return "/"
    under = (root for root in SENSITIVE_HOST_PATHS if root != "/" and (path == root or path.startswith(root + "/")))
    return next(under, None)

"""The attack paths the scenario must give: (template, container role, entry kind, certainty).

From the facts alone; with each container's own /proc (--inside) the setuid look-alike is confirmed.
Roles absent here (sock-fake, host-root-ro, pid-only, safe) are the safe look-alikes: no path at all.
"""

from __future__ import annotations

FROM_FACTS = {
    ("docker-socket", "sock-published", "network", "confirmed"),
    ("docker-socket", "sock-ro", "container_process", "confirmed"),
    ("docker-socket", "host-root-rw", "container_process", "confirmed"),
    ("privileged", "privileged", "container_process", "confirmed"),
    ("host-root-rw", "host-root-rw", "container_process", "confirmed"),
    ("cgroup-release-agent", "sys-admin", "container_process", "confirmed"),
    ("host-pid-ptrace", "pid-ptrace", "container_process", "confirmed"),
    ("sys-module", "sys-module", "container_process", "confirmed"),
    ("shocker", "shocker", "container_process", "confirmed"),
    ("writable-proc-sys", "proc-sys", "container_process", "confirmed"),
    ("host-block-device", "device", "container_process", "confirmed"),
    ("cgroup-release-agent", "nonroot-setuid", "container_process", "possible"),
    ("sys-module", "nonroot-nnp", "engine_api", "confirmed"),
}
WITH_INSIDE = (FROM_FACTS - {("cgroup-release-agent", "nonroot-setuid", "container_process", "possible")}) | {
    ("cgroup-release-agent", "nonroot-setuid", "container_process", "confirmed")
}
SAFE_ROLES = ("sock-fake", "host-root-ro", "pid-only", "safe")

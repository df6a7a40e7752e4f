"""The containers the attack-path tests are built on: one per template, and look-alikes that must stay safe.

Shared by the live test (tests/paths/test_paths_engine.py) and by record_paths_facts.py, which saved
data/facts.json and data/inside.json from these very containers for the unit tests.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from support.containers import BUSYBOX, SESSION_LABEL, TEST_LABEL

DEBIAN = "portcullis-test/debian:bookworm"
NOT_A_SOCKET = "not-a-socket"  # a regular file named docker.sock, made in a temporary directory by the caller

# role -> (docker SDK run options, started?). `{fake}` in a volume source is the regular file's directory.
SCENARIO: dict[str, tuple[dict[str, Any], bool]] = {
    "sock-published": ({"volumes": ["/var/run/docker.sock:/var/run/docker.sock"], "ports": {"80/tcp": 0}}, True),
    "sock-ro": ({"volumes": ["/var/run/docker.sock:/var/run/docker.sock:ro"]}, True),
    "sock-fake": (
        {"volumes": ["{fake}/docker.sock:/var/run/docker.sock"], "ports": {"80/tcp": ("127.0.0.1", 0)}},
        True,
    ),
    "sys-admin": ({"cap_add": ["SYS_ADMIN"]}, True),
    "pid-ptrace": ({"pid_mode": "host", "cap_add": ["SYS_PTRACE"]}, True),
    "pid-only": ({"pid_mode": "host"}, True),
    "host-root-rw": ({"volumes": ["/:/host"]}, True),
    "host-root-ro": ({"volumes": ["/etc:/host-etc:ro"]}, True),
    # the SDK has no systempaths option: the docker CLI turns it into empty MaskedPaths/ReadonlyPaths
    "proc-sys": ({"cli": ["--security-opt", "systempaths=unconfined"]}, True),
    "device": ({"devices": ["/dev/vda:/dev/xvda"]}, True),
    "sys-module": ({"cap_add": ["SYS_MODULE"]}, True),
    "shocker": ({"cap_add": ["DAC_READ_SEARCH"]}, True),
    "nonroot-nnp": (
        {"user": "1000", "security_opt": ["no-new-privileges"], "cap_add": ["NET_ADMIN", "SYS_PTRACE", "SYS_MODULE"]},
        True,
    ),
    "nonroot-setuid": ({"image": DEBIAN, "user": "1000", "cap_add": ["SYS_ADMIN"]}, True),
    "privileged": ({"privileged": True}, False),  # --privileged cannot start on this VM: created only
    "safe": ({"user": "1000", "security_opt": ["no-new-privileges"], "cap_drop": ["ALL"]}, True),
}


def start_scenario(factory: Any, fake_dir: Path) -> None:
    """Run (or create) every scenario container through a labelled ContainerFactory."""
    (fake_dir / "docker.sock").write_text("not a socket\n")
    for role, (options, started) in SCENARIO.items():
        options = dict(options)
        if "volumes" in options:
            options["volumes"] = [v.replace("{fake}", str(fake_dir)) for v in options["volumes"]]
        image = options.pop("image", BUSYBOX)
        if "cli" in options:
            factory.names[role] = factory.name(role)
            labels = ["--label", f"{TEST_LABEL}=1", "--label", f"{SESSION_LABEL}={factory.session}"]
            run = ["docker", "run", "-d", "--name", factory.name(role), *labels, *options["cli"], image, "sleep", "600"]
            subprocess.run(run, check=True, capture_output=True, timeout=120)
            continue
        (factory.run if started else factory.create)(role, "sleep 600", image=image, **options)

"""The documented host audit from the container image gives the host audit's verdicts.

docs/container.md's host-audit block is run as written (only a test name, the test labels, an output
directory and `-f json` are added), against the real engine, with three planted containers and a planted
TCP listener; the host audit of the same engine runs just before it. What cannot be the same is asserted
for what it is, with its reason (docs/container.md, "What differs").
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from support.containers import BUSYBOX, SESSION_LABEL, TEST_LABEL, ContainerFactory

pytestmark = pytest.mark.engine

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "container.md"
IMAGE = os.environ.get("PORTCULLIS_IMAGE", "portcullis:local")
ENGINE_KINDS = {"host", "daemon", "file", "swarm"}
# Counts over every container and image of the shared engine: the audit container and its image are among
# them in the container run only, and other sessions may add or remove theirs between the two runs.
ENGINE_WIDE_COUNTS = {"CIS-6.1", "CIS-6.2"}
AUDITD_RULES = {f"CIS-1.1.{n}" for n in range(3, 19)}
# What the documented line itself makes the audit container (docs/container.md: "The audit container audits itself").
SELF_FINDINGS = {
    "CIS-5.4": "fail",  # SYS_PTRACE added
    "CIS-5.5": "pass",  # never privileged
    "CIS-5.6": "fail",  # host paths mounted
    "CIS-5.10": "fail",  # --net host
    "CIS-5.16": "fail",  # --pid host
    "CIS-5.32": "fail",  # the engine socket
    "DKR-RT-001": "fail",  # --user 0
}


def documented_block() -> str:
    """The sh block after the host-audit marker in docs/container.md."""
    text = DOC.read_text()
    assert text.count("<!-- host-audit:") == 1, "docs/container.md must mark exactly one host-audit block"
    found = re.search(r"```sh\n(.*?)```", text.split("<!-- host-audit:", 1)[1], re.S)
    assert found, "no sh block after the host-audit marker"
    return found.group(1)


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"the documented line no longer contains {old!r} exactly once"
    return text.replace(old, new)


@dataclass(frozen=True)
class Run:
    report: dict[str, Any]
    facts: dict[str, Any]

    def findings(self) -> dict[tuple[str, str, str], dict[str, Any]]:
        found = {}
        for finding in self.report["findings"]:
            target = finding["target"]
            key = (finding["rule_id"], target["kind"], target["name"])
            assert key not in found, f"two findings for {key}"
            found[key] = finding
        return found


def read_run(directory: Path) -> Run:
    return Run(
        report=json.loads((directory / "report.json").read_text()),
        facts=json.loads((directory / "facts.json").read_text()),
    )


@dataclass(frozen=True)
class Both:
    host: Run
    image: Run
    audit_container: str
    planted: list[str]
    listener_port: int


@pytest.fixture(scope="module")
def engine() -> Iterator[docker.DockerClient]:
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except docker.errors.DockerException as exc:
        pytest.skip(f"no Docker engine answers (run `make engine`): {exc}")
    for needed, how in ((IMAGE, "make image"), (BUSYBOX, "make test-images")):
        try:
            client.images.get(needed)
        except docker.errors.ImageNotFound:
            pytest.fail(f"{needed} is missing: run `{how}`")
    yield client
    client.close()


@pytest.fixture(scope="module")
def both(engine: docker.DockerClient) -> Iterator[Both]:
    factory = ContainerFactory(engine, prefix=f"pc-ship-{os.getpid()}")
    audit_name = f"pc-ship-{os.getpid()}-audit-{uuid.uuid4().hex[:6]}"
    workdir = Path(tempfile.mkdtemp(prefix="pc-ship-"))
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        factory.run("plain")
        factory.run(
            "hardened",
            read_only=True,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            mem_limit="64m",
            cpu_shares=512,
            pids_limit=64,
            user="65534:65534",
            restart_policy={"Name": "on-failure", "MaximumRetryCount": 3},
            healthcheck={"test": ["CMD", "true"], "interval": 3_600_000_000_000},  # stays "starting" through both runs
        )
        factory.run(
            "risky",
            pid_mode="host",
            cap_add=["SYS_ADMIN"],
            volumes={"/etc": {"bind": "/host-etc", "mode": "ro"}},
            ports={"80/tcp": None},
        )
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        (workdir / "host").mkdir()
        (workdir / "image").mkdir()
        os.chmod(workdir / "image", 0o777)  # the audit container writes here as root

        host = subprocess.run(
            [sys.executable, "-m", "portcullis", "audit", "-f", "json", "-o", str(workdir / "host" / "report.json"),
             "--facts-out", str(workdir / "host" / "facts.json")],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert host.returncode == 0, host.stderr

        script = replace_once(
            documented_block(),
            "docker run --rm --name portcullis-audit",
            f"docker run --rm --name {audit_name} --label {TEST_LABEL}=1 --label {SESSION_LABEL}={factory.session} "
            f"-v {workdir / 'image'}:/out",
        )
        script = replace_once(
            script,
            "portcullis:local audit --skip CIS-1.1.1\n",
            f"{IMAGE} audit --skip CIS-1.1.1 -f json -o /out/report.json --facts-out /out/facts.json\n",
        )
        inside = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, timeout=300, check=False
        )
        assert inside.returncode == 0, inside.stderr
        yield Both(
            host=read_run(workdir / "host"),
            image=read_run(workdir / "image"),
            audit_container=audit_name,
            planted=[factory.name(role) for role in ("plain", "hardened", "risky")],
            listener_port=listener.getsockname()[1],
        )
    finally:
        listener.close()
        subprocess.run(["docker", "rm", "-f", audit_name], capture_output=True, check=False)
        left = factory.remove_all()
        shutil.rmtree(workdir, ignore_errors=True)
        assert not left, f"test containers survived the teardown: {left}"
        assert not engine.containers.list(all=True, filters={"name": audit_name})


def auditctl_on_host(both: Both) -> bool:
    return bool(both.host.facts["host"]["audit"]["auditctl_present"])


def test_no_check_raised(both: Both) -> None:
    for run in (both.host, both.image):
        assert [f["rule_id"] for f in run.report["findings"] if f["status"] == "error"] == []
        assert run.report["subject"] == "unix:///var/run/docker.sock"


def test_engine_level_verdicts_are_the_hosts(both: Both) -> None:
    host, image = both.host.findings(), both.image.findings()
    compared: set[str] = set()
    for key, expected in host.items():
        rule_id, kind, _ = key
        if kind not in ENGINE_KINDS or rule_id in ENGINE_WIDE_COUNTS or rule_id == "CIS-1.1.1":
            continue
        if rule_id in AUDITD_RULES and auditctl_on_host(both):
            continue  # test_auditd_rules_without_auditctl_in_the_image
        if rule_id.startswith("DKR-HOST-"):
            continue  # test_host_rules_are_undecided_in_a_container
        assert key in image, f"{key} is missing from the container's audit"
        got = image[key]
        assert got["status"] == expected["status"], f"{key}: {got['message']} (host: {expected['message']})"
        if rule_id == "CIS-1.2.1":  # live TCP listeners: compared in test_the_host_network_is_seen
            assert {k: v for k, v in got["evidence"].items() if k != "tcp_listening_ports"} == {
                k: v for k, v in expected["evidence"].items() if k != "tcp_listening_ports"
            }
        else:
            assert got["evidence"] == expected["evidence"], key
        compared.add(rule_id)
    # every control of sections 1 (but 1.1.1), 2, 3 and 7 was compared, and 4.5 and 5.1 (engine-level in 4 and 5)
    wanted = {k[0] for k in host if re.match(r"CIS-[1237]\.", k[0])} - {"CIS-1.1.1"} | {"CIS-4.5", "CIS-5.1"}
    if auditctl_on_host(both):
        wanted -= AUDITD_RULES
    assert len(wanted) >= 60
    assert wanted <= compared, f"not compared: {sorted(wanted - compared)}"
    # and nothing engine-level appears inside that the host did not report
    extra = {k for k in image if k[1] in ENGINE_KINDS and k not in host}
    assert extra == set()


def test_host_rules_are_undecided_in_a_container(both: Both) -> None:
    # Inside, PATH, securityfs and capability-gated sysctls are the image's, not the host's: skip, never a verdict.
    host = {k: v for k, v in both.host.findings().items() if k[0].startswith("DKR-HOST-")}
    inside = {k: v for k, v in both.image.findings().items() if k[0].startswith("DKR-HOST-")}
    assert len(host) == 16 and set(inside) == set(host)
    assert {v["status"] for v in host.values()} <= {"pass", "fail"}
    assert all(v["status"] == "skip" and "mount namespace" in v["message"] for v in inside.values())


def test_planted_containers_get_the_same_verdicts(both: Both) -> None:
    host, image = both.host.findings(), both.image.findings()
    for name in both.planted:
        on_host = {k: v for k, v in host.items() if k[1] == "container" and k[2] == name}
        inside = {k: v for k, v in image.items() if k[1] == "container" and k[2] == name}
        assert len(on_host) >= 30, f"{name}: the host audit has only {len(on_host)} findings for it"
        assert set(inside) == set(on_host), name
        for key, expected in on_host.items():
            assert (inside[key]["status"], inside[key]["evidence"]) == (expected["status"], expected["evidence"]), key
    # the three differ from each other: the comparison is not of three copies of one verdict list
    statuses = [
        {k[0]: v["status"] for k, v in host.items() if k[1] == "container" and k[2] == name} for name in both.planted
    ]
    assert statuses[0] != statuses[1] != statuses[2] != statuses[0]
    assert statuses[1]["CIS-5.13"] == "pass" and statuses[0]["CIS-5.13"] == "fail"  # read-only root filesystem
    assert statuses[2]["CIS-5.16"] == "fail" and statuses[0]["CIS-5.16"] == "pass"  # host PID namespace


def _without_dir_mtimes(files: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Starting the audit container writes into the engine's state directories (containerd's task
    directories), so their mtime moves between the two runs; no rule reads a directory's mtime."""
    return {p: {k: v for k, v in f.items() if not (k == "mtime" and f.get("kind") == "dir")} for p, f in files.items()}


def test_collected_facts_are_the_hosts(both: Both) -> None:
    host, image = both.host.facts, both.image.facts
    # Plugin sockets live in dockerd's mount namespace: only the host audit probes them (the container records why not)
    assert image["daemon"].pop("authz_plugins") is None
    host["daemon"].pop("authz_plugins")
    assert image["daemon"] == host["daemon"]
    assert host["daemon"]["dockerd_cmdline"], "the host audit found no dockerd"
    comparable = (
        "hostname", "kernel", "os_release", "docker_group_members", "docker_group_gid", "files", "cert_files",
        "containerd_socket", "containerd_socket_source", "tls_files", "apparmor_enabled", "selinux_enabled",
        "content_trust_env", "binaries",
    )  # fmt: skip
    for field in comparable:
        if field == "files":
            assert _without_dir_mtimes(image["host"]["files"]) == _without_dir_mtimes(host["host"]["files"])
        else:
            assert image["host"][field] == host["host"][field], field
    assert all(host["host"]["binaries"].get(b) for b in ("dockerd", "containerd", "runc"))
    assert host["host"]["files"][host["host"]["containerd_socket"]]["exists"] is True
    if Path("/run/systemd/system").is_dir():
        # systemctl on the host, the unit files inside: the same units at the same paths
        assert {n: u["fragment_path"] for n, u in image["host"]["systemd_units"].items()} == {
            n: u["fragment_path"] for n, u in host["host"]["systemd_units"].items()
        }
    else:
        assert image["host"]["systemd_units"] == host["host"]["systemd_units"]
    by_name = {c["Name"].lstrip("/"): c for c in host["containers"]}
    inside = {c["Name"].lstrip("/"): c for c in image["containers"]}
    for name in both.planted:
        assert inside[name] == by_name[name], name
        assert by_name[name]["processes_source"] == "cgroup"
        assert [p["comm"] for p in by_name[name]["processes"]] == ["sleep"]


def test_the_host_network_is_seen(both: Both) -> None:
    """--net host: the listener this test opened on the host is among the listeners both runs report."""
    for run in (both.host, both.image):
        ports = {listener["port"] for listener in run.facts["host"]["tcp_listeners"]}
        assert both.listener_port in ports


def test_auditd_rules_without_auditctl_in_the_image(both: Both) -> None:
    """The image has no auditctl: inside, auditd always looks absent (equal to the host only where it is)."""
    assert both.image.facts["host"]["audit"] == {
        "auditctl_present": False,
        "rules": None,
        "error": "auditctl is not installed",
    }
    image = both.image.findings()
    for key, finding in image.items():
        if key[0] in AUDITD_RULES and finding["status"] != "not_applicable":
            assert finding["status"] == "fail" and finding["evidence"]["auditctl_present"] is False, key


def test_data_root_partition_is_skipped_because_the_mount_table_is_the_containers(both: Both) -> None:
    """CIS-1.1.1 reads /proc/self/mountinfo: inside, "/" is the container's root, not the host's."""
    assert [k for k in both.host.findings() if k[0] == "CIS-1.1.1"] == [
        ("CIS-1.1.1", "host", both.host.facts["host"]["hostname"])
    ]
    assert [k for k in both.image.findings() if k[0] == "CIS-1.1.1"] == []

    def root(facts: dict[str, Any]) -> dict[str, Any]:
        return next(m for m in facts["host"]["mounts"] if m["mountpoint"] == "/")

    assert (root(both.image.facts)["device"], root(both.image.facts)["fs_root"]) != (
        root(both.host.facts)["device"],
        root(both.host.facts)["fs_root"],
    )
    data_root = both.host.facts["engine"]["info"]["DockerRootDir"]
    assert data_root in {m["mountpoint"] for m in both.image.facts["host"]["mounts"]}  # the line's own bind mount


def test_the_audit_container_reports_itself(both: Both) -> None:
    image, host = both.image.findings(), both.host.findings()
    own = {k[0]: v["status"] for k, v in image.items() if k[1] == "container" and k[2] == both.audit_container}
    assert {rule: own.get(rule) for rule in SELF_FINDINGS} == SELF_FINDINGS
    assert not [k for k in host if k[2] == both.audit_container]
    sockets = image[("CIS-5.32", "container", both.audit_container)]["evidence"]["mounts"]
    assert [m["source"] for m in sockets if m["why"] == "engine socket"] == ["/var/run/docker.sock"]
    host_paths = image[("CIS-5.6", "container", both.audit_container)]["evidence"]["mounts"]
    assert {m["destination"] for m in host_paths} >= {"/etc", "/sys/fs/cgroup", "/usr/lib/systemd/system"}
    assert [m for m in sockets + host_paths if m["rw"]] == []  # everything the line mounts is read-only


def test_sys_ptrace_is_what_opens_dockerds_proc_entries(both: Both) -> None:
    """Why the line adds SYS_PTRACE: even as root, without it /proc/<dockerd>/exe (and environ) stay closed."""
    pid = both.host.facts["daemon"]["dockerd_pid"]
    probe = f"import os\ntry:\n    print(os.readlink('/proc/{pid}/exe'))\nexcept OSError as e:\n    print(e.errno)"
    seen = []
    for extra in ([], ["--cap-add", "SYS_PTRACE"]):
        result = subprocess.run(
            ["docker", "run", "--rm", "--label", f"{TEST_LABEL}=1", "--user", "0", "--pid", "host", *extra,
             "--entrypoint", "python3", IMAGE, "-c", probe],
            capture_output=True, text=True, timeout=120, check=True,
        )  # fmt: skip
        seen.append(result.stdout.strip())
    assert seen == ["13", both.host.facts["host"]["binaries"]["dockerd"]]  # EACCES, then the real binary

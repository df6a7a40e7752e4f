"""The integration scenario: real containers with known misconfigurations, and the audit of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import docker
import docker.types

from portcullis.model.facts import ContainerFacts, Facts
from portcullis.model.findings import Finding, Report, TargetKind
from support.containers import (
    SESSION_LABEL,
    TEST_LABEL,
    ContainerFactory,
    free_tcp_port,
    wait_until,
)

# Role → what the container demonstrates. Names are `<prefix>-<role>`.
ROLES = {
    "hardened": "cap-drop ALL, read-only, no-new-privileges, limits, user 1000, on-failure:3, healthy, own network",
    "plain": "docker run with every default: no limits, root, default bridge",
    "caps": "--cap-add SYS_ADMIN --cap-add NET_ADMIN",
    "hostns": "--pid/--network/--ipc/--uts host, while the HOST runs a process named sshd",
    "mount-rw": "-v /etc:/host-etc",
    "mount-ro": "-v /usr:/host-usr:ro",
    "mount-subdir": "-v /etc/ssl:/x:ro",
    "docker-sock": "-v /var/run/docker.sock:/var/run/docker.sock",
    "seccomp": "--security-opt seccomp=unconfined",
    "restart-always": "--restart always",
    "restart-10": "--restart on-failure:10",
    "root-user": "--user 0:0",
    "ports": "-p <privileged port>:8080 on 0.0.0.0 and -p 127.0.0.1:<port>:8081",
    "port-loopback": "-p 127.0.0.1:<port>:8081 only",
    "device": "--device /dev/null:/dev/xnull",
    "stopped": "ran `true` and exited: --pid host, --cap-add SYS_ADMIN, --restart no",
    "privileged": "docker create --privileged (cannot start on this VM)",
    "sshd-inside": "a process whose comm is sshd runs in the container",
    "propagation": "a bind mount with rshared propagation (only when a shared mount can be made)",
}

# A shell script named sshd: the kernel takes comm from the executed file's name, so comm == "sshd".
SSHD_SCRIPT = "printf '#!/bin/sh\\nwhile :; do sleep 1; done\\n' > /tmp/sshd && chmod +x /tmp/sshd && exec /tmp/sshd"
SECOND = 1_000_000_000  # the Engine API counts healthcheck durations in nanoseconds


@dataclass
class Scenario:
    factory: ContainerFactory
    network: str
    privileged_port: int
    loopback_port: int
    loopback_only_port: int
    has_propagation: bool
    ids: dict[str, str] = field(default_factory=dict)

    def name(self, role: str) -> str:
        return self.factory.name(role)


def _port_free(port: int) -> bool:
    try:
        free_tcp_port(range(port, port + 1))
    except RuntimeError:
        return False
    return True


def _health(engine: docker.DockerClient, name: str) -> str:
    state = engine.api.inspect_container(name)["State"]
    return str((state.get("Health") or {}).get("Status", ""))


def _comm(engine: docker.DockerClient, name: str) -> str:
    pid = engine.api.inspect_container(name)["State"]["Pid"]
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def build_scenario(factory: ContainerFactory, engine: docker.DockerClient, shared: Path | None) -> Scenario:
    """Start every role's container; `shared` is a shared mount for the propagation case, if any."""
    network = engine.networks.create(
        f"{factory.prefix}-net", driver="bridge", labels={TEST_LABEL: "1", SESSION_LABEL: factory.session}
    )
    # Port 80 when free; other test runs on this engine may hold it, and any port below 1024 makes the case.
    privileged_port = 80 if _port_free(80) else free_tcp_port(range(81, 1024))
    loopback_port = free_tcp_port(range(18081, 19000), "127.0.0.1")
    scenario = Scenario(
        factory=factory,
        network=network.name,
        privileged_port=privileged_port,
        loopback_port=loopback_port,
        loopback_only_port=free_tcp_port(range(loopback_port + 1, 19500), "127.0.0.1"),
        has_propagation=shared is not None,
    )
    run, create = factory.run, factory.create
    run(
        "hardened",
        cap_drop=["ALL"],
        read_only=True,
        security_opt=["no-new-privileges"],
        mem_limit="64m",
        pids_limit=64,
        cpu_shares=512,
        user="1000:1000",
        restart_policy={"Name": "on-failure", "MaximumRetryCount": 3},
        healthcheck={"test": ["CMD", "true"], "interval": SECOND // 2, "timeout": 2 * SECOND, "retries": 3},
        network=network.name,
    )
    run("plain")
    run("caps", cap_add=["SYS_ADMIN", "NET_ADMIN"])
    run("hostns", pid_mode="host", network_mode="host", ipc_mode="host", uts_mode="host")
    run("mount-rw", volumes=["/etc:/host-etc"])
    run("mount-ro", volumes=["/usr:/host-usr:ro"])
    run("mount-subdir", volumes=["/etc/ssl:/x:ro"])
    run("docker-sock", volumes=["/var/run/docker.sock:/var/run/docker.sock"])
    run("seccomp", security_opt=["seccomp=unconfined"])
    run("restart-always", restart_policy={"Name": "always"})
    run("restart-10", restart_policy={"Name": "on-failure", "MaximumRetryCount": 10})
    run("root-user", user="0:0")
    run("ports", ports={"8080/tcp": privileged_port, "8081/tcp": ("127.0.0.1", loopback_port)})
    run("port-loopback", ports={"8081/tcp": ("127.0.0.1", scenario.loopback_only_port)})
    run("device", devices=["/dev/null:/dev/xnull"])
    stopped = run("stopped", "true", pid_mode="host", cap_add=["SYS_ADMIN"], restart_policy={"Name": "no"})
    create("privileged", privileged=True)
    run("sshd-inside", ["sh", "-c", SSHD_SCRIPT])
    if shared is not None:
        run("propagation", mounts=[docker.types.Mount("/shared", str(shared), type="bind", propagation="rshared")])

    stopped.wait(timeout=30)
    wait_until(lambda: _health(engine, factory.name("hardened")) == "healthy", 30, "the hardened container's health")
    wait_until(lambda: _comm(engine, factory.name("sshd-inside")) == "sshd", 15, "sshd inside the container")
    for role in factory.names:
        scenario.ids[role] = engine.api.inspect_container(factory.name(role))["Id"]
    return scenario


@dataclass
class Audit:
    """One audit's facts, report and API call count, with lookups by rule and target."""

    facts: Facts
    report: Report
    api_calls: int

    def findings(self, rule_id: str, target: str | None = None) -> list[Finding]:
        return [f for f in self.report.findings if f.rule_id == rule_id and (target is None or f.target.name == target)]

    def container_findings(self, name: str) -> list[Finding]:
        return [f for f in self.report.findings if f.target.kind is TargetKind.CONTAINER and f.target.name == name]

    def container(self, name: str) -> ContainerFacts:
        return next(c for c in self.facts.containers if c.short_name == name)

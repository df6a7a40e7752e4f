"""deploy/swarm/ on a real single-node swarm: a private dockerd (never the main engine, whose swarm state other tests
rely on) runs `docker swarm init`, the stack (PostgreSQL, the service, the agent as a global service) is deployed
with the three commands of its README, and the agent's first report must reach the service's API. The stack is
removed and the swarm left whatever happens.

What this VM cannot do is not faked: with iptables off there is no routing mesh and no service VIP, so the stack
publishes the service in host mode (docker-proxy) and reaches the database by DNS round robin; those work here."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from portcullis.harden.trial_daemon import TrialDaemon, missing_requirement

pytestmark = pytest.mark.engine
REPO = Path(__file__).resolve().parents[2]
SWARM = REPO / "deploy" / "swarm"
IMAGE = os.environ.get("PORTCULLIS_IMAGE", "portcullis:local")
POSTGRES = "portcullis-test/postgres:15"
STACK = "fleet"
GW_BRIDGE = f"pcgw{os.getpid() % 100000}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _free_udp_port_below(limit: int) -> int:
    """A free UDP port under `limit`: swarm refuses a data-path (VXLAN) port above 49151, and the kernel's ephemeral
    range (where port 0 lands) usually starts at 32768 and goes past it."""
    for port in random.sample(range(20000, limit), 200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind(("0.0.0.0", port))
            except OSError:
                continue
            return port
    raise AssertionError(f"no free UDP port below {limit}")


class Swarm:
    def __init__(self, daemon: TrialDaemon, port: int) -> None:
        self.daemon = daemon
        self.port = port
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")} | {
            "DOCKER_HOST": daemon.host,
            "PORTCULLIS_IMAGE": IMAGE,
            "POSTGRES_IMAGE": POSTGRES,
            "PORTCULLIS_PORT": str(port),
            "PORTCULLIS_SERVER": f"http://127.0.0.1:{port}",
            # the node's engine is the private dockerd: its socket is what the agent mounts
            "DOCKER_SOCKET": str(daemon.root / "docker.sock"),
        }

    def run(self, *argv: str, stdin: bytes | None = None, timeout: float = 180) -> str:
        done = subprocess.run(argv, input=stdin, env=self.env, capture_output=True, timeout=timeout)
        if done.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode(errors='replace')}")
        return done.stdout.decode()

    def docker(self, *argv: str, stdin: bytes | None = None, timeout: float = 180) -> str:
        return self.run("docker", *argv, stdin=stdin, timeout=timeout)

    def logs(self) -> str:
        said = []
        for service in ("db", "server", "agent"):
            done = subprocess.run(
                ["docker", "service", "logs", "--tail", "20", f"{STACK}_{service}"],
                env=self.env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            said.append(f"--- {service}\n{done.stdout}{done.stderr}")
        return "\n".join(said)


def _wait(what: str, check: Callable[[], Any], seconds: float, swarm: Swarm) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            found = check()
        except (requests.RequestException, AssertionError):
            found = None
        if found:
            return found
        time.sleep(2)
    raise AssertionError(f"{what}: not within {seconds:.0f} s\n{swarm.logs()}")


def _on_trial(daemon: TrialDaemon, *argv: str) -> None:
    done = subprocess.run(["docker", "-H", daemon.host, *argv], capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise AssertionError(f"docker {' '.join(argv[:2])} failed: {done.stderr.strip()}\n{daemon.log_tail(20)}")


@pytest.fixture(scope="module")
def swarm() -> Iterator[Swarm]:
    missing = missing_requirement()
    if missing:
        pytest.skip(missing)
    if subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True).returncode != 0:
        pytest.fail(f"{IMAGE} is missing: run `make image`")
    subprocess.run(["bash", str(REPO / "scripts" / "build-postgres-test-image.sh")], check=True, timeout=900)
    daemon = TrialDaemon({})
    joined = False
    try:
        daemon.start()
        # Swarm makes a host bridge named docker_gwbridge; made here first, it gets a bridge of its own name and
        # subnet instead of one that could collide with the main engine's networks.
        _on_trial(
            daemon, "network", "create", "--driver", "bridge", "--subnet", "10.216.9.0/24",
            "--opt", f"com.docker.network.bridge.name={GW_BRIDGE}",
            "--opt", "com.docker.network.bridge.enable_icc=false",
            "--opt", "com.docker.network.bridge.enable_ip_masquerade=false", "docker_gwbridge",
        )  # fmt: skip
        control = _free_port()
        _on_trial(
            daemon, "swarm", "init", "--advertise-addr", f"127.0.0.1:{control}", "--listen-addr",
            f"127.0.0.1:{control}", "--data-path-port", str(_free_udp_port_below(49152)),
            "--default-addr-pool", "10.217.0.0/16",
        )  # fmt: skip
        joined = True
        saved = subprocess.Popen(["docker", "save", IMAGE, POSTGRES], stdout=subprocess.PIPE)
        subprocess.run(["docker", "-H", daemon.host, "load", "-q"], stdin=saved.stdout, check=True, timeout=600)
        assert saved.wait(timeout=60) == 0
        yield Swarm(daemon, _free_port())
    finally:
        if joined:
            subprocess.run(["docker", "-H", daemon.host, "stack", "rm", STACK], capture_output=True, timeout=120)
            _gone(daemon)
            subprocess.run(["docker", "-H", daemon.host, "swarm", "leave", "--force"], capture_output=True, timeout=120)
        subprocess.run(
            ["docker", "-H", daemon.host, "network", "rm", "docker_gwbridge"], capture_output=True, timeout=60
        )
        daemon.stop()
        if Path(f"/sys/class/net/{GW_BRIDGE}").exists():  # dockerd leaves a bridge it did not make by itself
            subprocess.run(["ip", "link", "del", GW_BRIDGE], capture_output=True, timeout=30)


def _gone(daemon: TrialDaemon) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        left = subprocess.run(
            ["docker", "-H", daemon.host, "ps", "-aq", "--filter", f"label=com.docker.stack.namespace={STACK}"],
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout.split()
        if not left:
            return
        time.sleep(1)


def test_the_stack_runs_and_the_agents_first_report_arrives(swarm: Swarm, tmp_path: Path) -> None:
    base = f"http://127.0.0.1:{swarm.port}/api/v1"
    # 1: the database password and the service (PostgreSQL and portcullis serve)
    swarm.docker("secret", "create", "portcullis_db_password", "-", stdin=os.urandom(18).hex().encode())
    stack = ["stack", "deploy", "--resolve-image", "never", "-c", str(SWARM / "stack.yaml")]
    said = swarm.docker(*stack, STACK)
    assert "Creating service fleet_server" in said
    _wait("the service answers", lambda: requests.get(base + "/engines", timeout=5).status_code == 401, 180, swarm)
    server = _task(swarm, "server")
    health = ["inspect", "--format", "{{.State.Health.Status}}", server]
    _wait("the server's health check passes", lambda: swarm.docker(*health).strip() == "healthy", 120, swarm)
    # 2: a token per node, made by the running service, into the agents' secret
    tokens = swarm.run("bash", str(SWARM / "agent-tokens.sh"), STACK)
    node = swarm.docker("node", "ls", "--format", "{{.Hostname}}").strip()
    assert [line.split()[0] for line in tokens.splitlines()] == [node]
    assert all(line.split()[1].startswith("pcs_") for line in tokens.splitlines())
    swarm.docker("secret", "create", "portcullis_agent_tokens", "-", stdin=tokens.encode())
    # 3: the agents, a global service
    swarm.docker(*stack, "-c", str(SWARM / "agents.yaml"), STACK)
    mode = swarm.docker("service", "inspect", "--format", "{{json .Spec.Mode}}", f"{STACK}_agent")
    assert '"Global"' in mode
    reader = swarm.docker(
        "exec", _task(swarm, "server"), "sh", "-c",
        'PGPASSWORD="$(cat /run/secrets/portcullis_db_password)" portcullis token add ops --role reader',
    ).strip()  # fmt: skip
    headers = {"Authorization": f"Bearer {reader}"}

    def engines() -> list[dict[str, Any]]:
        answer = requests.get(base + "/engines", headers=headers, timeout=10)
        answer.raise_for_status()
        return [e for e in answer.json() if e["name"] == node]

    started = time.monotonic()
    engine = _wait("the agent's first report", engines, 300, swarm)[0]
    took = time.monotonic() - started
    assert sum(engine["failing"].values()) > 0
    images = requests.get(base + "/images", headers=headers, timeout=10).json()
    assert {IMAGE, POSTGRES} <= {image["name"] for image in images}, images
    findings = requests.get(base + "/findings", headers=headers, params={"engine": node, "limit": "5"}, timeout=10)
    assert findings.json()["findings"], findings.text
    # the agent's container is as the stack says: root, the socket read-only, the host's network, no host pid
    agent = swarm.docker("inspect", _task(swarm, "agent"), "--format", "{{json .HostConfig}}")
    assert '"NetworkMode":"host"' in agent and '"CapAdd":["CAP_SYS_PTRACE"]' in agent
    assert '"PidMode":""' in agent  # Swarm has no pid: host for services (stack deploy ignores it)
    print(f"agent's first report in the API {took:.0f} s after the agents were deployed")


def _task(swarm: Swarm, service: str) -> str:
    found: str = _wait(
        f"a running {service} task",
        lambda: swarm.docker("ps", "-q", "--filter", f"label=com.docker.swarm.service.name={STACK}_{service}").split(),
        120,
        swarm,
    )[0]
    return found

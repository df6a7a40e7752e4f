"""The host-hardening rules (DKR-HOST-*) over facts collected from this real host and engine."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import docker

from portcullis.checks.registry import all_rules
from portcullis.checks.runner import evaluate
from portcullis.collect.audit import collect_facts
from portcullis.collect.engine import connect
from portcullis.collect.hardening import collect_hardening
from portcullis.model.findings import Status


def test_real_host_facts_are_collected_and_judged(engine: docker.DockerClient) -> None:
    # A service of our own on every address: the dedicated-host rule must name it with this process's name.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("0.0.0.0", 0))
        server.listen()
        port = server.getsockname()[1]
        facts = collect_facts(connect())
        hardening = facts.host.hardening
        assert hardening is not None

        # sysctls are the kernel's own values
        assert hardening.sysctls["kernel.kptr_restrict"] == Path("/proc/sys/kernel/kptr_restrict").read_text().strip()
        assert hardening.modules_supported == Path("/proc/modules").exists()
        # the engine itself is among the processes; kernel threads are not
        assert "dockerd" in (hardening.processes or [])
        assert not any(name.startswith("kworker") for name in hardening.processes or [])
        comm = Path("/proc/self/comm").read_text().strip()
        ours = [s for s in hardening.sockets or [] if s.port == port and s.protocol == "tcp"]
        assert ours and comm in ours[0].processes, ours

        rules = [r for r in all_rules() if r.id.startswith("DKR-HOST-")]
        assert len(rules) == 16
        findings = {r.id: evaluate(r, facts)[0] for r in rules}
        assert all(f.status in (Status.PASS, Status.FAIL) for f in findings.values()), {
            k: (f.status, f.message) for k, f in findings.items()
        }
        dedicated = findings["DKR-HOST-013"]
        assert dedicated.status is Status.FAIL
        assert f"tcp 0.0.0.0:{port} ({comm})" in dedicated.evidence["services"]

    # the rule follows the host: with our listener closed, it is no longer named
    again = collect_hardening()
    assert not [s for s in again.sockets or [] if s.port == port and s.protocol == "tcp" and s.address == "0.0.0.0"]


def test_host_hardening_costs_well_under_a_second() -> None:
    started = time.perf_counter()
    collect_hardening()
    elapsed = time.perf_counter() - started
    assert elapsed < 0.25, f"collecting host hardening facts took {elapsed:.3f} s"

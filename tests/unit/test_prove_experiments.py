"""`run_proofs` is a table of experiments, one per prove rule; the engine tests (tests/runtime/test_prove_engine.py)
and the DKR-PRV fixtures pin what each records. These need no engine."""

from __future__ import annotations

from typing import Any, cast

from portcullis.checks.prove_judges import PROVE_RULES
from portcullis.collect.sandbox import RunResult, Sandbox, SandboxError
from portcullis.proofs.prove import EXPERIMENTS, Policy, ProofImages, parse_bits, run_proofs


class RefusingBox:
    """A sandbox whose engine refuses every container, counting the attempts."""

    def __init__(self) -> None:
        self.attempts = 0

    def run(self, image: str, command: list[str], **options: Any) -> RunResult:
        self.attempts += 1
        raise SandboxError(f"refused {image}")

    def start_detached(self, image: str, command: list[str], **options: Any) -> RunResult:
        return self.run(image, command)


def _proofs(policy: Policy) -> tuple[dict[str, Any], int]:
    box = RefusingBox()
    found = run_proofs(cast(Sandbox, box), policy, ProofImages(), 2, lambda pid: None)
    return found, box.attempts


def test_every_prove_rule_has_one_experiment() -> None:
    assert list(EXPERIMENTS) == list(PROVE_RULES)


def test_a_policy_without_settings_starts_no_container() -> None:
    found, attempts = _proofs(Policy(source="empty", seccomp_unconfined=True))
    assert attempts == 0
    assert list(found) == list(PROVE_RULES)
    assert all(set(measurement) == {"absent"} for measurement in found.values())


def test_a_refused_experiment_is_an_error_measurement_for_that_proof_only() -> None:
    found, attempts = _proofs(Policy(source="memory only", memory=64 << 20, seccomp_unconfined=True))
    assert attempts == 1
    assert found["DKR-PRV-001"] == {"error": "refused portcullis-test/busybox:1"}
    assert all("absent" in measurement for rule_id, measurement in found.items() if rule_id != "DKR-PRV-001")


def test_the_limit_settings_are_read_from_a_containers_inspect() -> None:
    inspect = {
        "Name": "/web",
        "HostConfig": {
            "BlkioDeviceWriteBps": [{"Path": "/dev/vda", "Rate": 4194304}],
            "BlkioDeviceReadBps": [{"Path": "/dev/vda", "Rate": 1048576}],
            "StorageOpt": {"size": "1G"},
            "PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}], "443/tcp": [{"HostPort": ""}]},
        },
    }
    policy = Policy.from_inspect(inspect, [])
    assert (policy.device_write_bps, policy.device_read_bps, policy.blkio_device) == (4194304, 1048576, "/dev/vda")
    assert policy.storage_size == 1 << 30
    assert policy.publish_ip == "0.0.0.0"  # an empty HostIp publishes on every address: the wider one is proven
    loopback_only = {"HostConfig": {"PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}}}
    assert Policy.from_inspect(loopback_only, []).publish_ip == "127.0.0.1"
    assert Policy.from_inspect({"HostConfig": {}}, []).publish_ip is None


def test_tc_rates_are_decimal_bits() -> None:
    assert parse_bits("8mbit") == 8_000_000
    assert parse_bits("500kbit") == 500_000
    assert parse_bits("1.5gbit") == 1_500_000_000

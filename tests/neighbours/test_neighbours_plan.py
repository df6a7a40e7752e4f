"""What the aggressors are started with: bounded in time inside their instance, the fork storm capped by a pids
limit even without limits, the network flood in two instances of which the receiver is shaped. Recorded through a
launcher that keeps the specs instead of starting them (the engine side is tested in test_neighbours_engine)."""

from __future__ import annotations

from dataclasses import dataclass, field

from portcullis.model.neighbours import Aggressor, LimitsMode
from portcullis.proofs.neighbours import (
    FORK_PIDS_CAP,
    Instance,
    InstanceSpec,
    Plan,
    cpuset_size,
    docker_limits,
    notes_for,
    start_aggressor,
    vm_notes,
)


@dataclass
class RecordingLauncher:
    runtime: str = "recording"
    scratch_dir: str = "/var/tmp"
    limits_refused: str = ""
    unmeasurable: dict = field(default_factory=dict)
    specs: list[InstanceSpec] = field(default_factory=list)

    def start(self, spec: InstanceSpec) -> Instance:
        self.specs.append(spec)
        return Instance(f"instance-{len(self.specs)}", f"10.9.0.{len(self.specs)}", lambda: True)

    def stop(self, instance: Instance) -> None:
        """Nothing was started."""


def test_the_fork_storm_is_capped_even_without_limits() -> None:
    launcher = RecordingLauncher()
    start_aggressor(launcher, Aggressor.fork, Plan(cpuset="1"), None, lifetime=90)
    (spec,) = launcher.specs
    assert spec.pids_limit == FORK_PIDS_CAP == 2000
    assert spec.limits is None and spec.cpuset == "1" and not spec.victim
    assert spec.command[:4] == ["timeout", "-s", "KILL", "90"]


def test_other_aggressors_have_no_pids_cap_without_limits() -> None:
    launcher = RecordingLauncher()
    start_aggressor(launcher, Aggressor.cpu, Plan(cpuset="1"), None, lifetime=30)
    assert launcher.specs[0].pids_limit is None


def test_the_flood_sender_aims_at_the_shaped_receiver() -> None:
    launcher = RecordingLauncher()
    limits = docker_limits("1", "/dev/vda")
    sink, _ = start_aggressor(launcher, Aggressor.net, Plan(cpuset="1"), limits, lifetime=30)
    receiver_spec, sender_spec = launcher.specs
    assert "sink" in receiver_spec.command and receiver_spec.limits == limits
    assert sender_spec.command[-3:] == ["flood", sink.address, "7200"]


def test_docker_limits_hold_the_aggressor_to_a_quarter_of_the_shared_cpus() -> None:
    assert cpuset_size("0-1") == 2 and cpuset_size("0,2-3") == 3 and cpuset_size("1") == 1
    limits = docker_limits("0-1", None)
    assert limits.aggressor_cpus == 0.5
    assert limits.aggressor_cpu_shares < limits.victim_cpu_shares
    assert limits.device_write_mib_per_s is None  # no device found: no disk limit is claimed


@dataclass
class ForwardingLauncher(RecordingLauncher):
    """Instances reached through a port forward, the way VMs are: the flood must aim at the neighbours' side."""

    def start(self, spec: InstanceSpec) -> Instance:
        self.specs.append(spec)
        return Instance(f"vm-{len(self.specs)}", "127.0.0.1", lambda: True, ports={7200: 40000 + len(self.specs)},
                        neighbour_address="10.0.2.2")  # fmt: skip


def test_a_flood_between_forwarded_instances_aims_at_the_forward() -> None:
    launcher = ForwardingLauncher(scratch_dir="/vol")
    start_aggressor(launcher, Aggressor.net, Plan(cpuset="1"), None, lifetime=30)
    _, sender_spec = launcher.specs
    assert sender_spec.command[-3:] == ["flood", "10.0.2.2", "40001"]


def test_the_disk_aggressor_writes_where_its_launcher_says() -> None:
    launcher = ForwardingLauncher(scratch_dir="/vol")
    start_aggressor(launcher, Aggressor.disk, Plan(cpuset="1"), None, lifetime=30)
    script = launcher.specs[0].command[-1]
    assert "of=/vol/storm" in script and "oflag=direct" in script and "/var/tmp" not in script


def test_notes_name_only_the_limits_and_placement_the_run_had() -> None:
    values = docker_limits("1", "/dev/vda")
    both = notes_for(Plan(cpuset="1"), values, weight_supported=False)
    assert any(note.startswith("--limits docker holds every aggressor instance to --cpus 0.25") for note in both)
    assert any(note.startswith("--blkio-weight is not applied") for note in both)
    none_only = notes_for(Plan(cpuset=None, limits=(LimitsMode.none,)), values, weight_supported=False)
    assert not [note for note in none_only if "--limits docker" in note or "--blkio-weight" in note]
    assert none_only[0] == "Victim and aggressors were not pinned: the scheduler spread them over every CPU."
    assert "all QEMU threads pinned with taskset to CPU(s) 1, as the containers are" in vm_notes("1")[0]
    assert "QEMU threads not pinned, as the containers are not" in vm_notes(None)[0]

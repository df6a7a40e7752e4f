"""The dockerd collector: on this machine's real daemon, and its parsers on recorded files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from portcullis.collect.daemon import _unit_texts, attach_swarm_files, collect_daemon_config, docker_opts
from portcullis.model.facts import SwarmInfo
from portcullis.model.findings import CollectionProblem

ENDPOINT = "unix:///var/run/docker.sock"
PIDFILE = Path("/var/run/docker.pid")  # dockerd's default --pidfile
DEBIAN_UNIT = """[Service]
Type=notify
EnvironmentFile=-/etc/default/docker
ExecStart=/usr/sbin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock $DOCKER_OPTS
ExecReload=/bin/kill -s HUP $MAINPID
"""


@pytest.fixture
def local_dockerd() -> int:
    if not Path("/var/run/docker.sock").exists() or not PIDFILE.exists():
        pytest.skip("no local dockerd on the default socket")
    return int(PIDFILE.read_text().strip())


def test_the_running_dockerd_and_its_argv_are_found(local_dockerd: int) -> None:
    problems: list[CollectionProblem] = []
    config = collect_daemon_config(ENDPOINT, True, problems)
    assert config.dockerd_pid == local_dockerd
    raw = Path(f"/proc/{local_dockerd}/cmdline").read_bytes()
    assert config.dockerd_cmdline == [part.decode() for part in raw.split(b"\0") if part]
    assert "--iptables=false" in config.dockerd_cmdline  # how this machine's dockerd is started
    assert config.dockerd_uid == os.stat(f"/proc/{local_dockerd}").st_uid
    assert config.daemon_json_exists == Path("/etc/docker/daemon.json").exists()
    assert not [p for p in problems if "command line" in p.fact]


def test_remote_engine_collects_nothing_and_says_so() -> None:
    problems: list[CollectionProblem] = []
    config = collect_daemon_config("tcp://10.0.0.2:2376", False, problems)
    assert config.dockerd_cmdline is None
    assert config.daemon_json is None
    assert [p.reason for p in problems] == ["the engine is remote"]


def test_docker_opts_of_the_debian_unit() -> None:
    env = '# comment\nDOCKER_OPTS="--icc=false  --log-level warn"\n'
    assert docker_opts([DEBIAN_UNIT], env) == ["--icc=false", "--log-level", "warn"]
    assert docker_opts([DEBIAN_UNIT], '#DOCKER_OPTS="--dns 8.8.8.8"\n') == []
    assert docker_opts([DEBIAN_UNIT], None) == []


def test_docker_opts_ignored_unless_the_unit_passes_them() -> None:
    env = "DOCKER_OPTS=--iptables=false\n"
    no_env_file = DEBIAN_UNIT.replace("EnvironmentFile=-/etc/default/docker\n", "")
    assert docker_opts([no_env_file], env) is None
    # A drop-in that resets ExecStart without $DOCKER_OPTS stops the file from mattering.
    drop_in = "[Service]\nExecStart=\nExecStart=/usr/bin/dockerd -H fd://\n"
    assert docker_opts([DEBIAN_UNIT, drop_in], env) is None
    # A drop-in that resets EnvironmentFile= does too.
    assert docker_opts([DEBIAN_UNIT, "[Service]\nEnvironmentFile=\n"], env) is None
    assert docker_opts([], env) is None


def test_unit_and_drop_ins_are_read_in_systemd_order(tmp_path: Path) -> None:
    etc, lib = tmp_path / "etc", tmp_path / "lib"
    (lib / "docker.service.d").mkdir(parents=True)
    (etc / "docker.service.d").mkdir(parents=True)
    (lib / "docker.service").write_text("fragment-lib")
    (lib / "docker.service.d" / "10-a.conf").write_text("lib-a")
    (lib / "docker.service.d" / "20-b.conf").write_text("lib-b")
    (etc / "docker.service.d" / "20-b.conf").write_text("etc-b")  # overrides the lib drop-in of the same name
    assert _unit_texts((str(etc), str(lib))) == ["fragment-lib", "lib-a", "etc-b"]


def test_this_machines_unit_is_honoured(local_dockerd: int) -> None:
    config = collect_daemon_config(ENDPOINT, True, [])
    unit = Path("/lib/systemd/system/docker.service")
    if not unit.exists():
        pytest.skip("docker.service is not installed here")
    env = Path("/etc/default/docker")
    expected = docker_opts([unit.read_text()], env.read_text() if env.exists() else None)
    assert config.docker_opts == expected


def test_swarm_files_of_a_recorded_manager(tmp_path: Path) -> None:
    certs = tmp_path / "swarm" / "certificates"
    certs.mkdir(parents=True)
    (certs / "swarm-root-ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    os.utime(certs / "swarm-root-ca.crt", (1795441784, 1795441784))
    # docker-state.json as dockerd 20.10.24 wrote it after `swarm init --data-path-addr 172.31.250.1`
    state = {
        "LocalAddr": "127.0.0.1",
        "RemoteAddr": "",
        "ListenAddr": "0.0.0.0:2377",
        "AdvertiseAddr": "127.0.0.1:2377",
        "DataPathAddr": "172.31.250.1",
        "DefaultAddressPool": [],
        "SubnetSize": 24,
        "DataPathPort": 4789,
        "JoinInProgress": False,
    }
    (tmp_path / "swarm" / "docker-state.json").write_text(json.dumps(state))
    swarm = SwarmInfo()
    problems: list[CollectionProblem] = []
    attach_swarm_files(swarm, str(tmp_path), problems)
    assert problems == []
    assert swarm.root_ca_mtime == 1795441784
    assert (swarm.listen_addr, swarm.advertise_addr, swarm.data_path_addr) == (
        "0.0.0.0:2377",
        "127.0.0.1:2377",
        "172.31.250.1",
    )


def test_missing_swarm_files_are_problems_not_values(tmp_path: Path) -> None:
    swarm = SwarmInfo()
    problems: list[CollectionProblem] = []
    attach_swarm_files(swarm, str(tmp_path), problems)
    assert swarm.root_ca_mtime is None and swarm.data_path_addr is None
    assert [p.fact for p in problems] == ["swarm root CA certificate", "swarm node addresses"]

"""The host collector on this very machine, checked against what the OS says independently.

No fakes: `collect_host` runs for real; the expectations come from os.stat, grp, /proc and the shell.
Parsers are also fed recorded kernel text (mountinfo) through a temporary /proc.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from portcullis.collect import host as host_collect
from portcullis.collect.daemon import collect_daemon_config, find_dockerd
from portcullis.collect.host import collect_host
from portcullis.model.facts import DaemonConfig, HostFacts
from portcullis.model.findings import CollectionProblem

ENDPOINT = "unix:///var/run/docker.sock"


def _collect() -> tuple[DaemonConfig, HostFacts, list[CollectionProblem]]:
    problems: list[CollectionProblem] = []
    daemon = collect_daemon_config(ENDPOINT, True, problems)
    return daemon, collect_host(daemon, "/var/lib/docker", problems, endpoint=ENDPOINT), problems


@pytest.fixture(scope="module")
def collected() -> tuple[DaemonConfig, HostFacts, list[CollectionProblem]]:
    return _collect()


def _shell(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=False)


def test_etc_docker_owner_and_mode_match_os_stat(
    collected: tuple[DaemonConfig, HostFacts, list[CollectionProblem]],
) -> None:
    _, host, _ = collected
    facts = host.files["/etc/docker"]
    if not os.path.exists("/etc/docker"):
        assert facts.exists is False
        return
    real = os.stat("/etc/docker")
    assert facts.exists and facts.kind == "dir"
    assert (facts.uid, facts.gid, facts.mode) == (real.st_uid, real.st_gid, stat.S_IMODE(real.st_mode))


def test_every_collected_file_agrees_with_os_stat(
    collected: tuple[DaemonConfig, HostFacts, list[CollectionProblem]],
) -> None:
    _, host, _ = collected
    assert host.files, "the collector stats the CIS paths"
    for path, facts in host.files.items():
        if not os.path.exists(path):
            assert facts.exists is False, path
            continue
        real = os.stat(path)
        assert facts.exists, path
        assert (facts.uid, facts.gid, facts.mode) == (real.st_uid, real.st_gid, stat.S_IMODE(real.st_mode)), path


def test_auditctl_presence_matches_the_shell(
    collected: tuple[DaemonConfig, HostFacts, list[CollectionProblem]],
) -> None:
    _, host, _ = collected
    on_path = _shell("command -v auditctl").returncode == 0
    assert host.audit.auditctl_present is on_path
    if not on_path:
        assert host.audit.rules is None
        assert host.audit.error == "auditctl is not installed"


def test_docker_group_matches_getent(collected: tuple[DaemonConfig, HostFacts, list[CollectionProblem]]) -> None:
    _, host, _ = collected
    line = _shell("getent group docker").stdout.strip()
    if not line:
        assert host.docker_group_gid is None and host.docker_group_members == []
        return
    _, _, gid, listed = line.split(":")
    assert host.docker_group_gid == int(gid)
    expected = {name for name in listed.split(",") if name}
    expected |= {user.pw_name for user in pwd.getpwall() if user.pw_gid == int(gid)}
    assert host.docker_group_members == sorted(expected)


def test_root_mount_device_matches_stat(collected: tuple[DaemonConfig, HostFacts, list[CollectionProblem]]) -> None:
    _, host, _ = collected
    assert host.mounts is not None
    root = [m for m in host.mounts if m.mountpoint == "/"][-1]
    if root.fstype in ("btrfs", "overlay", "zfs"):
        pytest.skip(f"{root.fstype} reports another st_dev than its mountinfo device")
    dev = os.stat("/").st_dev
    assert root.device == f"{os.major(dev)}:{os.minor(dev)}"
    assert root.fs_root == "/"


def test_collection_changes_nothing(collected: tuple[DaemonConfig, HostFacts, list[CollectionProblem]]) -> None:
    _, before, _ = collected
    _, after, _ = _collect()
    for path, first in before.files.items():
        second = after.files[path]
        # regular files only: directories such as the data root change as other containers come and go
        if first.kind == "file" and second.exists:
            assert (second.mtime, second.mode, second.uid) == (first.mtime, first.mode, first.uid), path


def _local_dockerd() -> tuple[int, list[str]]:
    found = find_dockerd(ENDPOINT)
    if found is None:
        pytest.skip("no dockerd serves /var/run/docker.sock here")
    return found


def test_dockerd_binary_is_the_running_executable(
    collected: tuple[DaemonConfig, HostFacts, list[CollectionProblem]],
) -> None:
    pid, _ = _local_dockerd()
    _, host, _ = collected
    assert host.binaries["dockerd"] == os.path.realpath(f"/proc/{pid}/exe")
    assert os.path.isfile(host.binaries["dockerd"] or "")


def test_binaries_are_real_files_not_symlinks(
    collected: tuple[DaemonConfig, HostFacts, list[CollectionProblem]],
) -> None:
    _, host, _ = collected
    for name, path in host.binaries.items():
        if path is None:
            assert shutil.which(name, path="/usr/bin:/usr/sbin:/usr/local/bin:/usr/local/sbin:/bin:/sbin") is None
            continue
        assert not os.path.islink(path), path
        assert os.access(path, os.X_OK), path


def test_containerd_socket_is_a_live_socket(collected: tuple[DaemonConfig, HostFacts, list[CollectionProblem]]) -> None:
    _local_dockerd()
    _, host, _ = collected
    assert host.containerd_socket is not None
    assert stat.S_ISSOCK(os.stat(host.containerd_socket).st_mode)
    assert host.files[host.containerd_socket].kind == "socket"


def test_engine_socket_is_collected(collected: tuple[DaemonConfig, HostFacts, list[CollectionProblem]]) -> None:
    _local_dockerd()
    _, host, _ = collected
    real = os.stat("/var/run/docker.sock")
    facts = host.files["/var/run/docker.sock"]
    assert facts.kind == "socket"
    assert (facts.uid, facts.gid, facts.mode) == (real.st_uid, real.st_gid, stat.S_IMODE(real.st_mode))
    if facts.gid != 0:
        assert facts.group == grp.getgrgid(real.st_gid).gr_name


# --- parsers fed recorded kernel text -----------------------------------------------------------------


def test_mountinfo_bind_mount_and_escapes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "self").mkdir()
    (tmp_path / "self" / "mountinfo").write_text(
        "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
        "42 27 254:0 /var/lib/docker /var/lib/docker rw,relatime shared:1 - ext4 /dev/vda rw\n"
        "50 27 8:17 / /mnt/my\\040disk rw,nosuid master:3 - xfs /dev/sdb1 rw\n"
    )
    monkeypatch.setattr(host_collect, "PROC", tmp_path)
    mounts = host_collect._mounts()
    assert mounts is not None
    assert [(m.mountpoint, m.device, m.fs_root, m.fstype, m.source) for m in mounts] == [
        ("/", "254:0", "/", "ext4", "/dev/vda"),
        ("/var/lib/docker", "254:0", "/var/lib/docker", "ext4", "/dev/vda"),
        ("/mnt/my disk", "8:17", "/", "xfs", "/dev/sdb1"),
    ]
    assert mounts[2].options == ["rw", "nosuid"]


def test_tls_files_explicit_paths() -> None:
    daemon = DaemonConfig(
        dockerd_cmdline=[
            "dockerd",
            "--tlsverify",
            "--tlscacert=/tls/ca.pem",
            "--tlscert",
            "/tls/c.pem",
            "--tlskey=/tls/k.pem",
        ]
    )
    assert host_collect._tls_files(daemon) == {
        "tlscacert": "/tls/ca.pem",
        "tlscert": "/tls/c.pem",
        "tlskey": "/tls/k.pem",
    }


def test_tls_files_off_without_tls_flags() -> None:
    assert host_collect._tls_files(DaemonConfig(dockerd_cmdline=["dockerd", "--tlscert=/tls/c.pem"])) == {}
    assert host_collect._tls_files(DaemonConfig(dockerd_cmdline=["dockerd"], daemon_json={"tls": False})) == {}


def test_tls_verify_defaults_to_the_users_docker_dir() -> None:
    daemon = DaemonConfig(dockerd_cmdline=["dockerd"], daemon_json={"tlsverify": True}, dockerd_uid=0)
    home = pwd.getpwuid(0).pw_dir
    assert host_collect._tls_files(daemon)["tlscacert"] == os.path.join(home, ".docker", "ca.pem")


def test_tlsverify_false_still_means_tls_but_no_ca() -> None:
    daemon = DaemonConfig(dockerd_cmdline=["dockerd", "--tlsverify=false", "--tlscert=/t/c.pem", "--tlskey=/t/k.pem"])
    assert host_collect._tls_files(daemon) == {"tlscert": "/t/c.pem", "tlskey": "/t/k.pem"}


def test_containerd_socket_from_flag_and_daemon_json() -> None:
    flagged = DaemonConfig(dockerd_cmdline=["dockerd", "--containerd=/custom/ctr.sock"])
    assert host_collect._containerd_socket(flagged) == ("/custom/ctr.sock", "dockerd --containerd")
    configured = DaemonConfig(dockerd_cmdline=["dockerd"], daemon_json={"containerd": "/cfg/ctr.sock"})
    assert host_collect._containerd_socket(configured) == ("/cfg/ctr.sock", "daemon.json containerd")


def test_containerd_address_from_its_config_file(tmp_path: Path) -> None:
    config = tmp_path / "containerd.toml"
    config.write_text('version = 2\n[grpc]\n  address = "/var/run/docker/containerd/containerd.sock"\n')
    argv = ["containerd", "--config", str(config), "--log-level", "info"]
    assert host_collect._containerd_address(argv) == "/var/run/docker/containerd/containerd.sock"
    assert host_collect._containerd_address(["containerd", "--address", "/a.sock"]) == "/a.sock"

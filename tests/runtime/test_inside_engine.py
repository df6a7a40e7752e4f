"""`portcullis inside` on real containers: from the host (any image) and from inside (the zipapp, python image)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tests.runtime.conftest import PYTHON, Containers, docker

from portcullis.inside.build import build

pytestmark = pytest.mark.engine

NEAR_PRIVILEGED = [
    "--cap-add",
    "ALL",
    "--cap-drop",
    "SYS_RESOURCE",
    "--security-opt",
    "seccomp=unconfined",
    "--security-opt",
    "systempaths=unconfined",
]
# configuration -> docker run options, and the verdicts the host-side view must give (rule suffix -> status)
HOST_VIEW = {
    "default": (
        [],
        {
            "001": "pass",
            "002": "fail",
            "004": "fail",
            "006": "pass",
            "007": "pass",
            "008": "pass",
            "009": "pass",
            "010": "pass",
            "011": "pass",
            "012": "skip",
            "013": "fail",
        },
    ),
    "sys-admin": (["--cap-add", "SYS_ADMIN"], {"001": "fail", "012": "fail", "009": "pass"}),
    "near-privileged": (NEAR_PRIVILEGED, {"001": "fail", "003": "fail", "009": "fail", "010": "fail"}),
    "pid-host": (["--pid", "host"], {"006": "fail"}),
    "net-host": (["--network", "host"], {"006": "fail"}),
    "docker-sock": (["-v", "/var/run/docker.sock:/var/run/docker.sock"], {"007": "fail", "008": "pass"}),
    "seccomp-unconfined": (["--security-opt", "seccomp=unconfined"], {"003": "fail", "001": "pass"}),
    "no-new-privileges": (["--security-opt", "no-new-privileges"], {"004": "pass"}),
    "cap-drop-all": (["--cap-drop", "ALL"], {"001": "pass", "002": "pass"}),
    "host-root": (["-v", "/:/host:ro"], {"008": "fail"}),
    "device": (["--device", "/dev/vda:/dev/xvda"], {"011": "fail"}),
}


def portcullis(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "portcullis", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("config", sorted(HOST_VIEW))
def test_host_view_verdicts(config: str, containers: Containers) -> None:
    options, expected = HOST_VIEW[config]
    if config == "device" and not Path("/dev/vda").exists():
        pytest.skip("this host has no /dev/vda to pass through")
    name = containers.run(options)
    result = portcullis("inside", "--container", name, "-f", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    verdicts = {f["rule_id"].rsplit("-", 1)[1]: f["status"] for f in report["findings"]}
    assert {k: verdicts[k] for k in expected} == expected
    assert all(f["target"]["name"] == name for f in report["findings"])
    assert verdicts["005"] == "not_applicable"  # no LSM on this kernel


def test_pid_host_names_the_technique(containers: Containers) -> None:
    name = containers.run(["--pid", "host", "--cap-add", "SYS_PTRACE"])
    report = json.loads(portcullis("inside", "--container", name, "-f", "json").stdout)
    by_id = {f["rule_id"]: f for f in report["findings"]}
    assert by_id["DKR-IN-006"]["evidence"]["shared"]["pid"] == "same inode as the auditing host process"
    assert "ptrace" in by_id["DKR-IN-001"]["evidence"]["technique"]
    assert by_id["DKR-IN-001"]["severity"] == "high"


@pytest.fixture(scope="module")
def zipapp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("pyz") / "portcullis-inside.pyz")


INSIDE_VIEW = {
    "default": ([], {"003": "pass", "012": "pass", "009": "pass", "013": "fail"}),
    "sys-admin": (["--cap-add", "SYS_ADMIN"], {"001": "fail", "003": "fail", "012": "fail"}),
    "seccomp-unconfined": (["--security-opt", "seccomp=unconfined"], {"003": "fail", "012": "pass"}),
}


@pytest.mark.parametrize("config", sorted(INSIDE_VIEW))
def test_zipapp_inside_container(config: str, zipapp: Path) -> None:
    options, expected = INSIDE_VIEW[config]
    result = docker(
        "run",
        "--rm",
        "--label",
        "portcullis.test=1",
        *options,
        "-v",
        f"{zipapp}:/pi.pyz:ro",
        PYTHON,
        "python3",
        "/pi.pyz",
        "-f",
        "json",
        "--fail-on",
        "critical",
        check=False,
    )
    report = json.loads(result.stdout)
    verdicts = {f["rule_id"].rsplit("-", 1)[1]: f["status"] for f in report["findings"]}
    assert {k: verdicts[k] for k in expected} == expected
    critical_failures = [f for f in report["findings"] if f["status"] == "fail" and f["severity"] == "critical"]
    assert result.returncode == (2 if critical_failures else 0)
    probes = next(f for f in report["findings"] if f["rule_id"] == "DKR-IN-003")["evidence"]["probes"]
    assert set(probes) == {"unshare_user", "keyctl", "clock_settime_invalid", "cgroup_v1_mount"}


def test_inside_unknown_container_is_one_line_error() -> None:
    result = portcullis("inside", "--container", "pc-rt-does-not-exist")
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "no container named" in result.stderr


PYTHON38 = Path("/root/.pyenv/versions/3.8.18/bin/python")


@pytest.mark.skipif(not PYTHON38.exists(), reason="no Python 3.8 interpreter on this machine")
def test_zipapp_runs_on_python38_in_a_container(zipapp: Path) -> None:
    """The oldest Python the zipapp promises, inside a default container: no registry here has a python:3.8 image,
    so the host's 3.8 build is mounted read-only at its own prefix into the Debian test image (same libc)."""
    prefix = PYTHON38.parents[1]
    result = docker(
        "run", "--rm", "--label", "portcullis.test=1", "--network", "none",
        "-v", f"{prefix}:{prefix}:ro", "-v", f"{zipapp}:/tmp/portcullis-inside.pyz:ro",
        "portcullis-test/debian:bookworm", str(PYTHON38), "/tmp/portcullis-inside.pyz", "-f", "json", "--no-probes",
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert len({f["rule_id"] for f in report["findings"]}) == 13
    assert report["tool"]["version"] and report["command"] == "inside"
    verdicts = {f["rule_id"]: f["status"] for f in report["findings"]}
    assert verdicts["DKR-IN-013"] == "fail"  # a default container still has Docker's default capability set
    assert verdicts["DKR-IN-003"] == "pass"  # and Docker's default seccomp profile

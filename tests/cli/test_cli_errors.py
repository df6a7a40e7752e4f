"""Tool errors: exit 1, one line on stderr, never a traceback (run_cli asserts that for every call)."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from clirun import Recorded, run_cli


def test_corrupt_facts_file(tmp_path: Path) -> None:
    garbage = tmp_path / "facts.json"
    garbage.write_text('{"engine": [1, 2')
    run = run_cli("audit", "--facts-in", str(garbage))
    assert run.code == 1
    assert f"{garbage} is not a Portcullis facts snapshot" in run.one_error_line()
    assert run.stdout == ""


def test_facts_file_of_the_wrong_shape(tmp_path: Path) -> None:
    wrong = tmp_path / "facts.json"
    wrong.write_text('{"engine": {"info": "not a mapping"}}')
    run = run_cli("audit", "--facts-in", str(wrong))
    assert run.code == 1
    assert "is not a Portcullis facts snapshot" in run.one_error_line()


def test_missing_facts_file(tmp_path: Path) -> None:
    run = run_cli("audit", "--facts-in", str(tmp_path / "nope.json"))
    assert run.code == 1
    assert "No such file or directory" in run.one_error_line()


@pytest.mark.parametrize("value", ["bogus://engine", "tcp://", "/var/run/docker.sock"])
def test_malformed_docker_host(value: str) -> None:
    run = run_cli("audit", env={"DOCKER_HOST": value})
    assert run.code == 1
    assert f"DOCKER_HOST={value!r}" in run.one_error_line()


def test_engine_socket_missing() -> None:
    run = run_cli("audit", env={"DOCKER_HOST": "unix:///nonexistent.sock"})
    assert run.code == 1
    assert "no Docker engine answers at unix:///nonexistent.sock" in run.one_error_line()


@pytest.fixture
def locked_socket() -> Iterator[Path]:
    """A root-owned unix socket with mode 000 in a directory anyone may enter."""
    if os.geteuid() != 0:
        pytest.skip("needs root to hand a root-owned socket to another user")
    directory = Path(tempfile.mkdtemp(prefix="pc-clitest-sock-"))
    directory.chmod(0o755)
    path = directory / "docker.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(str(path))
        listener.listen(1)
        path.chmod(0)
        yield path
    finally:
        listener.close()
        shutil.rmtree(directory, ignore_errors=True)


def test_permission_denied_on_the_socket(locked_socket: Path) -> None:
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed, so the CLI cannot run as nobody")
    closed = [d for d in Path(sys.executable).parents if not d.stat().st_mode & stat.S_IXOTH]
    if closed:
        pytest.skip(f"{closed[0]} is closed to other users (mode 0700?), so the CLI cannot run as nobody from here")
    prefix = (setpriv, "--reuid", "nobody", "--regid", "nogroup", "--clear-groups")
    run = run_cli(
        "audit",
        env={"DOCKER_HOST": f"unix://{locked_socket}", "HOME": str(locked_socket.parent)},
        cwd=locked_socket.parent,
        prefix=prefix,
    )
    assert run.code == 1
    assert "permission denied" in run.one_error_line()


def test_bad_option_value() -> None:
    run = run_cli("audit", "--format", "yaml")
    assert run.code == 1
    assert "yaml" in run.one_error_line()


def test_exit_code_out_of_range() -> None:
    run = run_cli("audit", "--exit-code", "300")
    assert run.code == 1
    run.one_error_line()


@pytest.mark.engine
def test_malformed_ignore_file(recorded: Recorded, tmp_path: Path) -> None:
    (tmp_path / ".portcullisignore.yaml").write_text("ignore:\n  - id: CIS-5.5\n")
    run = run_cli("audit", "--facts-in", str(recorded.facts), cwd=tmp_path)
    assert run.code == 1
    assert run.one_error_line() == (
        "portcullis: error: ignore file .portcullisignore.yaml: entry 1, field `reason` is required"
    )
    assert run.stdout == ""


@pytest.mark.engine
def test_named_ignore_file_missing(recorded: Recorded, tmp_path: Path) -> None:
    run = run_cli("audit", "--facts-in", str(recorded.facts), "--ignore-file", str(tmp_path / "none.yaml"))
    assert run.code == 1
    assert "does not exist" in run.one_error_line()


@pytest.mark.engine
def test_unwritable_output(recorded: Recorded, tmp_path: Path) -> None:
    run = run_cli("audit", "--facts-in", str(recorded.facts), "-o", str(tmp_path / "missing-dir" / "out.json"))
    assert run.code == 1
    assert "cannot write" in run.one_error_line()


def test_error_lines_are_written_verbatim(tmp_path: Path) -> None:
    # A name is user input: nothing in it is markup or an emoji code to be rendered.
    odd = tmp_path / "app:thumbs_up:[bold]x.tar"
    odd.write_bytes(b"not a tar archive at all, just some bytes" * 20)
    run = run_cli("image", f"docker-archive:{odd}")
    assert run.code == 1
    assert str(odd) in run.one_error_line()

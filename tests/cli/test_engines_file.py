"""`audit --engines engines.yaml`: every mistake in the file is one line and exit 1, before any engine is reached."""

from __future__ import annotations

from pathlib import Path

import pytest
from clirun import run_cli

GOOD = "- name: a\n  host: unix:///nowhere/a.sock\n"


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (GOOD + "  tls: true\n", "0.tls: Extra inputs are not permitted"),
        ("- name: a\n", "0.host: Field required"),
        ("- name: a\n  host: ftp://a\n", "is not a valid engine address"),
        ("- name: a\n  host: tcp://\n", "names no host"),
        (GOOD + GOOD, "engine 'a' is named twice"),
        ("name: a\nhost: unix:///x\n", "Input should be a valid list"),
        ("[]\n", "lists no engines"),
        ("- name: [a\n", "is not YAML"),
        (GOOD + "  tlsverify: maybe\n", "0.tlsverify: Input should be a valid boolean"),
    ],
)
def test_bad_engines_file_is_one_line(tmp_path: Path, text: str, said: str) -> None:
    path = tmp_path / "engines.yaml"
    path.write_text(text, encoding="utf-8")
    run = run_cli("audit", "--engines", str(path))
    assert run.code == 1
    assert said in run.one_error_line()
    assert run.stdout == ""


def test_missing_engines_file(tmp_path: Path) -> None:
    run = run_cli("audit", "--engines", str(tmp_path / "engines.yaml"))
    assert run.code == 1
    assert "No such file or directory" in run.one_error_line()


def test_a_host_named_twice(tmp_path: Path) -> None:
    path = tmp_path / "engines.yaml"
    path.write_text("- name: unix:///nowhere/a.sock\n  host: unix:///nowhere/b.sock\n", encoding="utf-8")
    run = run_cli("audit", "-H", "unix:///nowhere/a.sock", "--engines", str(path))
    assert run.code == 1
    assert "engine 'unix:///nowhere/a.sock' is named twice" in run.one_error_line()


def test_facts_files_take_one_engine(tmp_path: Path) -> None:
    run = run_cli("audit", "-H", "unix:///a.sock,unix:///b.sock", "--facts-out", str(tmp_path / "f.json"))
    assert run.code == 1
    assert "--facts-in and --facts-out take one engine" in run.one_error_line()


def test_a_bad_host_among_several() -> None:
    run = run_cli("audit", "-H", "unix:///a.sock,ftp://b")
    assert run.code == 1
    assert "DOCKER_HOST='ftp://b' is not a valid engine address" in run.one_error_line()

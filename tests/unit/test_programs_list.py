"""scripts/programs.tsv is the one list of external programs: every call is listed, every row is called.

A machine that keeps state between runs hides a missing install step; these tests catch it on any machine,
fresh or not. The scanner itself is tested on small scripts so a blind spot in it cannot pass silently.
"""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

import pytest

from support.program_scan import calls_in, makefile_shell, python_programs, shell_programs
from support.tools import TOOLS_VENV

REPO = Path(__file__).resolve().parents[2]
LIST = REPO / "scripts" / "programs.tsv"
SOURCES = {"apt", "apt-lean", "pypi", "project"}
WHEN = {"test", "bench", "probed"}


def rows() -> list[list[str]]:
    lines = [line for line in LIST.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return [line.split("\t") for line in lines]


def scanned_files() -> list[Path]:
    files = [*sorted((REPO / "scripts").glob("*.sh")), REPO / "Makefile"]
    for folder in ("tests", "benchmarks", "src"):
        files += sorted((REPO / folder).rglob("*.py"))
    return files


def test_rows_are_well_formed() -> None:
    seen: set[str] = set()
    for row in rows():
        assert len(row) == 5, f"{row}: want program, source, package, when, what calls it (tab-separated)"
        program, source, package, when, purpose = row
        assert source in SOURCES, f"{program}: source {source!r} is not one of {sorted(SOURCES)}"
        assert when in WHEN, f"{program}: when {when!r} is not one of {sorted(WHEN)}"
        assert package and purpose, f"{program}: package and purpose are required"
        assert program not in seen, f"{program} is listed twice"
        seen.add(program)


def test_every_program_called_is_listed() -> None:
    listed = {row[0] for row in rows()}
    unlisted = [
        f"{call.path.relative_to(REPO)}:{call.line}: {call.program}"
        for path in scanned_files()
        for call in calls_in(path)
        if call.program not in listed
    ]
    assert not unlisted, "programs called but missing from scripts/programs.tsv:\n" + "\n".join(unlisted)


def test_every_listed_program_is_called() -> None:
    called = {call.program for path in scanned_files() for call in calls_in(path)}
    texts = "\n".join(path.read_text() for path in scanned_files())
    stale = [
        row[0]
        for row in rows()
        if (row[0].startswith("/") and row[0] not in texts) or (not row[0].startswith("/") and row[0] not in called)
    ]
    assert not stale, f"listed in scripts/programs.tsv but called nowhere: {stale}"


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("apt-get") is None, reason="the install step needs root on Debian"
)
def test_every_test_program_is_installed() -> None:
    """What `make programs` promises: every row for the tests is on this machine."""
    missing = []
    for program, source, package, when, _ in rows():
        if when != "test" or source == "project":
            continue
        if source == "pypi":
            present = (TOOLS_VENV / "bin" / program).exists()
        elif program.startswith("/"):
            present = Path(program).exists()
        else:
            present = shutil.which(program) is not None or any(
                Path(d, program).exists() for d in ("/usr/sbin", "/sbin")
            )
        if not present:
            missing.append(f"{program} ({package})")
    assert not missing, f"run `make programs`: {missing}"


# --- the scanner ------------------------------------------------------------------------------------


def programs_of(script: str) -> list[str]:
    return [name for name, _ in shell_programs(textwrap.dedent(script))]


def test_a_program_added_to_a_real_script_is_caught(tmp_path: Path) -> None:
    script = tmp_path / "start-test-registry.sh"
    script.write_text((REPO / "scripts" / "start-test-registry.sh").read_text() + "\nfrobnicate --all\n")
    listed = {row[0] for row in rows()}
    unlisted = {call.program for call in calls_in(script)} - listed
    assert unlisted == {"frobnicate"}


def test_a_program_added_to_a_test_is_caught(tmp_path: Path) -> None:
    module = tmp_path / "test_new.py"
    module.write_text("import subprocess\n\ndef test_x():\n    subprocess.run(\n        ['frobnicate', '-v'],\n    )\n")
    assert [(c.program, c.line) for c in calls_in(module)] == [("frobnicate", 4)]


def test_shell_command_positions() -> None:
    found = programs_of(
        """
        #!/bin/sh
        # a comment naming ghost
        x=$(dpkg-query -W foo | sort -u)   # and a trailing one: phantom
        timeout 5 docker version >/dev/null 2>&1 && setsid registry serve &
        command -v podman >/dev/null || env A=1 B=2 helper --flag
        list=(--only-binary ignored --platform x)
        for f in $(ls /etc); do wc -l "$f"; done
        case $x in a) touch a;; b|c) chown b;; esac
        start() { mkdir -p "$1"; }
        start /tmp
        "$root/bin/busybox" --list
        /usr/bin/time -v sleep 1
        cat <<EOF
        RUN not-a-host-program
        EOF
        echo `hostname`
        """
    )
    assert found == [
        "timeout", "docker", "setsid", "registry", "podman", "env", "helper", "wc", "touch", "chown", "mkdir",
        "time", "cat", "dpkg-query", "sort", "ls", "hostname",
    ]  # fmt: skip


def test_makefile_recipes_are_read_as_shell() -> None:
    shell = makefile_shell("all: x\n\t@$(BIN)/pytest -q\n\tbash scripts/a.sh\nvar := $(shell uname)\n")
    assert [name for name, _ in shell_programs(shell)] == ["bash"]


def test_python_calls_resolve_names_and_paths() -> None:
    source = textwrap.dedent(
        """
        import shutil, subprocess, os
        from pathlib import Path
        TOOL = "strace"
        VENV = Path("/v")
        def _run(argv):
            return subprocess.run(argv)
        subprocess.run([TOOL, "-f"])
        subprocess.Popen([str(VENV / "bin" / "trivy"), "image"])
        shutil.which("apparmor_parser")
        _run(["systemctl", "show"])
        for tool in ("rootlesskit", "slirp4netns"):
            shutil.which(tool)
        subprocess.run("dig +short x | head -1", shell=True)
        subprocess.run([sys.executable, "-m", "portcullis"])
        """
    )
    assert sorted(name for name, _ in python_programs(source)) == sorted(
        ["strace", "trivy", "apparmor_parser", "systemctl", "rootlesskit", "slirp4netns", "dig", "head"]
    )

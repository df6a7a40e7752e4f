"""The docs' `docker run` examples of the image work as written; the README says the truth about completion
and the licence."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
IMAGE = os.environ.get("PORTCULLIS_IMAGE", "portcullis:local")
BUSYBOX = "portcullis-test/busybox:1"
DOCS = (REPO / "README.md", REPO / "docs" / "container.md")
# every example, by the words that identify it, and what its output must show
EXPECTED = {
    "lint Dockerfile compose.yaml": ("DKR-DF-001", "DKR-CMP-001"),
    "lint --format sarif Dockerfile > lint.sarif": (),
    "rules CIS-5.5": ("CIS-5.5: Containers do not run privileged",),
    "image docker-archive:app.tar": ("DKR-IMG-", "no vulnerability database"),
}


def examples() -> list[str]:
    found = []
    for doc in DOCS:
        for block in re.findall(r"```sh\n(.*?)```", doc.read_text(), re.S):
            if "--pid host" in block:
                continue  # the host audit: tests/ship/test_image_audit.py
            found += [line.strip() for line in block.splitlines() if line.strip().startswith("docker run")]
    return found


def which_example(line: str) -> str:
    matches = [key for key in EXPECTED if key in line]
    assert len(matches) == 1, f"an example this test does not know: {line}"
    return matches[0]


@pytest.mark.engine
def test_docker_run_examples_work_as_written(tmp_path: Path) -> None:
    for needed in (IMAGE, BUSYBOX):
        if subprocess.run(["docker", "image", "inspect", needed], capture_output=True, check=False).returncode:
            pytest.fail(f"{needed} is missing: run `make image` / `make test-images`")
    (tmp_path / "Dockerfile").write_text((REPO / "tests" / "images" / "risky" / "Dockerfile").read_text())
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: nginx:1.27\n    privileged: true\n")
    subprocess.run(["docker", "save", "-o", str(tmp_path / "app.tar"), BUSYBOX], check=True, timeout=120)
    (tmp_path / "app.tar").chmod(0o644)  # as docs/container.md says
    os.chmod(tmp_path, 0o755)
    had_volume = not subprocess.run(
        ["docker", "volume", "inspect", "portcullis-db"], capture_output=True, check=False
    ).returncode
    seen = set()
    try:
        for line in examples():
            key = which_example(line)
            seen.add(key)
            labelled = line.replace("docker run --rm", "docker run --rm --label portcullis.test=1", 1)
            assert labelled != line
            result = subprocess.run(
                ["bash", "-c", labelled], cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False
            )
            assert result.returncode == 0, f"{line}\n{result.stderr}"
            for text in EXPECTED[key]:
                assert text in result.stdout + result.stderr, f"{line}: no {text!r}"
    finally:
        if not had_volume:
            subprocess.run(["docker", "volume", "rm", "portcullis-db"], capture_output=True, check=False)
    assert seen == set(EXPECTED)
    sarif = json.loads((tmp_path / "lint.sarif").read_text())
    assert sarif["version"] == "2.1.0" and sarif["runs"][0]["results"]


def test_completion_is_documented_as_the_cli_has_it() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "portcullis", "--help"],
        capture_output=True, text=True, timeout=60, check=True, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    offered = "--install-completion" in result.stdout and "--show-completion" in result.stdout
    readme = (REPO / "README.md").read_text()
    assert ("**Shell completion** is not available yet" in readme) is not offered
    if offered:
        assert "portcullis --install-completion" in readme


def test_completion_completes_commands_and_options() -> None:
    """What the installed script asks the CLI: the words that complete the one being typed."""

    def complete(words: str, index: int) -> list[str]:
        script = Path(sys.executable).parent / "portcullis"  # completion is keyed to the program's name
        done = subprocess.run(
            [str(script)], capture_output=True, text=True, timeout=60, check=False,
            env={**os.environ, "_PORTCULLIS_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(index)},
        )  # fmt: skip
        return done.stdout.split()

    assert complete("portcullis aud", 1) == ["audit"]
    assert complete("portcullis au", 1) == ["audit", "authz"]
    assert "--fail-on" in complete("portcullis audit --fa", 2)
    assert complete("portcullis db up", 2) == ["update"]


def test_license_is_the_apache_2_text_pyproject_names() -> None:
    text = (REPO / "LICENSE").read_text()
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    assert "END OF TERMS AND CONDITIONS" in text
    assert re.search(r'^license = "Apache-2.0"$', (REPO / "pyproject.toml").read_text(), re.M)
    reference = Path("/usr/share/common-licenses/Apache-2.0")
    if reference.exists():
        assert text == reference.read_text()

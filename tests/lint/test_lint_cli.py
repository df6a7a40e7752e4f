"""`portcullis lint` through the real console script: detection, formats, --fail-on, suppressions, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
PROJECT = HERE / "projects" / "override"
PORTCULLIS = Path(sys.executable).parent / "portcullis"

DOCKERFILE = """\
FROM debian:12
# portcullis ignore=DKR-DF-004
RUN curl -fsSL https://example.com/install.sh | sh
RUN wget -qO- https://example.com/other.sh | sh
USER 1000
HEALTHCHECK CMD true
"""


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PORTCULLIS), "lint", *args], capture_output=True, text=True, cwd=cwd, timeout=60, check=False
    )


def findings(result: subprocess.CompletedProcess[str]) -> list[dict[str, object]]:
    report = json.loads(result.stdout)
    assert report["command"] == "lint"
    return list(report["findings"])


def test_dockerfile_json_report_with_lines_and_inline_suppression(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(DOCKERFILE)
    result = run("--format", "json", str(dockerfile))
    assert result.returncode == 0, result.stderr
    pipes = [f for f in findings(result) if f["rule_id"] == "DKR-DF-004"]
    assert [(f["location"]["line"], f["status"], f["suppressed_by"]) for f in pipes] == [  # type: ignore[index]
        (3, "fail", "inline comment: # portcullis ignore=DKR-DF-004"),
        (4, "fail", None),
    ]
    assert {f["target"]["kind"] for f in findings(result)} == {"dockerfile"}  # type: ignore[index]


def test_fail_on_gates_the_exit_code(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(DOCKERFILE)
    assert run("--fail-on", "high", str(dockerfile)).returncode == 2  # line 4 is high and not suppressed
    dockerfile.write_text(DOCKERFILE.replace("RUN wget", "# portcullis ignore=DKR-DF-004\nRUN wget"))
    assert run("--fail-on", "high", str(dockerfile)).returncode == 0  # only suppressed high failures remain
    assert run("--fail-on", "low", str(dockerfile)).returncode == 2  # base image without digest


def test_compose_with_override_reports_the_override_line() -> None:
    result = run(
        "--format", "json", str(PROJECT / "compose.yaml"), "-c", str(PROJECT / "compose.prod.yaml"), cwd=PROJECT
    )
    assert result.returncode == 0, result.stderr
    host = [f for f in findings(result) if f["rule_id"] == "DKR-CMP-003"]
    assert [(f["location"]["path"], f["location"]["line"]) for f in host] == [  # type: ignore[index]
        (str(PROJECT / "compose.prod.yaml"), 15)
    ]
    privileged = [f for f in findings(result) if f["rule_id"] == "DKR-CMP-001"]
    assert [(f["status"], f["location"]["line"]) for f in privileged] == [("fail", 6)]  # type: ignore[index]


def test_detection_by_name_and_content(tmp_path: Path) -> None:
    odd_compose = tmp_path / "stack.conf"
    odd_compose.write_text("services:\n  a:\n    image: a:1\n    privileged: true\n")
    odd_dockerfile = tmp_path / "build.txt"
    odd_dockerfile.write_text("FROM debian:12\nEXPOSE 22\n")
    result = run("--format", "json", str(odd_compose), str(odd_dockerfile))
    assert result.returncode == 0, result.stderr
    kinds = {(f["target"]["name"], f["target"]["kind"]) for f in findings(result)}  # type: ignore[index]
    assert kinds == {(str(odd_compose), "compose"), (str(odd_dockerfile), "dockerfile")}


def test_sarif_output_has_physical_locations(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM debian\n")
    result = run("--format", "sarif", str(dockerfile))
    assert result.returncode == 0, result.stderr
    lines = {
        loc["physicalLocation"]["region"]["startLine"]
        for r in json.loads(result.stdout)["runs"][0]["results"]
        for loc in r.get("locations", [])
    }
    assert lines == {1}


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        ("FROM debian:12\nRUN <<EOF\nunterminated\n", "Dockerfile", "unterminated heredoc"),
        ("services:\n  a: [\n", "compose.yaml", "invalid YAML"),
        ("services:\n  a:\n    image: ${IMG:?IMG is required}\n", "compose.yaml", "required variable IMG"),
    ],
)
def test_unparseable_file_is_one_line_and_exit_1(tmp_path: Path, content: str, name: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    result = run(str(path))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_file_and_no_file(tmp_path: Path) -> None:
    missing = run(str(tmp_path / "nope"))
    assert missing.returncode == 1 and "no such file" in missing.stderr
    nothing = run()
    assert nothing.returncode == 1 and "nothing to lint" in nothing.stderr


def test_output_file(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM debian:12\nUSER root\n")
    out = tmp_path / "report.json"
    result = run("--format", "json", "-o", str(out), str(dockerfile))
    assert result.returncode == 0 and result.stdout == ""
    root = [f for f in json.loads(out.read_text())["findings"] if f["rule_id"] == "DKR-DF-001"]
    assert [(f["status"], f["location"]["line"]) for f in root] == [("fail", 2)]


def test_compose_extends_fails_at_the_base_line_and_honours_its_ignore_comment(tmp_path: Path) -> None:
    base = tmp_path / "base.yaml"
    base.write_text("services:\n  base:\n    image: nginx:1.27\n    privileged: true\n")
    compose = tmp_path / "compose.yaml"
    compose.write_text("services:\n  web:\n    extends: {file: base.yaml, service: base}\n")
    result = run("--format", "json", "--fail-on", "high", str(compose))
    assert result.returncode == 2, result.stderr
    privileged = [f for f in findings(result) if f["rule_id"] == "DKR-CMP-001"]
    assert [(f["status"], f["location"]["path"], f["location"]["line"]) for f in privileged] == [  # type: ignore[index]
        ("fail", str(base), 4)
    ]
    base.write_text(base.read_text().replace("    privileged", "    # portcullis ignore=DKR-CMP-001\n    privileged"))
    privileged = [f for f in findings(run("--format", "json", str(compose))) if f["rule_id"] == "DKR-CMP-001"]
    assert [f["suppressed_by"] for f in privileged] == ["inline comment: # portcullis ignore=DKR-CMP-001"]


def test_compose_extends_loop_is_one_line_and_exit_1(tmp_path: Path) -> None:
    compose = tmp_path / "compose.yaml"
    compose.write_text("services:\n  a:\n    extends: b\n  b:\n    extends: a\n")
    result = run(str(compose))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert f"compose.yaml:3: extends loop: a ({compose}) -> b ({compose}) -> a ({compose})" in result.stderr

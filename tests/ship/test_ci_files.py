"""The files users copy into their CI and hooks: they parse, and every flag they pass exists.

.pre-commit-hooks.yaml, action.yml and docs/ci/*.yml are checked against `portcullis <cmd> --help`; the
action's run step is executed with the real CLI, as a runner would run it.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PORTCULLIS = Path(sys.executable).parent / "portcullis"
FLAG = re.compile(r"(?<![\w/.-])--?[A-Za-z][\w-]*")
RISKY_DOCKERFILE = REPO / "tests" / "images" / "risky" / "Dockerfile"


def load(name: str) -> Any:
    return yaml.safe_load((REPO / name).read_text())


@functools.cache
def help_flags(command: str) -> frozenset[str]:
    result = subprocess.run(
        [sys.executable, "-m", "portcullis", command, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, "COLUMNS": "250", "NO_COLOR": "1"},
    )
    body = [line for line in result.stdout.splitlines() if "Usage:" not in line]
    flags = frozenset(FLAG.findall("\n".join(body)))
    assert "--help" in flags and "--format" in flags, f"could not read the options of {command}: {result.stdout}"
    return flags


def flags_in(words: list[str]) -> list[str]:
    return [w.split("=", 1)[0] for w in words if w.startswith("-") and FLAG.fullmatch(w.split("=", 1)[0])]


def assert_known(command: str, words: list[str], where: str) -> None:
    unknown = [flag for flag in flags_in(words) if flag not in help_flags(command)]
    assert not unknown, f"{where}: `portcullis {command}` has no {unknown}"


def test_the_flag_check_can_fail() -> None:
    with pytest.raises(AssertionError, match="--frobnicate"):
        assert_known("lint", ["--format", "sarif", "--frobnicate"], "sample")
    with pytest.raises(AssertionError, match="--host"):
        assert_known("lint", ["--host", "unix:///x"], "sample")  # an audit flag, not a lint one


# --- pre-commit -------------------------------------------------------------------------------------


def test_pre_commit_hooks() -> None:
    hooks = load(".pre-commit-hooks.yaml")
    assert [h["id"] for h in hooks] == ["portcullis-dockerfile", "portcullis-compose", "portcullis-dockerfile-docker"]
    for hook in hooks:
        assert {"id", "name", "entry", "language", "files"} <= set(hook), hook["id"]
        entry = shlex.split(hook["entry"])
        if hook["language"] == "docker_image":
            assert entry[0] == os.environ.get("PORTCULLIS_IMAGE", "portcullis:local")
            entry = entry[1:]
        else:
            assert hook["language"] == "python" and entry[0] == "portcullis"
            entry = entry[1:]
        assert entry[0] == "lint", hook["id"]
        assert_known("lint", [*entry[1:], *hook.get("args", [])], hook["id"])
        assert "--fail-on" in hook["args"], f"{hook['id']}: without --fail-on, lint never fails a commit"


@pytest.mark.parametrize(
    ("hook", "name", "matches"),
    [
        ("portcullis-dockerfile", "Dockerfile", True),
        ("portcullis-dockerfile", "svc/api/Dockerfile.dev", True),
        ("portcullis-dockerfile", "build/app.Dockerfile", True),
        ("portcullis-dockerfile", "Containerfile", True),
        ("portcullis-dockerfile", "docs/Dockerfile.md", True),  # hadolint's pattern has the same reach
        ("portcullis-dockerfile", "README.md", False),
        ("portcullis-dockerfile", "compose.yaml", False),
        ("portcullis-dockerfile", "MyDockerfileNotes.txt", False),
        ("portcullis-compose", "compose.yaml", True),
        ("portcullis-compose", "deploy/docker-compose.prod.yml", True),
        ("portcullis-compose", "compose.override.yaml", True),
        ("portcullis-compose", "config.yaml", False),
        ("portcullis-compose", "Dockerfile", False),
        ("portcullis-compose", "mycompose.yaml", False),
    ],
)
def test_hook_file_patterns(hook: str, name: str, matches: bool) -> None:
    pattern = next(h["files"] for h in load(".pre-commit-hooks.yaml") if h["id"] == hook)
    assert bool(re.search(pattern, name)) is matches  # pre-commit applies `files` with re.search


def test_the_hook_fails_a_commit_on_a_risky_dockerfile(tmp_path: Path) -> None:
    """What pre-commit runs: entry + args + the staged file names."""
    hook = load(".pre-commit-hooks.yaml")[0]
    argv = [str(PORTCULLIS), *shlex.split(hook["entry"])[1:], *hook["args"], "Dockerfile"]
    (tmp_path / "Dockerfile").write_text(RISKY_DOCKERFILE.read_text())
    risky = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert risky.returncode == 2, risky.stderr
    (tmp_path / "Dockerfile").write_text(
        'FROM scratch\nCOPY --chown=65534:65534 app /app\nUSER 65534\nHEALTHCHECK CMD ["/app", "--health"]\n'
    )
    clean = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert clean.returncode == 0, clean.stdout


# --- the GitHub Action ------------------------------------------------------------------------------


def action() -> dict[str, Any]:
    loaded: dict[str, Any] = load("action.yml")
    return loaded


def run_step() -> dict[str, Any]:
    step: dict[str, Any] = next(s for s in action()["runs"]["steps"] if s.get("id") == "run")
    return step


def test_action_is_composite_and_mirrors_the_cli() -> None:
    spec = action()
    assert spec["runs"]["using"] == "composite"
    assert set(spec["inputs"]) == {"command", "target", "format", "output", "fail-on", "args"}
    text = (REPO / "action.yml").read_text()
    used = set(re.findall(r"\$\{\{\s*inputs\.([\w-]+)\s*\}\}", text))
    assert used == set(spec["inputs"]), (
        f"declared but unused: {set(spec['inputs']) - used}; undeclared: {used - set(spec['inputs'])}"
    )
    assert "upload" not in text.lower().replace("uploads nothing", "").replace("sarif upload step", "")
    script = run_step()["run"]
    for command in ("lint", "image", "audit"):
        assert_known(command, ["--format", "--output", "--fail-on"], "action.yml")
    assert set(re.findall(r"--[a-z][a-z-]*", script)) == {"--format", "--output", "--fail-on", "--host"}
    assert_known("audit", ["--host"], "action.yml")


def run_action(tmp_path: Path, inputs: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], str]:
    """The run step as a runner runs it: env from the inputs (defaults filled in), the venv in $RUNNER_TEMP."""
    spec = action()
    runner_temp = tmp_path / "runner"
    (runner_temp / "portcullis" / "bin").mkdir(parents=True, exist_ok=True)
    if not (runner_temp / "portcullis" / "bin" / "portcullis").exists():
        (runner_temp / "portcullis" / "bin" / "portcullis").symlink_to(PORTCULLIS)
    output_file = tmp_path / "github_output"
    values = {name: inputs.get(name, spec["inputs"][name]["default"]) for name in spec["inputs"]}
    env = {**os.environ, "RUNNER_TEMP": str(runner_temp), "GITHUB_OUTPUT": str(output_file)}
    for key, expression in run_step()["env"].items():
        name = re.fullmatch(r"\$\{\{\s*inputs\.([\w-]+)\s*\}\}", expression)
        assert name, f"{key}: {expression}"
        env[key] = values[name.group(1)]
    result = subprocess.run(
        ["bash", "-e", "-c", run_step()["run"]],  # GitHub runs `shell: bash` as bash -e {0}
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return result, output_file.read_text() if output_file.exists() else ""


def test_action_lints_with_its_defaults_into_sarif(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(RISKY_DOCKERFILE.read_text())
    result, outputs = run_action(tmp_path, {})
    assert result.returncode == 0, result.stderr
    assert outputs == "exit-code=0\n"
    sarif = yaml.safe_load((tmp_path / "portcullis.sarif").read_text())  # JSON is YAML
    assert sarif["version"] == "2.1.0"
    assert any(r["ruleId"].startswith("DKR-DF-") for r in sarif["runs"][0]["results"])


def test_action_fail_on_and_args(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(RISKY_DOCKERFILE.read_text())
    failing, outputs = run_action(tmp_path, {"fail-on": "low", "format": "json", "output": "lint.json"})
    assert failing.returncode == 2 and outputs == "exit-code=2\n"
    only, _ = run_action(tmp_path, {"format": "json", "output": "one.json", "args": "--select DKR-DF-001"})
    assert only.returncode == 0, only.stderr
    report = yaml.safe_load((tmp_path / "one.json").read_text())
    assert {f["rule_id"] for f in report["findings"]} == {"DKR-DF-001"}
    bad, _ = run_action(tmp_path, {"command": "frobnicate"})
    assert bad.returncode == 1 and "command must be lint, image or audit" in bad.stdout


# --- the copy-paste CI examples ---------------------------------------------------------------------


def test_github_example_uses_the_action_with_its_inputs() -> None:
    workflow = load("docs/ci/github-actions.yml")
    inputs = set(action()["inputs"])
    uploads = 0
    for job_name, job in workflow["jobs"].items():
        outputs: list[str] = []
        for step in job["steps"]:
            uses = step.get("uses", "")
            if uses.split("@")[0].endswith("/portcullis"):
                given = step.get("with", {})
                assert set(given) <= inputs, f"{job_name}: unknown inputs {set(given) - inputs}"
                assert given["format"] == "sarif"
                assert_known(given["command"], shlex.split(given.get("args", "")), f"{job_name} args")
                outputs.append(given["output"])
            elif uses.startswith("github/codeql-action/upload-sarif@"):
                assert step["with"]["sarif_file"] in outputs, f"{job_name}: uploads a file no step wrote"
                assert step.get("if") == "always()", f"{job_name}: the upload must run when fail-on fails the job"
                uploads += 1
        if outputs:
            assert job["permissions"]["security-events"] == "write", job_name
    assert uploads == 2


def portcullis_commands(script_lines: list[str]) -> list[list[str]]:
    commands = []
    for line in script_lines:
        for part in line.split("|"):
            words = shlex.split(part)
            if words and words[0] == "portcullis":
                commands.append(words[1:])
    return commands


def test_gitlab_example_flags_and_reports() -> None:
    pipeline = load("docs/ci/gitlab-ci.yml")
    jobs = {name: job for name, job in pipeline.items() if isinstance(job, dict) and "script" in job}
    assert set(jobs) == {"portcullis-lint", "portcullis-image"}
    for name, job in jobs.items():
        commands = portcullis_commands(job["script"])
        assert commands, name
        written = {}
        for words in commands:
            assert_known(words[0], words[1:], name)
            written[words[words.index("--format") + 1]] = words[words.index("--output") + 1]
        assert job["artifacts"]["reports"]["junit"] == written["junit"], name
        assert job["artifacts"]["when"] == "always"
        assert set(job["artifacts"]["paths"]) <= set(written.values())
        assert job["image"]["entrypoint"] == [""], f"{name}: the image's entrypoint is portcullis itself"

"""Crafted compose files and Dockerfiles, generated here: each ends in one clear line (exit 1) or a verdict,
within a memory cap and a timeout, never a traceback or an "internal error"."""

from __future__ import annotations

import json
from pathlib import Path

from portcullis.collect.compose import MAX_DEPTH, MAX_NODES
from support.bounded import run_bounded


def _alias_bomb(where: str) -> str:
    """~500 bytes that expand to 9**9 strings once every alias is copied."""
    lines = ['x0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"x{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    body = {"top": "services:\n  web:\n    image: nginx\n", "command": "services:\n  web:\n    command: *a9\n"}
    return "\n".join(lines) + "\n" + body[where]


def test_compose_alias_bomb_is_refused(tmp_path: Path) -> None:
    for where in ("top", "command"):
        compose = tmp_path / f"{where}.yaml"
        compose.write_text(_alias_bomb(where))
        assert len(compose.read_bytes()) < 600
        result = run_bounded("lint", str(compose))
        assert f"more than {MAX_NODES} values once YAML aliases are expanded" in result.one_error_line()


def test_compose_nested_100k_levels_is_refused(tmp_path: Path) -> None:
    for name, text in {
        "flow.yaml": "services: " + "[" * 100_000 + "]" * 100_000 + "\n",
        "block.yaml": "services:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 3000)) + "  " * 3000 + "v: 1\n",
        "command.yaml": "services:\n  web:\n    command: " + "{a: " * 100_000 + "1" + "}" * 100_000 + "\n",
    }.items():
        compose = tmp_path / name
        compose.write_text(text)
        assert f"YAML nested deeper than {MAX_DEPTH} levels" in run_bounded("lint", str(compose)).one_error_line()


def test_compose_aliases_within_bounds_still_lint(tmp_path: Path) -> None:
    compose = tmp_path / "compose.yaml"
    compose.write_text(
        "x-base: &base\n  image: nginx:1.27\n  privileged: true\nservices:\n"
        + "".join(f"  s{i}:\n    <<: *base\n" for i in range(200))
    )
    result = run_bounded("lint", str(compose), "--select", "DKR-CMP", "--format", "json", "--fail-on", "low")
    assert result.code == 2, result.stderr
    privileged = [f for f in json.loads(result.stdout)["findings"] if f["rule_id"] == "DKR-CMP-001"]
    assert len(privileged) == 200  # `privileged: true`, merged into every service


def test_multi_megabyte_dockerfile_lints_in_linear_time(tmp_path: Path) -> None:
    # Each finding used to rescan every instruction for its inline ignore: 2 MB took minutes, now seconds.
    block = "# portcullis ignore=DKR-DF-013\nRUN true \\\n    && apt-get install -y curl{0}\n"
    dockerfile = tmp_path / "Dockerfile"
    count = 2_000_000 // len(block.format(0))
    dockerfile.write_text("FROM ubuntu:24.04\n" + "".join(block.format(i) for i in range(count)))
    result = run_bounded("lint", str(dockerfile), "--select", "DKR-DF-013", "--format", "json", timeout=90)
    assert result.code == 0, result.stderr
    findings = json.loads(result.stdout)["findings"]
    # The comment above each instruction silences the finding on its second line.
    assert len(findings) == count and all(f["suppressed_by"] for f in findings)


def test_inputs_the_fuzzer_found(tmp_path: Path) -> None:
    cases = {
        "compose.yaml": ("? services: {}\n", "a mapping or sequence used as a key"),
        "Dockerfile": ("\\\n", "a line continuation with no instruction"),
        "a.Dockerfile": ("FROM alpine:3.20\nHEALTHCHECK à\n", "a non-ASCII character where BuildKit cannot take it"),
    }
    for name, (text, message) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        assert message in run_bounded("lint", str(path)).one_error_line()

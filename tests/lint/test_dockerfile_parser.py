"""The Dockerfile loader: BuildKit parsing plus the physical line of every shell line."""

from __future__ import annotations

from pathlib import Path

import pytest

from portcullis.collect import CollectionError
from portcullis.collect.dockerfile import load_dockerfile, parse_dockerfile


def test_continued_run_keeps_each_physical_line() -> None:
    text = (
        "FROM debian:12\n"
        "RUN --mount=type=cache,target=/var/cache/apt apt-get update \\\n"
        "# a comment BuildKit drops\n"
        "\n"
        " && apt-get install -y curl\n"
    )
    run = parse_dockerfile(text, "Dockerfile").stages[0].instructions[0]
    assert (run.start_line, run.end_line) == (2, 5)
    assert run.flag("mount") == "type=cache,target=/var/cache/apt"
    assert [(s.line, s.text.strip(), s.continues) for s in run.script] == [
        (2, "apt-get update", True),
        (5, "&& apt-get install -y curl", False),
    ]


def test_heredoc_body_lines_are_numbered_and_comments_skipped() -> None:
    text = "# syntax=docker/dockerfile:1\nFROM debian:12\nRUN <<EOF\nset -e\n# not run\ncurl -o /x https://e.x\nEOF\n"
    run = parse_dockerfile(text, "Dockerfile").stages[0].instructions[0]
    assert run.heredocs[0].first_line == 4
    assert [(s.line, s.text) for s in run.script] == [(4, "set -e"), (6, "curl -o /x https://e.x")]


def test_heredoc_for_another_interpreter_is_not_shell() -> None:
    text = "FROM python:3\nRUN python3 <<PY\nimport os\nPY\nRUN <<EOF\n#!/usr/bin/env python3\nprint(1)\nEOF\n"
    runs = parse_dockerfile(text, "Dockerfile").stages[0].instructions
    assert [s.text.strip() for s in runs[0].script] == ["python3"]
    assert runs[1].script == ()


def test_escape_directive_backtick() -> None:
    text = "# escape=`\nFROM mcr.microsoft.com/windows/servercore:ltsc2022\nRUN echo a `\n && echo b\n"
    run = parse_dockerfile(text, "Dockerfile").stages[0].instructions[0]
    assert [(s.line, s.continues) for s in run.script] == [(3, True), (4, False)]


def test_stages_args_and_ignores() -> None:
    text = (
        "ARG BASE=debian:12\n"
        "FROM --platform=linux/amd64 ${BASE} AS build\n"
        "# portcullis ignore=DKR-DF-008, dkr-df-004\n"
        "RUN sudo true\n"
        "FROM build\n"
    )
    facts = parse_dockerfile(text, "Dockerfile")
    assert facts.global_args == {"BASE": "debian:12"}
    assert [(s.index, s.base, s.base_raw, s.name, s.platform) for s in facts.stages] == [
        (0, "debian:12", "${BASE}", "build", "linux/amd64"),
        (1, "build", "build", None, None),
    ]
    assert facts.ignores == {4: ("DKR-DF-008", "DKR-DF-004")}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "file with no instructions"),
        ("FROM debian:12\nRUN <<EOF\nnever closed\n", "unterminated heredoc"),
        ("FROM debian:12\nFROBNICATE x\n", "Dockerfile:2: unknown instruction 'FROBNICATE'"),
        ("RUN echo no base\n", "Dockerfile:1: RUN before the first FROM"),
        ("ARG A=1\n", "no FROM instruction"),
        ("FROM a b c d\n", "FROM takes an image"),
    ],
)
def test_invalid_dockerfiles_give_one_clear_error(text: str, message: str) -> None:
    with pytest.raises(CollectionError) as caught:
        parse_dockerfile(text, "Dockerfile")
    assert message in str(caught.value)


def test_binary_file_is_refused(tmp_path: Path) -> None:
    blob = tmp_path / "Dockerfile"
    blob.write_bytes(b"\x7fELF\x02\x01\x01\x00\xff\xfe")
    with pytest.raises(CollectionError, match="not a Dockerfile"):
        load_dockerfile(blob)

"""What every `harden` command shares: the --host and --label options, label parsing, writing the result."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from portcullis.cli.common import die

HostOption = Annotated[
    str | None,
    typer.Option("--host", "-H", help="engine address (default: DOCKER_HOST, the active context, the local socket)"),
]
LabelOption = Annotated[
    list[str] | None,
    typer.Option("--label", help="extra KEY=VALUE label on every container the verification starts"),
]


def parse_labels(values: list[str] | None) -> dict[str, str]:
    labels = {}
    for value in values or []:
        key, sep, text = value.partition("=")
        if not sep or not key:
            die(f"--label {value!r} is not KEY=VALUE")
        labels[key] = text
    return labels


def write_stdout(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()

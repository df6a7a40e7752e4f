"""Secrets in build lines never reach a report: the line each layer carries is masked at read time, and every
rule that quotes a build step quotes the masked text, while CIS-4.10 still finds and reports the secret."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from image_builders import Image, M, docker_archive, layer_tar

from portcullis.collect.image import analyse_image
from portcullis.model.redaction import redact_line

SECRET = "hunter2-do-not-print"


@pytest.mark.parametrize(
    ("line", "masked"),
    [
        ("/bin/sh -c echo API_TOKEN=abc > /app/.env", "/bin/sh -c echo API_TOKEN=<redacted> > /app/.env"),
        ("|2 DB_PASSWORD=pw VERSION=1 /bin/sh -c make", "|2 DB_PASSWORD=<redacted> VERSION=1 /bin/sh -c make"),
        ("curl https://bob:pw@example.com/i.sh | sh", "curl https://bob:<redacted>@example.com/i.sh | sh"),
        ('ENV API_KEY="two words" MODE=prod', "ENV API_KEY=<redacted> MODE=prod"),
        ("ENV PASSWORD_FILE=/run/secrets/db", "ENV PASSWORD_FILE=/run/secrets/db"),  # a pointer, not a secret
        ("ENV TOKEN=$FROM_BUILD_ARG", "ENV TOKEN=$FROM_BUILD_ARG"),  # a reference, not a literal
        ("RUN apt-get update", "RUN apt-get update"),
    ],
)
def test_redact_line(line: str, masked: str) -> None:
    assert redact_line(line) == masked


def test_secret_in_a_layer_line_is_masked_everywhere(tmp_path: Path) -> None:
    lines = [
        f"/bin/sh -c echo DB_PASSWORD={SECRET} > /app/settings && curl https://bob:{SECRET}@example.com/x | sh",
        "/bin/sh -c true",
    ]
    image = Image(layers=[layer_tar(M("app/settings", b"x")), layer_tar(M("app/other", b"y"))], created_by=lines)
    archive = docker_archive(tmp_path / "img.tar", image)
    facts = analyse_image(f"docker-archive:{archive}")
    assert facts.content is not None
    assert SECRET not in facts.content.layers[0].created_by
    assert "DB_PASSWORD=<redacted>" in facts.content.layers[0].created_by
    out = subprocess.run(
        [sys.executable, "-m", "portcullis", "image", f"docker-archive:{archive}", "-f", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert SECRET not in out.stdout
    findings = {f["rule_id"]: f for f in json.loads(out.stdout)["findings"]}
    assert findings["CIS-4.10"]["status"] == "fail"  # the secret is still found, only never printed
    assert findings["DKR-IMG-005"]["status"] == "fail"
    [hit] = findings["DKR-IMG-005"]["evidence"]["history"]
    assert hit["layer"]["index"] == 0  # attribution still works on the masked line

"""Issue 13: every secret form a build line or Dockerfile line can carry is masked in all five report formats,
through the one pass every renderer goes through (cli.common.emit), while the secret rules still report it."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from image_builders import Image, M, docker_archive, layer_tar

from portcullis.cli.common import OutputFormat, emit
from portcullis.model.redaction import redact_line, secret_kinds
from portcullis.pipelines.image import ImageSource, image_report, read_image
from portcullis.pipelines.lint import lint_report

FORMATS = [OutputFormat(name) for name in ("text", "json", "sarif", "junit", "html")]

# (build line, the secret value in it). Every line also pipes a download into a shell, so DKR-IMG-005 quotes it.
FORMS = [
    (
        "/bin/sh -c printf '-----BEGIN RSA PRIVATE KEY-----\\nMIIEpAIBAAKCAQEAs3cr3tKeyB0dy\\n"
        "-----END RSA PRIVATE KEY-----\\n' > /root/.ssh/id_rsa && curl -s https://get.example/i | sh",
        "MIIEpAIBAAKCAQEAs3cr3tKeyB0dy",
    ),
    ("/bin/sh -c echo AKIAZ7QRSTUVWXYZ2345 > /k && curl -s https://get.example/i | sh", "AKIAZ7QRSTUVWXYZ2345"),
    ("/bin/sh -c curl -u alice:CurlPw0rd9 https://get.example/i | sh", "CurlPw0rd9"),
    ("/bin/sh -c docker login -p LoginPw0rd8 registry.example && curl https://get.example/i | sh", "LoginPw0rd8"),
    ("/bin/sh -c mysql -uroot -pMysqlPw0rd7 db < /x.sql && curl https://get.example/i | sh", "MysqlPw0rd7"),
    ("/bin/sh -c htpasswd -bc /etc/htpw bob HtPw0rd6 && curl https://get.example/i | sh", "HtPw0rd6"),
    (
        "/bin/sh -c aws configure set aws_secret_access_key wJalrXUtnFEMIK7MDENGbPxRfiCY5 && "
        "curl https://get.example/i | sh",
        "wJalrXUtnFEMIK7MDENGbPxRfiCY5",
    ),
    ("/bin/sh -c printf 'password: YamlPw0rd5\\n' > /c.yml && curl https://get.example/i | sh", "YamlPw0rd5"),
    (
        """/bin/sh -c echo '{"password": "JsonPw0rd4"}' > /c.json && curl https://get.example/i | sh""",
        "JsonPw0rd4",
    ),
]
IDS = ["pem", "aws-key-id", "curl-u", "docker-login-p", "mysql-p", "htpasswd-b", "aws-configure", "yaml", "json"]


def rendered(report: object, tmp_path: Path) -> dict[str, str]:
    out = {}
    for fmt in FORMATS:
        path = tmp_path / f"report.{fmt.value}"
        emit(report, fmt, path, None)  # type: ignore[arg-type]
        out[fmt.value] = path.read_text(encoding="utf-8")
    return out


@pytest.mark.parametrize(("line", "secret"), FORMS, ids=IDS)
def test_the_detector_finds_and_masks_the_form(line: str, secret: str) -> None:
    assert secret in line
    assert secret_kinds(line)
    assert secret not in redact_line(line)


@pytest.mark.parametrize(("line", "secret"), FORMS, ids=IDS)
def test_image_report_masks_the_form_in_every_format(line: str, secret: str, tmp_path: Path) -> None:
    image = Image(layers=[layer_tar(M("app/x", b"x"))], created_by=[line])
    archive = docker_archive(tmp_path / "img.tar", image)
    source = ImageSource(f"docker-archive:{archive}")
    content = read_image(source).content
    assert content is not None
    assert secret not in content.layers[0].created_by  # the line SBOMs and layer evidence carry, masked at read time
    report = image_report(source, select=["CIS-4.10", "DKR-IMG-005"])
    outputs = rendered(report, tmp_path)
    for fmt, text in outputs.items():
        assert secret not in text, fmt
        assert "CIS-4.10" in text and "DKR-IMG-005" in text, fmt
    findings = {f["rule_id"]: f for f in json.loads(outputs["json"])["findings"]}
    assert findings["CIS-4.10"]["status"] == "fail"  # still detected, reported without the value
    assert findings["DKR-IMG-005"]["status"] == "fail"
    assert "<redacted>" in findings["DKR-IMG-005"]["evidence"]["history"][0]["created_by"]


# The lint rule that quotes a Dockerfile line (DKR-DF-004, download piped to a shell) quotes the download command.
LINT_FORMS = [
    ("curl -fsSL -u alice:CurlPw0rd9 https://get.example/i | sh", "CurlPw0rd9"),
    ("curl -fsSL https://bob:UrlPw0rd3@get.example/i | sh", "UrlPw0rd3"),
    ("curl -fsSL https://get.example/i?id=AKIAZ7QRSTUVWXYZ2345 | sh", "AKIAZ7QRSTUVWXYZ2345"),
    ("curl -fsSL --user carol:UserPw0rd2 https://get.example/i | bash", "UserPw0rd2"),
]


@pytest.mark.parametrize(("run", "secret"), LINT_FORMS, ids=["curl-u", "url", "aws-key-id", "curl-user"])
def test_lint_masks_the_quoted_dockerfile_line(run: str, secret: str, tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(f"FROM busybox:1.36\nUSER app\nRUN {run}\n", encoding="utf-8")
    report = lint_report([dockerfile], [], None, None, None)
    outputs = rendered(report, tmp_path)
    for fmt, text in outputs.items():
        assert secret not in text, fmt
        assert "DKR-DF-004" in text, fmt
    [finding] = [f for f in json.loads(outputs["json"])["findings"] if f["rule_id"] == "DKR-DF-004"]
    assert finding["status"] == "fail"
    assert "<redacted>" in finding["evidence"]["command"]


def test_engine_image_after_docker_load_is_masked(tmp_path: Path) -> None:
    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode != 0:
        pytest.skip("no Docker engine")
    tag = f"portcullis-test/secret-forms:{uuid.uuid4().hex[:8]}"
    layers = [layer_tar(M(f"app/{i}", str(i).encode())) for i in range(len(FORMS))]
    archive = docker_archive(tmp_path / "img.tar", Image(layers=layers, created_by=[f[0] for f in FORMS]), tags=[tag])
    subprocess.run(["docker", "load", "-i", str(archive)], capture_output=True, check=True, timeout=120)
    try:
        for fmt in FORMATS:
            out = subprocess.run(
                [sys.executable, "-m", "portcullis", "image", f"engine:{tag}", "--format", fmt.value],
                capture_output=True,
                text=True,
                timeout=180,
                check=False,
            )
            assert out.returncode == 0, out.stderr
            for _, secret in FORMS:
                assert secret not in out.stdout + out.stderr, (fmt, secret)
            assert "CIS-4.10" in out.stdout, fmt
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, check=False)

"""Every image source against the real engine and a real local registry (scripts/start-test-registry.sh).

The test images come from tests/images/*/Dockerfile (scripts/build-test-images.sh); `make test-images`
builds them and pushes them to 127.0.0.1:5000 (anonymous) and busybox to 127.0.0.1:5001 (basic auth).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path

import pytest
import requests
from image_builders import OciLayout, image_from_docker_save

from portcullis.collect.image import Credentials, ImageError, ImageOptions, Platform, analyse_image
from portcullis.model.facts import ImageFacts

pytestmark = pytest.mark.engine
RISKY = "portcullis-test/risky:1"
HARDENED = "portcullis-test/hardened:1"
BUSYBOX = "portcullis-test/busybox:1"
REGISTRY = "127.0.0.1:5000"
AUTH_REGISTRY = "127.0.0.1:5001"


def _have(image: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode == 0


def _registry_up(host: str) -> bool:
    try:
        return requests.get(f"http://{host}/v2/", timeout=2).status_code in (200, 401)
    except requests.RequestException:
        return False


needs_images = pytest.mark.skipif(
    not all(_have(i) for i in (RISKY, HARDENED, BUSYBOX)), reason="run `make test-images` first"
)
needs_registry = pytest.mark.skipif(
    not (_registry_up(REGISTRY) and _registry_up(AUTH_REGISTRY)), reason="run scripts/start-test-registry.sh first"
)


@pytest.fixture(scope="module")
def risky_save(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("save") / "risky.tar"
    subprocess.run(["docker", "save", "-o", str(path), RISKY], check=True)
    return path


@pytest.fixture(scope="module")
def risky_engine() -> ImageFacts:
    return analyse_image(f"engine:{RISKY}")


def summary(facts: ImageFacts) -> dict[str, object]:
    content = facts.content
    assert content is not None
    return {
        "id": facts.id,
        "layers": [layer.diff_id for layer in content.layers],
        "files": content.file_count,
        "setuid": [(e.path, e.layer.index) for e in content.setuid_files],
        "secrets": [(e.path, e.layer.index, e.removed_in.index if e.removed_in else None) for e in content.secrets],
    }


@needs_images
def test_engine_source_attributes_every_planted_problem(risky_engine: ImageFacts) -> None:
    content = risky_engine.content
    assert content is not None and content.source == "engine"
    assert RISKY in risky_engine.repo_tags
    created = {layer.index: layer.created_by for layer in content.layers}
    [key] = content.secrets
    assert key.path == "/root/.ssh/id_ed25519" and key.detail == "private-key"
    assert "BEGIN OPENSSH PRIVATE KEY" in created[key.layer.index]
    assert key.removed_in is not None and "rm /root/.ssh/id_ed25519" in key.removed_in.created_by
    suid = next(e for e in content.setuid_files if e.path == "/usr/local/bin/suid-helper")
    assert suid.mode == 0o4755 and "suid-helper" in suid.layer.created_by
    assert [(e.path, e.detail) for e in content.notable_binaries] == [("/usr/bin/sudo", "sudo")]
    [drop] = content.world_writable_dirs
    assert drop.path == "/srv/drop" and drop.mode == 0o777 and "chmod 0777" in drop.layer.created_by
    assert sorted(e.path for e in content.package_caches) == ["/root/.cache/pip", "/var/cache/apt/archives"]
    assert sorted((risky_engine.config.exposed_ports or {}).keys()) == ["22/tcp", "80/tcp", "8080/tcp"]


@needs_images
def test_docker_archive_matches_the_engine(risky_engine: ImageFacts, risky_save: Path) -> None:
    from_file = analyse_image(f"docker-archive:{risky_save}")
    assert from_file.content is not None and from_file.content.source == "docker-archive"
    assert summary(from_file) == summary(risky_engine)


@needs_images
def test_oci_dir_tar_and_multiplatform_from_docker_save(
    risky_engine: ImageFacts, risky_save: Path, tmp_path: Path
) -> None:
    single = OciLayout()
    single.add(image_from_docker_save(risky_save), "gzip")
    from_dir = analyse_image(f"oci:{single.write_dir(tmp_path / 'layout')}")
    assert summary(from_dir) == summary(risky_engine)
    busybox_save = tmp_path / "busybox.tar"
    subprocess.run(["docker", "save", "-o", str(busybox_save), BUSYBOX], check=True)
    multi = OciLayout()
    multi.add_multiplatform(
        [image_from_docker_save(risky_save, "amd64"), image_from_docker_save(busybox_save, "arm64")], "zstd"
    )
    archive = multi.write_tar(tmp_path / "multi.tar")
    amd = analyse_image(f"oci-archive:{archive}", ImageOptions(platform=Platform.parse("linux/amd64")))
    arm = analyse_image(f"oci-archive:{archive}", ImageOptions(platform=Platform.parse("linux/arm64")))
    assert summary(amd)["layers"] == summary(risky_engine)["layers"]
    assert arm.content is not None and len(arm.content.layers) == 1 and arm.content.secrets == []
    result = subprocess.run(
        [sys.executable, "-m", "portcullis", "image", str(archive), "--platform", "linux/arm64", "-f", "json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "1 layers" in result.stderr


@needs_images
def test_rootfs_dir_from_an_exported_container(tmp_path: Path) -> None:
    name = f"portcullis-img-{uuid.uuid4().hex[:8]}"
    subprocess.run(
        ["docker", "create", "--label", "portcullis.test=1", "--name", name, BUSYBOX], check=True, capture_output=True
    )
    try:
        export = tmp_path / "export.tar"
        subprocess.run(["docker", "export", "-o", str(export), name], check=True)
        root = tmp_path / "root"
        root.mkdir()
        with tarfile.open(export) as tar:
            tar.extractall(root, filter="tar")
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    (root / "app").mkdir()
    (root / "app" / ".env").write_text("TOKEN=x\n")
    (root / "shared").mkdir(mode=0o777)
    os.chmod(root / "shared", 0o777)
    facts = analyse_image(f"dir:{root}")
    assert facts.content is not None and facts.content.source == "dir"
    assert facts.content.file_count > 250  # the busybox applet links
    assert [(e.path, e.detail) for e in facts.content.secrets] == [("/app/.env", "dotenv-file")]
    assert [e.path for e in facts.content.world_writable_dirs] == ["/shared"]


@needs_images
@needs_registry
def test_registry_anonymous_matches_the_engine(risky_engine: ImageFacts) -> None:
    options = ImageOptions(insecure_registries=[REGISTRY])
    facts = analyse_image(f"registry:{REGISTRY}/{RISKY}", options)
    assert facts.content is not None and facts.content.source == "registry"
    assert summary(facts)["layers"] == summary(risky_engine)["layers"]
    assert summary(facts)["secrets"] == summary(risky_engine)["secrets"]
    assert facts.repo_digests and facts.repo_digests[0].startswith(f"{REGISTRY}/portcullis-test/risky@sha256:")
    with pytest.raises(ImageError, match=r"TLS to 127.0.0.1:5000 failed.*--insecure-registry"):
        analyse_image(f"registry:{REGISTRY}/{RISKY}")  # TLS by default, plain HTTP only when named
    with pytest.raises(ImageError, match="is not in registry"):
        analyse_image(f"registry:{REGISTRY}/portcullis-test/absent:1", options)


@needs_images
@needs_registry
def test_registry_basic_auth() -> None:
    ref = f"registry:{AUTH_REGISTRY}/{BUSYBOX}"
    good = ImageOptions(insecure_registries=[AUTH_REGISTRY], credentials=Credentials("portcullis", "portcullis-test"))
    facts = analyse_image(ref, good)
    assert summary(facts)["layers"] == summary(analyse_image(f"engine:{AUTH_REGISTRY}/{BUSYBOX}"))["layers"]
    with pytest.raises(ImageError, match="credentials needed"):
        analyse_image(ref, ImageOptions(insecure_registries=[AUTH_REGISTRY]))
    with pytest.raises(ImageError, match="wrong credentials"):
        analyse_image(
            ref, ImageOptions(insecure_registries=[AUTH_REGISTRY], credentials=Credentials("portcullis", "no"))
        )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "portcullis",
            "image",
            ref,
            "--insecure-registry",
            AUTH_REGISTRY,
            "--username",
            "portcullis",
            "--password-stdin",
            "--select",
            "DKR-IMG-002",
            "-f",
            "json",
        ],
        input="portcullis-test\n",
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["findings"][0]["status"] == "pass"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portcullis", "image", *args], capture_output=True, text=True, timeout=300
    )


@needs_images
def test_cli_risky_fails_every_own_rule_with_layers(risky_save: Path) -> None:
    # the saved archive carries tags only (the engine gains RepoDigests once the image is pushed)
    result = _cli(str(risky_save), "--select", "DKR-IMG", "-f", "json", "--fail-on", "high", "--no-vulns")
    assert result.returncode == 2, result.stderr
    findings = {f["rule_id"]: f for f in json.loads(result.stdout)["findings"]}
    # Debian 12 still gets (LTS) security fixes, so only the OS-support rule passes
    assert {rule: f["status"] for rule, f in findings.items()} == {
        **{f"DKR-IMG-00{n}": "fail" for n in range(1, 9)},
        "DKR-IMG-009": "pass",
        "DKR-IMG-010": "pass",  # 101 bytes (the key) wasted: efficiency 99.9999 %
        "DKR-IMG-011": "not_applicable",  # no --license-deny
    }
    secret = findings["DKR-IMG-001"]["evidence"]["paths"][0]
    assert secret["path"] == "/root/.ssh/id_ed25519"
    assert (
        set(secret["layer"]) == {"index", "diff_id", "created_by"}
        and secret["removed_in"]["index"] == secret["layer"]["index"] + 1
    )
    assert findings["DKR-IMG-007"]["evidence"]["ports"] == ["22/tcp", "80/tcp"]
    assert "example.invalid/install.sh | sh" in findings["DKR-IMG-005"]["evidence"]["history"][0]["created_by"]


@needs_images
def test_cli_hardened_passes_every_own_rule() -> None:
    result = _cli(f"engine:{HARDENED}", "--select", "DKR-IMG", "-f", "json", "--fail-on", "low", "--no-vulns")
    assert result.returncode == 0, result.stdout
    statuses = {f["rule_id"]: f["status"] for f in json.loads(result.stdout)["findings"]}
    # busybox has no /etc/os-release: its OS support cannot be judged
    assert statuses == {
        **{f"DKR-IMG-00{n}": "pass" for n in range(1, 9)},
        "DKR-IMG-009": "skip",
        "DKR-IMG-010": "pass",
        "DKR-IMG-011": "not_applicable",
    }


def test_cli_bad_references_are_one_line_errors(tmp_path: Path) -> None:
    for args, fragment in (
        (["registry:Not A Ref"], "is not an image reference"),
        (["oci:" + str(tmp_path / "nope")], "is not an OCI layout directory"),
        (["x", "--platform", "linux"], "is not os/arch"),
        (["x", "--password-stdin"], "--password-stdin needs --username"),
    ):
        result = _cli(*args)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and fragment in result.stderr, result.stderr

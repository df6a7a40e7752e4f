"""Registry pulls with the credentials the docker CLI uses: config.json `auths`, credHelpers and credsStore (a
credential helper written here), under DOCKER_CONFIG; against the basic-auth registry on 127.0.0.1:5001
(scripts/start-test-registry.sh)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from portcullis.collect import CollectionError, docker_config
from portcullis.collect.image import Credentials

pytestmark = pytest.mark.engine
REGISTRY = "127.0.0.1:5001"
IMAGE = f"registry:{REGISTRY}/portcullis-test/busybox:1"
USER, PASSWORD = "portcullis", "portcullis-test"
WRONG = "not-the-password-4711"


def _registry_up() -> bool:
    try:
        return requests.get(f"http://{REGISTRY}/v2/", timeout=2).status_code == 401
    except requests.RequestException:
        return False


needs_registry = pytest.mark.skipif(not _registry_up(), reason="run scripts/start-test-registry.sh first")


def _write_config(directory: Path, config: dict[str, object]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return directory


def _basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def _helper(bin_dir: Path, name: str, body: str) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / f"docker-credential-{name}"
    path.write_text("#!/bin/sh\n" + body + "\n", encoding="utf-8")
    path.chmod(0o755)


def _good_helper(bin_dir: Path) -> None:
    # Records what it was asked on stdin, answers as docker-credential-helpers do.
    answer = json.dumps({"ServerURL": REGISTRY, "Username": USER, "Secret": PASSWORD})
    _helper(bin_dir, "pctest", f"[ \"$1\" = get ] || exit 3\ncat > '{bin_dir}/asked'\necho '{answer}'")


def _image(config: Path, *args: str, bin_dir: Path | None = None, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "PORTCULLIS_REGISTRY_"))}
    env["DOCKER_CONFIG"] = str(config)
    if bin_dir is not None:
        env["PATH"] = f"{bin_dir}:{env['PATH']}"
    return subprocess.run(
        [sys.executable, "-m", "portcullis", "image", IMAGE, "--insecure-registry", REGISTRY, "--no-vulns", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _one_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("portcullis: error: ")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    return errors[0]


@needs_registry
def test_auths_entry_is_used(tmp_path: Path) -> None:
    config = _write_config(tmp_path / "cfg", {"auths": {REGISTRY: {"auth": _basic(USER, PASSWORD)}}})
    result = _image(config)
    assert result.returncode == 0, result.stderr


@needs_registry
def test_without_credentials_one_line_names_docker_login(tmp_path: Path) -> None:
    line = _one_error(_image(_write_config(tmp_path / "cfg", {"auths": {}})))
    assert f"registry {REGISTRY} refused access" in line and "docker login" in line


@needs_registry
def test_refused_stored_credentials_say_where_they_came_from_and_not_the_secret(tmp_path: Path) -> None:
    config = _write_config(tmp_path / "cfg", {"auths": {f"https://{REGISTRY}": {"auth": _basic(USER, WRONG)}}})
    result = _image(config)
    assert "the credentials `docker login` stored" in _one_error(result)
    assert WRONG not in result.stderr + result.stdout


@needs_registry
def test_command_line_credentials_come_first(tmp_path: Path) -> None:
    config = _write_config(tmp_path / "cfg", {"auths": {REGISTRY: {"auth": _basic(USER, WRONG)}}})
    assert _image(config, "--username", USER, "--password-stdin", stdin=PASSWORD + "\n").returncode == 0
    good = _write_config(tmp_path / "good", {"auths": {REGISTRY: {"auth": _basic(USER, PASSWORD)}}})
    assert "wrong credentials" in _one_error(_image(good, "--username", USER, "--password-stdin", stdin=WRONG + "\n"))


@needs_registry
@pytest.mark.parametrize("key", ["credHelpers", "credsStore"])
def test_a_credential_helper_is_asked_for_the_registry(tmp_path: Path, key: str) -> None:
    bin_dir = tmp_path / "bin"
    _good_helper(bin_dir)
    # the helper wins over an auths entry, as in the docker CLI
    entry: object = {REGISTRY: "pctest"} if key == "credHelpers" else "pctest"
    config = _write_config(tmp_path / "cfg", {key: entry, "auths": {REGISTRY: {"auth": _basic(USER, WRONG)}}})
    result = _image(config, bin_dir=bin_dir)
    assert result.returncode == 0, result.stderr
    assert (bin_dir / "asked").read_text() == REGISTRY


@needs_registry
def test_a_failing_helper_is_one_line_without_what_it_printed(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    _helper(bin_dir, "pcfail", f"echo 'keychain locked {WRONG}'\nexit 1")
    config = _write_config(tmp_path / "cfg", {"credHelpers": {REGISTRY: "pcfail"}})
    result = _image(config, bin_dir=bin_dir)
    line = _one_error(result)
    assert f"credential helper docker-credential-pcfail for {REGISTRY} failed (exit 1)" in line
    assert WRONG not in result.stderr + result.stdout


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "cfg"))
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    return tmp_path


def test_a_hanging_helper_is_stopped(config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(docker_config, "HELPER_TIMEOUT", 1.0)
    _helper(config_dir / "bin", "pchang", "exec sleep 60")
    _write_config(config_dir / "cfg", {"credsStore": "pchang"})
    with pytest.raises(CollectionError, match="did not answer within 1 s"):
        docker_config.registry_login(REGISTRY)


def test_a_helper_flooding_its_output_is_cut_off(config_dir: Path) -> None:
    _helper(config_dir / "bin", "pcflood", "exec yes")
    _write_config(config_dir / "cfg", {"credsStore": "pcflood"})
    with pytest.raises(CollectionError, match="answered more than 65536 bytes"):
        docker_config.registry_login(REGISTRY)


def test_a_helper_without_a_login_means_no_credentials(config_dir: Path) -> None:
    _helper(config_dir / "bin", "pcnone", "echo 'credentials not found in native keychain'\nexit 1")
    _write_config(config_dir / "cfg", {"credHelpers": {REGISTRY: "pcnone"}})
    assert docker_config.registry_login(REGISTRY) is None


def test_identity_tokens_and_docker_hub_keys(config_dir: Path) -> None:
    _write_config(
        config_dir / "cfg",
        {"auths": {"https://index.docker.io/v1/": {"auth": _basic("me", ""), "identitytoken": "tok"}}},
    )
    login = docker_config.registry_login("docker.io")
    assert login == Credentials("me", "", "tok")
    assert "tok" not in repr(login)

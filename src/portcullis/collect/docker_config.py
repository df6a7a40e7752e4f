"""What the docker CLI keeps in its configuration directory: the current context and registry credentials.

The directory is $DOCKER_CONFIG, else ~/.docker, whether or not config.json exists there (the docker SDK looks
elsewhere when it does not, and then silently loses the contexts beside it).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
import selectors
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from portcullis.collect import CollectionError
from portcullis.collect.image.errors import Credentials

HELPER_TIMEOUT = 30.0  # seconds a credential helper may take (a keychain prompt is not expected here)
MAX_HELPER_OUTPUT = 64 * 1024  # a helper answers with one small JSON object
MAX_CONFIG_BYTES = 4 * 1024 * 1024
DOCKER_HUB_KEY = "https://index.docker.io/v1/"  # the key `docker login` uses for Docker Hub


def config_dir() -> Path:
    return Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")


def load_config() -> dict[str, Any]:
    """config.json, or {} when there is none; a damaged one is one clear line, not a silent anonymous pull."""
    path = config_dir() / "config.json"
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise CollectionError(f"cannot read {path}: {exc.strerror}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise CollectionError(f"{path} is over the {MAX_CONFIG_BYTES}-byte limit")
    try:
        config = json.loads(data)
    except ValueError as exc:
        raise CollectionError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(config, dict):
        raise CollectionError(f"{path} is not a JSON object")
    return config


@dataclass(frozen=True)
class ContextEndpoint:
    """The docker endpoint of a named context: its address and TLS material (paths that exist)."""

    name: str
    host: str
    skip_tls_verify: bool
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None


def current_context() -> ContextEndpoint | None:
    """The context DOCKER_CONTEXT or config.json's currentContext names; None for `default` (the local socket)."""
    name = os.environ.get("DOCKER_CONTEXT") or str(load_config().get("currentContext") or "default")
    if name == "default":
        return None
    context_id = hashlib.sha256(name.encode()).hexdigest()
    meta_path = config_dir() / "contexts" / "meta" / context_id / "meta.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        endpoint = meta["Endpoints"]["docker"]
        host = str(endpoint["Host"])
    except FileNotFoundError:
        raise CollectionError(f"Docker context {name!r} does not exist (no {meta_path})") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CollectionError(f"Docker context {name!r} is unreadable ({meta_path}: {exc})") from None
    tls_dir = config_dir() / "contexts" / "tls" / context_id / "docker"

    def material(file: str) -> Path | None:
        path = tls_dir / file
        return path if path.is_file() else None

    return ContextEndpoint(
        name=name,
        host=host,
        skip_tls_verify=bool(endpoint.get("SkipTLSVerify", False)),
        ca=material("ca.pem"),
        cert=material("cert.pem"),
        key=material("key.pem"),
    )


def registry_login(registry: str) -> Credentials | None:
    """The credentials the docker CLI would use for `registry` (host[:port]): credHelpers, else credsStore, else
    the `auths` entry. None when config.json has none for it."""
    config = load_config()
    keys = _keys(registry)
    helpers = config.get("credHelpers") or {}
    helper = next((helpers[k] for k in keys if isinstance(helpers, dict) and k in helpers), None)
    if helper is None and config.get("credsStore"):
        helper = config["credsStore"]
    if helper is not None:
        return _from_helper(str(helper), keys[0], registry)
    auths = config.get("auths") or {}
    entry = next((auths[k] for k in keys if isinstance(auths, dict) and k in auths), None)
    return _from_auths(entry, registry) if isinstance(entry, dict) else None


def _keys(registry: str) -> list[str]:
    """The keys config.json may file a registry under; the first is the one `docker login` writes."""
    if registry in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        return [DOCKER_HUB_KEY, "docker.io", "index.docker.io", "registry-1.docker.io"]
    return [registry, f"https://{registry}", f"http://{registry}", f"https://{registry}/v1/"]


def _from_auths(entry: dict[str, Any], registry: str) -> Credentials | None:
    token = str(entry.get("identitytoken") or "")
    username, password = str(entry.get("username") or ""), str(entry.get("password") or "")
    if entry.get("auth"):
        try:
            decoded = base64.b64decode(str(entry["auth"]), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        username, sep, password = decoded.partition(":")
        if not sep:
            raise CollectionError(
                f"{config_dir() / 'config.json'}: the `auth` of {registry} is not base64 of user:password"
            )
    if token:
        return Credentials(username, "", token)
    return Credentials(username, password) if username else None


def _from_helper(name: str, server: str, registry: str) -> Credentials | None:
    """`docker-credential-NAME get` with the server on stdin; bounded in time and output. Errors name the registry
    and the helper, never what the helper printed (it may hold the secret)."""
    program = f"docker-credential-{name}"
    what = f"credential helper {program} for {registry}"
    try:
        process = subprocess.Popen(  # the helper config.json names, as the docker CLI runs it
            [program, "get"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
    except OSError as exc:
        raise CollectionError(f"{what} cannot run: {exc.strerror}") from None
    try:
        out = _bounded_answer(process, server, what)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
    if process.returncode != 0:
        if b"credentials not found" in out.lower():  # the helper's way of saying "no login for this server"
            return None
        raise CollectionError(f"{what} failed (exit {process.returncode})")
    try:
        answer = json.loads(out)
        username, secret = str(answer["Username"]), str(answer["Secret"])
    except (ValueError, KeyError, TypeError):
        raise CollectionError(f"{what} answered something other than its JSON credentials") from None
    if username == "<token>":  # how helpers hand back an identity token
        return Credentials("", "", secret)
    return Credentials(username, secret)


def _bounded_answer(process: subprocess.Popen[bytes], server: str, what: str) -> bytes:
    """The helper's stdout, read until it closes, within HELPER_TIMEOUT seconds and MAX_HELPER_OUTPUT bytes."""
    assert process.stdin is not None and process.stdout is not None
    with contextlib.suppress(BrokenPipeError):  # a helper may exit without reading; its exit status says why
        process.stdin.write(server.encode())
        process.stdin.close()
    deadline = time.monotonic() + HELPER_TIMEOUT
    chunks: list[bytes] = []
    size = 0
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                raise CollectionError(f"{what} did not answer within {HELPER_TIMEOUT:g} s")
            chunk = os.read(process.stdout.fileno(), 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_HELPER_OUTPUT:
                raise CollectionError(f"{what} answered more than {MAX_HELPER_OUTPUT} bytes")
    try:
        process.wait(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        raise CollectionError(f"{what} did not exit within {HELPER_TIMEOUT:g} s") from None
    return b"".join(chunks)

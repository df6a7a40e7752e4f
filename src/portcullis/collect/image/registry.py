"""Registry HTTP API v2: anonymous, basic and bearer-token auth; TLS unless the user names the host insecure."""

from __future__ import annotations

import io
import json
import os
import re
import time
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

import requests
import urllib3

from portcullis.collect.docker_config import registry_login
from portcullis.collect.image.assemble import ImageMeta, parse_json
from portcullis.collect.image.errors import Credentials, ImageError, Limits
from portcullis.collect.image.oci import check_digest, read_image, resolve_manifest, verified_bytes
from portcullis.collect.image.platforms import Platform
from portcullis.model.facts import ImageFacts

if TYPE_CHECKING:
    from portcullis.collect.image.layer_cache import LayerCache

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
TIMEOUT = (10, 60)  # connect, and each read: a server sending a byte now and then never trips it, hence...
DEADLINE_ENV = "PORTCULLIS_DOWNLOAD_TIMEOUT"  # ...seconds one whole download may take: a blob (config, layer)
BLOB_DEADLINE = 1800.0  # this many unless set there (a multi-GB layer on a slow link takes long)...
DOCUMENT_DEADLINE = 60.0  # ...a token or manifest at most this many
MAX_TOKEN_BYTES = 1024 * 1024  # a token answer is a few KB of JSON
CHUNK = 1 << 16
_REFERENCE = re.compile(
    r"^(?:(?P<host>[a-zA-Z0-9.-]+(?::[0-9]+)?|\[[0-9a-fA-F:]+\](?::[0-9]+)?)/)?"
    r"(?P<repo>[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9._-]{0,127}))?(?:@(?P<digest>sha256:[a-f0-9]{64}))?$"
)


@dataclass(frozen=True)
class ImageReference:
    host: str
    repository: str
    tag: str
    digest: str

    @classmethod
    def parse(cls, text: str) -> ImageReference:
        match = _REFERENCE.match(text)
        if match is None:
            raise ImageError(f"{text!r} is not an image reference (expected [HOST[:PORT]/]REPO[:TAG][@sha256:…])")
        host, repo = match.group("host"), match.group("repo")
        first = text.split("/", 1)[0]
        if host is None or not ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
            repo = f"{host}/{repo}" if host else repo  # 'library/x' or 'user/x' on Docker Hub
            host = DOCKER_HUB
            if "/" not in repo:
                repo = f"library/{repo}"
        tag = match.group("tag") or ("" if match.group("digest") else "latest")
        return cls(host, repo, tag, match.group("digest") or "")

    @property
    def api_host(self) -> str:
        return DOCKER_HUB_API if self.host == DOCKER_HUB else self.host

    @property
    def name(self) -> str:
        return f"{self.host}/{self.repository}"

    def __str__(self) -> str:
        return self.name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")


class NotInRegistry(ImageError):
    """The registry answered 404: the tag, digest or repository is not there (for a `.sig` tag: not signed)."""


def _challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.partition(" ")
    params = dict(re.findall(r'(\w+)="([^"]*)"', rest))
    return scheme.lower(), params


class RegistryClient:
    forkable = False  # blobs arrive over one HTTP session

    def __init__(self, ref: ImageReference, insecure_hosts: list[str], credentials: Credentials | None) -> None:
        self.ref = ref
        scheme = "http" if ref.host in insecure_hosts or ref.api_host in insecure_hosts else "https"
        self.base = f"{scheme}://{ref.api_host}/v2/{ref.repository}"
        self.credentials = credentials
        self.from_config = False  # the credentials came from the docker CLI's config, not the command line
        self.looked_up = credentials is not None
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "portcullis"

    def close(self) -> None:
        self.session.close()

    def _get(self, url: str, headers: dict[str, str] | None = None, stream: bool = False) -> requests.Response:
        try:
            response = self.session.get(url, headers=headers, stream=stream, timeout=TIMEOUT)
            if response.status_code == 401 and self._authenticate(response):
                response.close()
                response = self.session.get(url, headers=headers, stream=stream, timeout=TIMEOUT)
        except requests.exceptions.SSLError as exc:
            raise ImageError(
                f"TLS to {self.ref.api_host} failed ({_short(exc)}); for a plain-HTTP registry pass "
                f"--insecure-registry {self.ref.host}"
            ) from None
        except requests.RequestException as exc:
            raise ImageError(f"cannot reach registry {self.ref.api_host}: {_short(exc)}") from None
        if response.status_code == 401:
            if self.from_config:
                hint = "the credentials `docker login` stored (DOCKER_CONFIG or ~/.docker/config.json) were refused"
            elif self.credentials:
                hint = "wrong credentials"
            else:
                hint = "credentials needed (--username/--password-stdin, or `docker login`)"
            raise ImageError(f"registry {self.ref.api_host} refused access to {self.ref.repository}: {hint}")
        if response.status_code == 404:
            raise NotInRegistry(f"{self.ref} is not in registry {self.ref.api_host}")
        if response.status_code != 200:
            raise ImageError(f"registry {self.ref.api_host} answered HTTP {response.status_code} for {url}")
        return response

    def _login(self) -> Credentials | None:
        """The command line's credentials, else those the docker CLI stored for this registry: looked up once, and
        only when the registry asks (an anonymous pull runs no credential helper)."""
        if not self.looked_up:
            self.looked_up = True
            self.credentials = registry_login(self.ref.host)
            self.from_config = self.credentials is not None
        return self.credentials

    def _authenticate(self, response: requests.Response) -> bool:
        scheme, params = _challenge(response.headers.get("WWW-Authenticate", ""))
        login = self._login()
        auth = (login.username, login.password) if login and not login.identity_token else None
        if scheme == "basic":
            if auth is None or self.session.auth is not None:
                return False
            self.session.auth = auth
            return True
        if scheme == "bearer" and "realm" in params and "Authorization" not in self.session.headers:
            query = {"service": params.get("service", ""), "scope": f"repository:{self.ref.repository}:pull"}
            if login and login.identity_token:  # an OAuth refresh token: exchanged by POST, as the docker CLI does
                form = {**query, "grant_type": "refresh_token", "refresh_token": login.identity_token}
                request = requests.post(
                    params["realm"], data={**form, "client_id": "portcullis"}, timeout=TIMEOUT, stream=True
                )
            else:
                request = requests.get(params["realm"], params=query, auth=auth, timeout=TIMEOUT, stream=True)
            with request as answer:
                if answer.status_code != 200:
                    return False
                data = _read_document(answer, MAX_TOKEN_BYTES, f"the token answer of {params['realm']}")
            try:
                body = json.loads(data)
            except ValueError:
                return False
            token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
            if not token:
                return False
            self.session.headers["Authorization"] = f"Bearer {token}"
            return True
        return False

    def manifest(self, reference: str, limits: Limits) -> tuple[dict[str, Any], str]:
        response = self._get(f"{self.base}/manifests/{reference}", headers={"Accept": MANIFEST_TYPES}, stream=True)
        with response:
            data = _read_document(response, limits.max_json_bytes, f"the manifest of {self.ref}")
        digest = response.headers.get("Docker-Content-Digest", "")
        if reference.startswith("sha256:"):
            verified_bytes(data, reference, "manifest")
            digest = reference
        elif digest:
            check_digest(digest)
            verified_bytes(data, digest, "manifest")
        return parse_json(data, f"manifest of {self.ref}"), digest

    def referrers(self, digest: str, limits: Limits) -> dict[str, Any] | None:
        """The OCI 1.1 referrers index of `digest`: from the referrers API, else from the fallback tag
        `sha256-<hex>` that clients write where the registry lacks the API; None when neither exists."""
        check_digest(digest)
        index_type = {"Accept": "application/vnd.oci.image.index.v1+json"}
        try:
            response = self._get(f"{self.base}/referrers/{digest}", headers=index_type, stream=True)
        except ImageError:  # no API (404, or 400/405 from some); a registry that is down fails the next request too
            try:
                response = self._get(
                    f"{self.base}/manifests/{digest.replace(':', '-')}", headers=index_type, stream=True
                )
            except NotInRegistry:
                return None
        with response:
            data = _read_document(response, limits.max_json_bytes, f"the referrers of {digest[:19]}")
        return parse_json(data, f"the referrers of {digest[:19]}")

    def small_blob(self, digest: str, limit: int) -> bytes:
        """A whole small blob (a signature payload): at most `limit` bytes, within the document deadline, checked
        against its digest."""
        check_digest(digest)
        response = self._get(f"{self.base}/blobs/{digest}", stream=True)
        with response:
            data = _read_document(response, limit, f"blob {digest[:19]}", decode=False)
        return verified_bytes(data, digest, f"blob {digest[:19]}")

    def open_blob(self, digest: str) -> IO[bytes]:
        check_digest(digest)
        response = self._get(f"{self.base}/blobs/{digest}", stream=True)
        response.raw.decode_content = False  # blobs are hashed as stored
        return io.BufferedReader(_Deadlined(response, _deadline(), f"blob {digest[:19]}"), CHUNK)


def _deadline() -> float:
    text = os.environ.get(DEADLINE_ENV, "")
    try:
        seconds = float(text) if text else BLOB_DEADLINE
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise ImageError(f"{DEADLINE_ENV}={text!r} is not a positive number of seconds")
    return seconds


class _Deadlined(io.RawIOBase):
    """A response body that fails once `seconds` have passed since it was opened. Each read is one read of the
    socket (read1), so a server dripping a byte at a time meets the deadline as surely as a silent one."""

    def __init__(self, response: requests.Response, seconds: float, what: str) -> None:
        self.response = response
        self.give_up = time.monotonic() + seconds
        self.seconds = seconds
        self.what = what

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if time.monotonic() > self.give_up:
            raise ImageError(
                f"{self.what}: not complete after {self.seconds:g} s, a stalled registry?"
                f" ({DEADLINE_ENV} sets the limit)"
            )
        try:
            data = self.response.raw.read1(len(buffer))
        except (requests.RequestException, OSError, urllib3.exceptions.HTTPError) as exc:
            raise ImageError(f"{self.what}: download failed: {_short(exc)}") from None
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.response.close()
        super().close()


def _read_document(response: requests.Response, limit: int, what: str, decode: bool = True) -> bytes:
    """A whole small document (token, manifest): at most `limit` bytes, within DOCUMENT_DEADLINE seconds.
    `decode=False` keeps a blob's bytes as stored, since they are hashed."""
    body = io.BufferedReader(_Deadlined(response, min(DOCUMENT_DEADLINE, _deadline()), what), CHUNK)
    response.raw.decode_content = decode
    data = body.read(limit + 1)
    if len(data) > limit:
        raise ImageError(f"{what} is over the {limit}-byte limit")
    return data


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) < 160 else text[:157] + "…"


def read_registry_image(
    text: str,
    platform: Platform | None,
    insecure_hosts: list[str],
    credentials: Credentials | None,
    limits: Limits,
    cache: LayerCache | None = None,
) -> ImageFacts:
    ref = ImageReference.parse(text)
    client = RegistryClient(ref, insecure_hosts, credentials)
    try:
        top, top_digest = client.manifest(ref.digest or ref.tag, limits)
        manifest, _ = resolve_manifest(client, top, platform, "", limits, str(ref))
        meta = ImageMeta(
            source="registry",
            reference=str(ref),
            repo_tags=[f"{ref.name}:{ref.tag}"] if ref.tag else [],
            repo_digests=[f"{ref.name}@{ref.digest or top_digest}"] if (ref.digest or top_digest) else [],
        )
        return read_image(client, manifest, meta, limits, cache)
    finally:
        client.close()

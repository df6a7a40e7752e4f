"""Is each authorization plugin dockerd is configured with really there to answer? (evidence for CIS-2.13)

A managed plugin (`docker plugin install`) is found in `GET /plugins`: `docker plugin disable` takes it out of
the daemon's chain without a word, so its Enabled flag is recorded. A legacy plugin is a process behind a Unix
socket that dockerd finds by name, the way dockerd does (pkg/plugins discovery): /run/docker/plugins/NAME.sock or
NAME/NAME.sock, else a NAME.spec / NAME.json file under /etc/docker/plugins or /usr/lib/docker/plugins naming its
address. It is sent `POST /Plugin.Activate`, the handshake dockerd itself opens with: read-only, it changes nothing.
"""

from __future__ import annotations

import http.client
import json
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from portcullis.collect.daemon import collect_daemon_config
from portcullis.collect.host import read_text
from portcullis.model.facts import AuthzPluginProbe, DaemonConfig

SOCKETS_DIR = Path("/run/docker/plugins")
SPEC_DIRS = (Path("/etc/docker/plugins"), Path("/usr/lib/docker/plugins"))
PLUGIN_CONTENT_TYPE = "application/vnd.docker.plugins.v1.2+json"
# dockerd itself waits up to 30 s for a plugin; an audit asks once and records a slow plugin as not answering.
ACTIVATE_TIMEOUT = 3.0
MAX_ANSWER = 64 * 1024


def configured_plugins(daemon: DaemonConfig) -> list[str]:
    """The authorization plugins named on dockerd's command line (or in DOCKER_OPTS) and in daemon.json."""
    argv = daemon.dockerd_cmdline
    if argv is None and daemon.docker_opts:
        argv = ["dockerd", *daemon.docker_opts]
    names = DaemonConfig(dockerd_cmdline=argv).flag_values("--authorization-plugin")
    from_file = (daemon.daemon_json or {}).get("authorization-plugins")
    if isinstance(from_file, list):
        names += [str(name) for name in from_file]
    return list(dict.fromkeys(names))


class UnixConnection(http.client.HTTPConnection):
    """HTTP over a Unix socket, with one timeout for the connect and each read."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


def activate(address: str, timeout: float = ACTIVATE_TIMEOUT) -> tuple[bool, list[str], str]:
    """Send /Plugin.Activate to `address` (unix:///path or tcp://host:port, plain HTTP):
    (answered, its Implements list, why not)."""
    parts = urlsplit(address)
    connection: http.client.HTTPConnection
    if parts.scheme == "unix":
        connection = UnixConnection(parts.path, timeout)
    elif parts.scheme in ("tcp", "http") and parts.hostname:
        connection = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    else:
        return False, [], f"{address!r} is not a unix:// or tcp:// address"
    try:
        connection.request("POST", "/Plugin.Activate", body=b"", headers={"Accept": PLUGIN_CONTENT_TYPE})
        response = connection.getresponse()
        raw = response.read(MAX_ANSWER)
    except (OSError, http.client.HTTPException) as exc:
        return False, [], f"no answer from {address}: {exc.strerror if isinstance(exc, OSError) else exc}"
    finally:
        connection.close()
    if response.status != 200:
        return False, [], f"{address} answered HTTP {response.status}"
    try:
        answer = json.loads(raw)
    except ValueError:
        return False, [], f"{address} answered something that is not JSON"
    implements = answer.get("Implements") if isinstance(answer, dict) else None
    if not isinstance(implements, list):
        return False, [], f"{address} answered without an Implements list"
    return True, [str(item) for item in implements], ""


def _legacy_address(name: str) -> tuple[str, str] | None:
    """(kind, address) where dockerd would look for the legacy plugin `name`; None when nothing is there."""
    for candidate in (SOCKETS_DIR / f"{name}.sock", SOCKETS_DIR / name / f"{name}.sock"):
        if candidate.is_socket():
            return "socket", f"unix://{candidate}"
    for directory in SPEC_DIRS:
        for candidate in (directory / f"{name}.spec", directory / f"{name}.json"):
            text = read_text(candidate)
            if text is None:
                continue
            if candidate.suffix == ".spec":
                return "spec", text.strip()
            try:
                spec: Any = json.loads(text)
            except ValueError:
                return "spec", ""
            return "spec", str(spec.get("Addr", "")) if isinstance(spec, dict) else ""
    return None


def _tls_spec(name: str) -> bool:
    for directory in SPEC_DIRS:
        text = read_text(directory / f"{name}.json")
        if text is not None and '"TLSConfig"' in text:
            return True
    return False


def _managed(name: str, managed: list[dict[str, Any]]) -> dict[str, Any] | None:
    wanted = {name, f"{name}:latest"}
    return next((p for p in managed if p.get("Name") in wanted), None)


def probe_plugins(names: list[str], managed: list[dict[str, Any]] | None) -> list[AuthzPluginProbe]:
    """One probe per name: a managed plugin's Enabled flag, or a legacy plugin's answer to /Plugin.Activate."""
    probes = []
    for name in names:
        plugin = _managed(name, managed or [])
        if plugin is not None:
            plugin_id, enabled = str(plugin.get("Id", "")), bool(plugin.get("Enabled"))
            probes.append(AuthzPluginProbe(name=name, kind="managed", address=plugin_id, enabled=enabled))
            continue
        found = _legacy_address(name)
        if found is None:
            where = "no managed plugin of that name" if managed is not None else "the managed plugins were not listed"
            probes.append(
                AuthzPluginProbe(
                    name=name, kind="missing", answered=False, error=f"no socket or spec file for it, and {where}"
                )
            )
            continue
        kind, address = found
        if address.startswith("tcp://") and _tls_spec(name):
            error = "a TLS plugin address is not probed"
            probes.append(AuthzPluginProbe(name=name, kind=kind, address=address, error=error))
            continue
        answered, implements, error = activate(address)
        probes.append(
            AuthzPluginProbe(
                name=name, kind=kind, address=address, answered=answered, implements=implements, error=error
            )
        )
    return probes


def refusal_reason(endpoint: str) -> str | None:
    """Why the local dockerd at `endpoint` fails every request with a 500, when the reason is a configured
    authorization plugin that does not answer (dockerd then fails closed); None when none is down."""
    daemon = collect_daemon_config(endpoint, True, [])
    down = [p for p in probe_plugins(configured_plugins(daemon), None) if p.answered is False]
    if not down:
        return None
    named = "; ".join(f"{p.name} ({p.error})" for p in down)
    return f"its authorization plugin does not answer, so dockerd refuses every request: {named}"

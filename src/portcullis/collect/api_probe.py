"""The daemon's TCP API endpoints, found and asked GET /_ping and GET /version with no credentials.

Which endpoints: every TCP address the daemon is configured to serve (its -H flags, `hosts` in daemon.json,
docker.service's ExecStart, DOCKER_OPTS, docker.socket's ListenStream) and every listening TCP socket the
dockerd process holds (its /proc/PID/net/tcp{,6} entries whose inode is one of its /proc/PID/fd sockets). A
remote engine reached over tcp:// is probed at that address alone.

What it does: for each, one plain-HTTP GET /_ping, then (when that got no Docker answer) a TLS handshake that
shows no client certificate and trusts nothing, and GET /_ping inside it; GET /version follows wherever /_ping
answered. Nothing else is ever sent: both are read-only, every connection has short timeouts and every answer
is cut at MAX_ANSWER bytes. A configured address that is neither loopback, a wildcard nor a socket listening on
this host is not contacted (the probe never reaches past this host for an address it only read in a file).
"""

from __future__ import annotations

import ipaddress
import json
import socket
import ssl
import time
from dataclasses import dataclass, field

from portcullis.collect.certificate import CertificateError, read_certificate
from portcullis.collect.daemon import service_exec_start, socket_inodes
from portcullis.collect.host import PROC, listening_sockets
from portcullis.model.facts import (
    AUDITED_SOURCE,
    LISTENER_SOURCE,
    ApiProbe,
    BindScope,
    DaemonConfig,
    HostFacts,
    ProbeOutcome,
    ServerCertificate,
)

CONNECT_TIMEOUT = 2.0  # seconds to establish one connection (and its TLS handshake)
ANSWER_TIMEOUT = 3.0  # seconds for a whole answer to arrive
MAX_ANSWER = 64 << 10  # bytes read from one answer at most
DEFAULT_PLAIN_PORT = 2375  # dockerd's port for `-H tcp://` (and `tcp://host`) without TLS
DEFAULT_TLS_PORT = 2376  # ... and with TLS
# The alerts a TLS server sends a client that showed no certificate when one is required.
CLIENT_CERT_ALERTS = ("CERTIFICATE_REQUIRED", "BAD_CERTIFICATE")


def parse_tcp_host(value: str, tls: bool) -> tuple[str, int] | None:
    """(host, port) of a dockerd `-H`/`hosts` value that is TCP, with dockerd's defaults; None for unix://,
    fd://, ssh:// and anything else that is not TCP or does not parse."""
    scheme, sep, rest = value.strip().partition("://")
    if not sep:
        scheme, rest = "tcp", value.strip()  # dockerd reads a bare host:port as TCP
    if scheme != "tcp":
        return None
    rest = rest.split("/", 1)[0]
    default_port = DEFAULT_TLS_PORT if tls else DEFAULT_PLAIN_PORT
    if rest.startswith("["):
        host, _, tail = rest[1:].partition("]")
        port_text = tail[1:] if tail.startswith(":") else ""
    elif rest.count(":") > 1:
        return None  # an IPv6 address must be bracketed to carry a port
    else:
        host, _, port_text = rest.partition(":")
    try:
        port = int(port_text) if port_text else default_port
    except ValueError:
        return None
    if not 0 < port < 65536:
        return None
    return (host or "localhost"), port


def _listen_stream(value: str) -> tuple[str, int] | None:
    """(host, port) of a TCP ListenStream= of a socket unit: `port` alone binds every address (dual-stack)."""
    if value.isdigit():
        return "::", int(value)
    return parse_tcp_host(value, tls=False)


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _canonical(host: str) -> str:
    """localhost as dockerd binds it (127.0.0.1); an IP in its normal form; a host name unchanged."""
    if host == "localhost":
        return "127.0.0.1"
    ip = _ip(host)
    if ip is None:
        return host
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def bind_scope(host: str) -> BindScope:
    ip = _ip(host)
    if ip is not None and ip.is_unspecified:
        return BindScope.ALL
    if ip is not None and ip.is_loopback:
        return BindScope.LOOPBACK
    return BindScope.ADDRESS


def show_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass
class Target:
    host: str
    port: int
    bind: BindScope
    sources: list[str] = field(default_factory=list)


def find_targets(
    daemon: DaemonConfig,
    host_facts: HostFacts,
    listeners: list[tuple[str, int]],
    exec_start: list[str] | None,
) -> list[Target]:
    """Every TCP endpoint of the local daemon with where it came from, configured ones first, in a stable order."""
    tls = bool(host_facts.tls_files)
    found: dict[tuple[str, int], Target] = {}

    def add(host: str, port: int, source: str) -> None:
        host = _canonical(host)
        target = found.setdefault((host, port), Target(host, port, bind_scope(host)))
        if source not in target.sources:
            target.sources.append(source)

    def add_hosts(values: list[str], source: str) -> None:
        for value in values:
            parsed = parse_tcp_host(value, tls)
            if parsed:
                add(*parsed, source)

    if daemon.dockerd_cmdline is not None:
        add_hosts(daemon.flag_values("-H", "--host"), "dockerd -H")
    hosts = (daemon.daemon_json or {}).get("hosts")
    if isinstance(hosts, list):
        add_hosts([h for h in hosts if isinstance(h, str)], "daemon.json hosts")
    if exec_start:
        add_hosts(DaemonConfig(dockerd_cmdline=exec_start).flag_values("-H", "--host"), "docker.service ExecStart")
    if daemon.docker_opts:
        add_hosts(DaemonConfig(dockerd_cmdline=daemon.docker_opts).flag_values("-H", "--host"), "DOCKER_OPTS")
    unit = (host_facts.systemd_units or {}).get("docker.socket")
    for stream in unit.listen_streams if unit else []:
        parsed = _listen_stream(stream)
        if parsed and not stream.startswith(("/", "@")):
            add(*parsed, "docker.socket ListenStream")
    for address, port in listeners:
        add(address, port, LISTENER_SOURCE)
    return list(found.values())


def dockerd_listeners(pid: int) -> list[tuple[str, int]] | None:
    """(address, port) of every listening TCP socket process `pid` holds, seen in its own network namespace;
    None when its file descriptors cannot be read."""
    held = socket_inodes(pid)
    if held is None:
        return None
    return sorted(
        {(address, port) for address, port, inode in listening_sockets(PROC / str(pid) / "net") if inode in held}
    )


def _reachable_here(target: Target, host_listeners: set[tuple[str, int]]) -> str | None:
    """Why a configured address is not contacted, or None when it is on this host."""
    if LISTENER_SOURCE in target.sources or target.bind in (BindScope.ALL, BindScope.LOOPBACK):
        return None
    if _ip(target.host) is None:
        return "a host name: only the sockets dockerd holds are probed, never a name read from a file"
    if (target.host, target.port) in host_listeners:
        return None
    wildcard = "::" if ":" in target.host else "0.0.0.0"
    if (wildcard, target.port) in host_listeners or ("::", target.port) in host_listeners:
        return None
    return f"no socket listens on {show_address(target.host, target.port)} on this host"


def _connect_host(target: Target) -> str:
    if target.bind is BindScope.ALL:
        return "::1" if ":" in target.host else "127.0.0.1"
    return target.host


# --- the exchange ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes

    @property
    def status_line(self) -> str:
        return f"HTTP {self.status} {self.reason}".strip()

    @property
    def from_docker(self) -> bool:
        """A 200 to /_ping as dockerd gives it: an Api-Version header, or the body OK."""
        return self.status == 200 and ("api-version" in self.headers or self.body.strip() == b"OK")


def parse_answer(raw: bytes) -> HttpAnswer | None:
    """The HTTP/1.x answer in `raw` (possibly cut at MAX_ANSWER); None when it is not HTTP."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep or not head.startswith(b"HTTP/1."):
        return None
    lines = head.decode("iso-8859-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        return None
    headers = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _unchunk(body)
    elif headers.get("content-length", "").isdigit():
        body = body[: int(headers["content-length"])]
    return HttpAnswer(int(parts[1]), parts[2] if len(parts) > 2 else "", headers, body)


def _unchunk(body: bytes) -> bytes:
    out = bytearray()
    while body:
        size_line, sep, rest = body.partition(b"\r\n")
        try:
            size = int(size_line.split(b";")[0], 16)
        except ValueError:
            break
        if not sep or size == 0:
            break
        out += rest[:size]
        body = rest[size + 2 :]
    return bytes(out)


def _request(sock: socket.socket, host_header: str, path: str) -> bytes:
    """Send one GET with Connection: close and read the answer until the server closes, MAX_ANSWER or the clock."""
    request = f"GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: portcullis-probe\r\nConnection: close\r\n\r\n"
    sock.sendall(request.encode("ascii"))
    deadline = time.monotonic() + ANSWER_TIMEOUT
    received = bytearray()
    while len(received) < MAX_ANSWER:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            chunk = sock.recv(min(16384, MAX_ANSWER - len(received)))
        except TimeoutError:
            break
        if not chunk:
            break
        received += chunk
        answer = parse_answer(bytes(received))
        length = answer.headers.get("content-length", "") if answer else ""
        if answer is not None and length.isdigit() and len(answer.body) >= int(length):
            break  # the whole answer is here; no need to wait for the close
    return bytes(received)


def _tls_context() -> ssl.SSLContext:
    """A client that shows no certificate and trusts nothing: it must reach whatever is there to say what it is."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _cert_alert(exc: ssl.SSLError) -> bool:
    text = f"{exc.reason or ''} {exc}".upper()
    return any(alert in text for alert in CLIENT_CERT_ALERTS)


def _versions(raw: bytes) -> tuple[str | None, str | None]:
    answer = parse_answer(raw)
    if answer is None or answer.status != 200:
        return None, None
    try:
        data = json.loads(answer.body)
    except ValueError:
        return None, None
    if not isinstance(data, dict):
        return None, None
    version, api = data.get("Version"), data.get("ApiVersion")
    return (version if isinstance(version, str) else None), (api if isinstance(api, str) else None)


class _Prober:
    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.header = show_address(host, port)

    def connect(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=CONNECT_TIMEOUT)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # one small request: no waiting on Nagle
        return sock

    def tls(self) -> ssl.SSLSocket:
        raw = self.connect()
        try:
            server_name = None if _ip(self.host) is not None else self.host
            return _tls_context().wrap_socket(raw, server_hostname=server_name)
        except BaseException:
            raw.close()
            raise

    def plain_get(self, path: str) -> bytes:
        with self.connect() as sock:
            return _request(sock, self.header, path)

    def tls_get(self, path: str) -> bytes:
        with self.tls() as sock:
            return _request(sock, self.header, path)


@dataclass
class _Seen:
    """What one endpoint did; becomes an ApiProbe once its address and sources are attached."""

    outcome: ProbeOutcome
    detail: str
    tls_version: str | None = None
    certificate: ServerCertificate | None = None
    server_version: str | None = None
    api_version: str | None = None


def probe_endpoint(connect_host: str, port: int, address: str, bind: BindScope, sources: list[str]) -> ApiProbe:
    """What `connect_host:port` answers an unauthenticated client, recorded for the endpoint `address`."""
    started = time.monotonic()
    seen = _probe(_Prober(connect_host, port))
    return _record(seen, address, bind, sources, show_address(connect_host, port), time.monotonic() - started)


def _record(
    seen: _Seen, address: str, bind: BindScope, sources: list[str], connect_to: str, elapsed: float = 0.0
) -> ApiProbe:
    return ApiProbe(
        address=address,
        bind=bind,
        connect_to=connect_to,
        sources=sources,
        outcome=seen.outcome,
        detail=seen.detail,
        tls_version=seen.tls_version,
        certificate=seen.certificate,
        server_version=seen.server_version,
        api_version=seen.api_version,
        elapsed_ms=int(elapsed * 1000),
    )


def _probe(prober: _Prober) -> _Seen:
    try:
        plain = parse_answer(prober.plain_get("/_ping"))
    except ConnectionRefusedError:
        return _Seen(ProbeOutcome.REFUSED, "connection refused: nothing listens there")
    except OSError as exc:
        return _Seen(ProbeOutcome.UNREACHABLE, f"no connection: {exc.strerror or exc}")
    if plain is not None and plain.from_docker:
        version, api = _versions(prober.plain_get("/version"))
        return _Seen(
            ProbeOutcome.PLAIN_HTTP,
            f"GET /_ping over plain HTTP: {plain.status_line}",
            server_version=version,
            api_version=api or plain.headers.get("api-version"),
        )
    plain_said = f"plain HTTP: {plain.status_line}" if plain is not None else "plain HTTP: no HTTP answer"
    return _probe_tls(prober, plain_said)


def _probe_tls(prober: _Prober, plain_said: str) -> _Seen:
    certificate: ServerCertificate | None = None
    tls_version: str | None = None
    try:
        with prober.tls() as sock:
            tls_version = sock.version()
            der = sock.getpeercert(binary_form=True)
            if der:
                try:
                    certificate = read_certificate(der)
                except CertificateError:
                    certificate = None
            answer = parse_answer(_request(sock, prober.header, "/_ping"))
    except ssl.SSLError as exc:
        if _cert_alert(exc):
            return _Seen(
                ProbeOutcome.CLIENT_CERT_REQUIRED,
                f"{plain_said}; TLS without a client certificate refused: {exc.reason or exc}",
                tls_version=tls_version,
                certificate=certificate,
            )
        return _Seen(
            ProbeOutcome.NO_API_ANSWER,
            f"{plain_said}; TLS failed: {exc.reason or exc}",
            tls_version=tls_version,
            certificate=certificate,
        )
    except OSError as exc:
        said = "connection closed" if isinstance(exc, ConnectionResetError) else (exc.strerror or str(exc))
        return _Seen(
            ProbeOutcome.NO_API_ANSWER,
            f"{plain_said}; TLS: {said}",
            tls_version=tls_version,
            certificate=certificate,
        )
    if answer is not None and answer.from_docker:
        try:
            version, api = _versions(prober.tls_get("/version"))
        except OSError:
            version, api = None, None
        return _Seen(
            ProbeOutcome.TLS_WITHOUT_CLIENT_CERT,
            f"GET /_ping over TLS with no client certificate: {answer.status_line}",
            tls_version=tls_version,
            certificate=certificate,
            server_version=version,
            api_version=api or answer.headers.get("api-version"),
        )
    said = answer.status_line if answer is not None else "no HTTP answer"
    return _Seen(
        ProbeOutcome.NO_API_ANSWER,
        f"{plain_said}; TLS without a client certificate: {said}",
        tls_version=tls_version,
        certificate=certificate,
    )


# --- the whole collection -------------------------------------------------------------------------------


def probe_local_daemon(daemon: DaemonConfig, host_facts: HostFacts) -> list[ApiProbe]:
    """Every TCP endpoint of the local dockerd, probed (or, for an address that is not this host's, why not)."""
    listeners = dockerd_listeners(daemon.dockerd_pid) if daemon.dockerd_pid is not None else None
    targets = find_targets(daemon, host_facts, listeners or [], service_exec_start())
    on_host = {(_canonical(item.address), item.port) for item in host_facts.tcp_listeners or []}
    probes = []
    for target in targets:
        address = show_address(target.host, target.port)
        why_not = _reachable_here(target, on_host)
        if why_not is not None:
            probes.append(_record(_Seen(ProbeOutcome.NOT_PROBED, why_not), address, target.bind, target.sources, ""))
        else:
            probes.append(probe_endpoint(_connect_host(target), target.port, address, target.bind, target.sources))
    return probes


def probe_remote_endpoint(endpoint: str) -> list[ApiProbe]:
    """The remote engine's own tcp:// address (the one this audit was pointed at), probed; [] for other schemes."""
    parsed = parse_tcp_host(endpoint, tls=True) if endpoint.startswith("tcp://") else None
    if parsed is None:
        return []
    host, port = parsed
    return [probe_endpoint(host, port, show_address(host, port), BindScope.REMOTE, [AUDITED_SOURCE])]

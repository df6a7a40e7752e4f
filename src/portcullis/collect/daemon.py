"""Facts about dockerd itself: its real command line (from /proc), daemon.json, env files, swarm state files."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

from portcullis.collect.host import PROC, read_text
from portcullis.model.facts import DaemonConfig, SwarmInfo
from portcullis.model.findings import CollectionProblem

DEFAULT_ENV_FILE = "/etc/default/docker"
# Where systemd looks for docker.service and its drop-ins, highest priority first.
UNIT_DIRS = ("/etc/systemd/system", "/run/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system")


def _cmdline(pid: int) -> list[str] | None:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _process_uid(pid: int) -> int | None:
    status = read_text(PROC / str(pid) / "status")
    for line in (status or "").splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    return None


def _dockerd_sockets(pid: int, argv: list[str]) -> list[str]:
    """The sockets a dockerd listens on: its -H flags, else its default (rootless: $XDG_RUNTIME_DIR/docker.sock)."""
    probe = DaemonConfig(dockerd_cmdline=argv)
    hosts = probe.flag_values("-H", "--host")
    if hosts:
        return hosts
    if _process_uid(pid) not in (0, None):
        try:
            environ = (PROC / str(pid) / "environ").read_bytes().split(b"\0")
        except OSError:
            environ = []
        runtime_dir = next((v[len(b"XDG_RUNTIME_DIR=") :] for v in environ if v.startswith(b"XDG_RUNTIME_DIR=")), None)
        if runtime_dir:
            return [f"unix://{runtime_dir.decode(errors='replace')}/docker.sock"]
    return ["unix:///var/run/docker.sock"]


def _listening_inodes(socket_path: str) -> set[int] | None:
    """Inodes of the unix sockets bound at `socket_path` (from /proc/net/unix); None when it cannot be read."""
    text = read_text(PROC / "net" / "unix", limit=16 << 20)
    if text is None:
        return None
    wanted = {socket_path, os.path.realpath(socket_path)}
    inodes = set()
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 8 and fields[7] in wanted:
            inodes.add(int(fields[6]))
    return inodes


def socket_inodes(pid: int) -> set[int] | None:
    """Inodes of every socket process `pid` holds open (its /proc/PID/fd links); None when they cannot be read."""
    fd_dir = PROC / str(pid) / "fd"
    try:
        names = os.listdir(fd_dir)
    except OSError:
        return None
    inodes = set()
    for name in names:
        try:
            link = os.readlink(fd_dir / name)
        except OSError:
            continue
        if link.startswith("socket:[") and link.endswith("]"):
            inodes.add(int(link[8:-1]))
    return inodes


def _holds_socket(pid: int, inodes: set[int]) -> bool:
    return bool((socket_inodes(pid) or set()) & inodes)


def find_dockerd(endpoint: str) -> tuple[int, list[str]] | None:
    """The dockerd process serving `endpoint`: the one holding the listening socket (exact, also for
    systemd socket activation), else the one whose -H names it. None when no dockerd serves it (e.g.
    a Podman socket), never another daemon's process."""
    candidates: list[tuple[int, list[str]]] = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        comm = read_text(entry / "comm")
        if comm is None or comm.strip() != "dockerd":
            continue
        argv = _cmdline(int(entry.name))
        if argv:
            candidates.append((int(entry.name), argv))
    wanted = endpoint.replace("unix://", "")
    inodes = _listening_inodes(wanted)
    if inodes:
        for pid, argv in candidates:
            if _holds_socket(pid, inodes):
                return pid, argv
    for pid, argv in candidates:
        if any(sock.replace("unix://", "") == wanted for sock in _dockerd_sockets(pid, argv)):
            return pid, argv
    return None


def collect_daemon_config(endpoint: str, local: bool, problems: list[CollectionProblem]) -> DaemonConfig:
    config = DaemonConfig()
    if not local:
        problems.append(CollectionProblem(fact="dockerd command line and daemon.json", reason="the engine is remote"))
        return config
    found = find_dockerd(endpoint)
    if found:
        config.dockerd_pid, config.dockerd_cmdline = found
        config.dockerd_uid = _process_uid(found[0])
        config_files = config.flag_values("--config-file")
        if config_files:
            config.daemon_json_path = config_files[-1]
    else:
        problems.append(CollectionProblem(fact="dockerd command line", reason=f"no dockerd process serves {endpoint}"))
    path = Path(config.daemon_json_path)
    config.daemon_json_exists = path.exists()
    if config.daemon_json_exists:
        text = read_text(path)
        if text is None:
            config.daemon_json_error = "unreadable"
        else:
            try:
                loaded = json.loads(text)
                if isinstance(loaded, dict):
                    config.daemon_json = loaded
                else:
                    config.daemon_json_error = "not a JSON object"
            except json.JSONDecodeError as exc:
                config.daemon_json_error = f"invalid JSON: {exc}"
        if config.daemon_json_error:
            problems.append(CollectionProblem(fact="daemon.json", reason=config.daemon_json_error))
    config.default_docker_env = read_text(DEFAULT_ENV_FILE)
    config.sysconfig_docker_env = read_text("/etc/sysconfig/docker")
    config.docker_opts = docker_opts(_unit_texts(UNIT_DIRS), config.default_docker_env)
    return config


def service_exec_start(unit_dirs: tuple[str, ...] = UNIT_DIRS) -> list[str] | None:
    """The words of docker.service's ExecStart= (the last one its file and drop-ins set); None without the unit."""
    texts = _unit_texts(unit_dirs)
    if not texts:
        return None
    exec_start = ""
    for text in texts:
        for raw in text.splitlines():
            key, sep, value = raw.strip().partition("=")
            if sep and key.strip() == "ExecStart":
                exec_start = value.strip()  # an empty ExecStart= resets; the last one stands
    try:
        words = shlex.split(exec_start)
    except ValueError:  # an unbalanced quote: systemd would refuse it, a plain split still shows the flags
        words = exec_start.split()
    if words:
        words[0] = words[0].lstrip("-@+!:")  # systemd's executable prefixes
    return words


def _unit_texts(unit_dirs: tuple[str, ...]) -> list[str]:
    """docker.service (the first found) followed by its drop-ins, in the order systemd applies them."""
    texts: list[str] = []
    fragment = next((Path(d) / "docker.service" for d in unit_dirs if (Path(d) / "docker.service").is_file()), None)
    if fragment is not None:
        texts.append(read_text(fragment) or "")
    drop_ins: dict[str, Path] = {}
    for directory in reversed(unit_dirs):  # a higher-priority directory overrides a drop-in of the same name
        for path in sorted(Path(directory).glob("docker.service.d/*.conf")):
            drop_ins[path.name] = path
    texts.extend(read_text(drop_ins[name]) or "" for name in sorted(drop_ins))
    return texts


def docker_opts(unit_texts: list[str], env_file_text: str | None) -> list[str] | None:
    """The words DOCKER_OPTS adds to dockerd's argv; None when the unit does not pass it.

    Kept deliberately simple: the unit must load /etc/default/docker with EnvironmentFile= and name
    $DOCKER_OPTS in its ExecStart=; the value is unquoted once and split on blanks, as systemd does
    for an unbraced `$VAR`.
    """
    env_files: list[str] = []
    exec_start = ""
    for text in unit_texts:
        for raw in text.splitlines():
            key, sep, value = raw.strip().partition("=")
            if not sep:
                continue
            if key == "EnvironmentFile":
                env_files = [] if not value else [*env_files, value.lstrip("-")]
            elif key == "ExecStart":
                exec_start = value  # an empty ExecStart= resets; the last one stands
    if DEFAULT_ENV_FILE not in env_files or not any(v in exec_start for v in ("$DOCKER_OPTS", "${DOCKER_OPTS}")):
        return None
    value = ""
    for raw in (env_file_text or "").splitlines():
        key, sep, rest = raw.strip().partition("=")
        if sep and key == "DOCKER_OPTS":
            value = rest.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    return value.split()


def attach_swarm_files(swarm: SwarmInfo, data_root: str, problems: list[CollectionProblem]) -> None:
    """Root CA age and this node's addresses, which only dockerd's swarm state files record."""
    swarm_dir = Path(data_root) / "swarm"
    try:
        swarm.root_ca_mtime = os.stat(swarm_dir / "certificates" / "swarm-root-ca.crt").st_mtime
    except OSError as exc:
        problems.append(CollectionProblem(fact="swarm root CA certificate", reason=f"{exc.strerror}: {exc.filename}"))
    text = read_text(swarm_dir / "docker-state.json")
    try:
        state = json.loads(text) if text is not None else None
    except json.JSONDecodeError:
        state = None
    if not isinstance(state, dict):
        problems.append(
            CollectionProblem(fact="swarm node addresses", reason=f"{swarm_dir}/docker-state.json unreadable")
        )
        return
    swarm.listen_addr = str(state.get("ListenAddr") or "")
    swarm.advertise_addr = str(state.get("AdvertiseAddr") or "")
    swarm.data_path_addr = str(state.get("DataPathAddr") or "")

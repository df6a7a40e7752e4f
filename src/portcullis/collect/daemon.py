"""Facts about dockerd itself: its real command line (from /proc), daemon.json and env files."""

from __future__ import annotations

import json
from pathlib import Path

from portcullis.collect.host import PROC, read_text
from portcullis.model.facts import DaemonConfig
from portcullis.model.findings import CollectionProblem


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


def _dockerd_sockets(argv: list[str]) -> list[str]:
    probe = DaemonConfig(dockerd_cmdline=argv)
    hosts = probe.flag_values("-H", "--host")
    return hosts or ["unix:///var/run/docker.sock"]


def find_dockerd(endpoint: str) -> tuple[int, list[str]] | None:
    """The dockerd process serving `endpoint`; with several daemons, the one listening there."""
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
    for pid, argv in candidates:
        if any(sock.replace("unix://", "").replace("fd://", "") == wanted for sock in _dockerd_sockets(argv)):
            return pid, argv
    # systemd socket activation (-H fd://) or a symlinked socket path: fall back to a lone daemon.
    return candidates[0] if len(candidates) == 1 else None


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
    config.default_docker_env = read_text("/etc/default/docker")
    config.sysconfig_docker_env = read_text("/etc/sysconfig/docker")
    return config

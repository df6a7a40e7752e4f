"""What dockerd's death does to running containers, measured on private dockerds (never the user's engine).

For live-restore off and on, a private dockerd runs a labelled container, is killed with SIGKILL (a crash) and
started again; the container's state and host pid before and after are the evidence `prove` judges (CIS 2.16).
"""

from __future__ import annotations

import os
import subprocess
import time
from contextlib import suppress
from typing import Any

import docker.errors

from portcullis.harden import HardenError
from portcullis.harden.trial_daemon import TrialDaemon, copy_image

# How long a killed daemon stays dead, and how long the restarted one gets to settle its containers.
DEAD_SECONDS = 1.0
SETTLE_SECONDS = 3.0
LABELS = {"portcullis.managed": "true", "portcullis.purpose": "prove-daemon-death"}


def _process_alive(pid: int) -> bool:
    return pid > 0 and os.path.exists(f"/proc/{pid}")


def _state(client: docker.DockerClient, name: str) -> dict[str, Any]:
    try:
        state: dict[str, Any] = client.api.inspect_container(name)["State"]
    except docker.errors.NotFound:
        return {"Status": "gone", "Pid": 0}
    return state


def death_trial(live_restore: bool, image: str, source_api: Any) -> dict[str, Any]:
    """Kill and restart a private dockerd with `live_restore` while one container runs; what became of it."""
    daemon = TrialDaemon({"live-restore": live_restore}, separate_containerd=True)
    try:
        daemon.start()
        client = daemon.client(timeout=60)
        try:
            copy_image(image, source_api, client)
            client.containers.run(image, ["sleep", "300"], name="portcullis-death-probe", labels=LABELS, detach=True)
            before = _state(client, "portcullis-death-probe")
        finally:
            client.close()
        pid_before = int(before.get("Pid") or 0)
        daemon.kill_dockerd()
        time.sleep(DEAD_SECONDS)
        alive_while_dead = _process_alive(pid_before)
        daemon.restart_dockerd()
        time.sleep(SETTLE_SECONDS)
        client = daemon.client(timeout=60)
        try:
            after = _state(client, "portcullis-death-probe")
        finally:
            client.close()
    finally:
        if daemon.process is not None and daemon.process.poll() is not None:
            # Killed and not back (an interrupt, a failed restart): only a running dockerd removes its containers.
            with suppress(HardenError):
                daemon.restart_dockerd()
        daemon.stop()
    pid_after = int(after.get("Pid") or 0)
    return {
        "live_restore": live_restore,
        "pid_before": pid_before,
        "alive_while_dockerd_dead": alive_while_dead,
        "state_after_restart": str(after.get("Status")),
        "pid_after": pid_after,
        "running_after_restart": bool(after.get("Running")),
        "same_process": pid_after == pid_before and pid_before > 0,
    }


def measure_daemon_death(source_api: Any, image: str) -> dict[str, Any]:
    """Both trials (live-restore off, then on); a daemon that cannot run here is an error measurement."""
    try:
        return {"trials": {"off": death_trial(False, image, source_api), "on": death_trial(True, image, source_api)}}
    except (HardenError, docker.errors.DockerException, subprocess.CalledProcessError, OSError) as exc:
        return {"error": f"a private dockerd could not be used: {exc}"}

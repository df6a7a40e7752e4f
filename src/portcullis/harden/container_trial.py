"""Find and verify a hardened run configuration for one container by trying it on labelled copies.

A copy is the container's own image, command, environment and health check, with our labels instead of its
own (so compose never mistakes a copy for one of its containers), no published ports (they belong to the
original), no restart policy, and its writable mounts replaced by tmpfs (a copy must never write to the user's
data). Every copy lives in a `sandbox` and is removed however the run ends.

The search, each step a real run of a copy judged by the workload's own success signal:
1. the copy unchanged (the baseline: it must work, else nothing can be verified), observed for the paths it
   writes (`GET /containers/{id}/changes`) and, when the original is not running, its resource use;
2. as each non-root user the image defines, with no capabilities at all;
3. as the original user with no capabilities, then with those its EPERM log lines point to, then a bisection of
   Docker's default set, bounded by `max_trials`.
"""

from __future__ import annotations

import io
import shlex
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import docker.errors

from portcullis.collect.engine import EngineConnection
from portcullis.collect.sandbox import Sandbox
from portcullis.harden import HardenError
from portcullis.harden.run_flags import (
    DEFAULT_CAPABILITIES,
    RunProposal,
    capability_hints,
    limits_from_stats,
    non_root_users,
    runs_as_root,
    tmpfs_from_changes,
)

SERVICE = "service"
BATCH = "batch"
POLL = 0.25
# Copies publish no ports (the original holds them) and the proposal leaves ports alone: comparing these
# controls between the original and a copy would only show that difference.
PORT_RULES = frozenset({"CIS-5.8", "CIS-5.9", "CIS-5.14"})


@dataclass
class Trial:
    label: str
    ok: bool
    reason: str
    container_id: str = ""
    logs: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"trial": self.label, "ok": self.ok, "reason": self.reason}


@dataclass
class Search:
    proposal: RunProposal
    verified: bool
    trials: list[Trial] = field(default_factory=list)
    needed: dict[str, Any] = field(default_factory=dict)  # what a failing workload asked for
    mode: str = SERVICE
    baseline_changes: list[str] = field(default_factory=list)


def _health_wait(config: dict[str, Any], cap: float) -> float:
    health = config.get("Healthcheck") or {}
    interval = (health.get("Interval") or 30_000_000_000) / 1e9
    start = (health.get("StartPeriod") or 0) / 1e9
    timeout = (health.get("Timeout") or 30_000_000_000) / 1e9
    retries = health.get("Retries") or 3
    return min(cap, start + (interval + timeout) * retries + 2)


def _has_healthcheck(config: dict[str, Any]) -> bool:
    test = (config.get("Healthcheck") or {}).get("Test") or []
    return bool(test) and test[0] != "NONE"


class Copies:
    """Starts labelled copies of one container and judges whether the workload still works in them."""

    def __init__(
        self,
        conn: EngineConnection,
        box: Sandbox,
        original: dict[str, Any],
        smoke: str | None,
        settle: float,
        timeout: float,
        labels: dict[str, str] | None = None,
    ) -> None:
        self.api = conn.api
        self.box = box
        self.original = original
        self.smoke = shlex.split(smoke) if smoke else None
        self.settle = settle
        self.timeout = timeout
        self.labels = {**box.labels, **(labels or {})}
        self.mode = SERVICE if original["State"].get("Running") else BATCH
        self.count = 0

    @property
    def name(self) -> str:
        return str(self.original["Name"]).lstrip("/")

    def body(self, proposal: RunProposal | None, keep_restart: bool = False) -> dict[str, Any]:
        """The create body of a copy, with `proposal` written over the container's own settings."""
        config = {k: v for k, v in self.original["Config"].items() if k not in ("Hostname", "Labels")}
        config["Image"] = self.original["Image"]
        config["Labels"] = dict(self.labels)
        host = dict(self.original["HostConfig"])
        host.update(PortBindings={}, PublishAllPorts=False, AutoRemove=False, VolumesFrom=None, Links=None)
        host["RestartPolicy"] = {"Name": "no", "MaximumRetryCount": 0}
        host["Binds"] = None
        host["Mounts"] = self._safe_mounts()
        if proposal is not None:
            host, config = proposal.apply_to(host, config)
            if not keep_restart:
                host["RestartPolicy"] = {"Name": "no", "MaximumRetryCount": 0}
        return {**config, "HostConfig": host}

    def _safe_mounts(self) -> list[dict[str, Any]]:
        mounts: list[dict[str, Any]] = []
        seen = set()
        for mount in self.original.get("Mounts") or []:
            target = mount.get("Destination")
            seen.add(target)
            if mount.get("Type") == "tmpfs":
                continue  # HostConfig.Tmpfs / Mounts keep it as it was
            if mount.get("RW"):
                # A copy must not write to the user's data: it gets an empty tmpfs there instead.
                mounts.append({"Type": "tmpfs", "Target": target})
            elif mount.get("Type") == "volume":
                mounts.append({"Type": "volume", "Source": mount.get("Name"), "Target": target, "ReadOnly": True})
            else:
                mounts.append({"Type": "bind", "Source": mount.get("Source"), "Target": target, "ReadOnly": True})
        # Image VOLUMEs would otherwise become anonymous volumes that outlive the copy.
        for target in self.original["Config"].get("Volumes") or {}:
            if target not in seen:
                mounts.append({"Type": "tmpfs", "Target": target})
        return mounts

    def start(self, proposal: RunProposal | None, keep_restart: bool = False) -> str:
        self.count += 1
        name = f"portcullis-harden-{self.name}-{self.box.run_id}-{self.count}"
        try:
            created = self.api.create_container_from_config(self.body(proposal, keep_restart), name=name)
        except docker.errors.APIError as exc:
            raise HardenError(f"the engine refused a copy of {self.name}: {exc.explanation or exc}") from None
        container_id = str(created["Id"])
        self.box.created.append(container_id)
        try:
            self.api.start(container_id)
        except docker.errors.APIError as exc:
            raise _Refused(f"the copy did not start: {exc.explanation or exc}", container_id) from None
        return container_id

    def run(self, label: str, proposal: RunProposal | None, keep_restart: bool = False) -> Trial:
        try:
            container_id = self.start(proposal, keep_restart)
        except _Refused as refused:
            return Trial(label, False, str(refused), refused.container_id)
        ok, reason = self.judge(container_id)
        logs = self.api.logs(container_id, stdout=True, stderr=True).decode(errors="replace")
        return Trial(label, ok, reason, container_id, logs)

    def judge(self, container_id: str) -> tuple[bool, str]:
        """Whether the workload works in this copy, by its health check, the smoke command or its exit code."""
        config = self.original["Config"]
        if self.mode == BATCH:
            deadline = time.monotonic() + self.timeout
            while time.monotonic() < deadline:
                state = self.api.inspect_container(container_id)["State"]
                if not state.get("Running") and state.get("Status") != "created":
                    code = int(state.get("ExitCode", -1))
                    return code == 0, f"exited {code}" + (" (OOM killed)" if state.get("OOMKilled") else "")
                time.sleep(POLL)
            return False, f"still running after {self.timeout:.0f} s (the job normally exits)"
        wait = _health_wait(config, self.timeout) if _has_healthcheck(config) else self.settle
        deadline = time.monotonic() + wait
        while True:
            state = self.api.inspect_container(container_id)["State"]
            if not state.get("Running"):
                return False, f"exited {state.get('ExitCode')}" + (" (OOM killed)" if state.get("OOMKilled") else "")
            health = (state.get("Health") or {}).get("Status")
            if health == "healthy":
                break
            if health == "unhealthy":
                return False, "health check reports unhealthy"
            if time.monotonic() >= deadline:
                if _has_healthcheck(config):
                    return False, f"not healthy after {wait:.0f} s"
                break
            time.sleep(POLL)
        if self.smoke:
            code, output = self.exec(container_id, self.smoke)
            if code != 0:
                return False, f"smoke command exited {code}: {output.strip()[:200]}"
            return True, "smoke command succeeded"
        return True, "healthy" if _has_healthcheck(config) else f"still running after {self.settle:.0f} s"

    def exec(self, container_id: str, command: list[str]) -> tuple[int, str]:
        try:
            exec_id = self.api.exec_create(container_id, command)["Id"]
            output = self.api.exec_start(exec_id).decode(errors="replace")
            return int(self.api.exec_inspect(exec_id).get("ExitCode") or 0), output
        except docker.errors.APIError as exc:
            return 126, f"smoke command could not run: {exc.explanation or exc}"

    def read_file(self, container_id: str, path: str) -> str:
        try:
            stream, _ = self.api.get_archive(container_id, path)
        except docker.errors.NotFound:
            return ""
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
            member = archive.next()
            extracted = archive.extractfile(member) if member is not None else None
            return extracted.read().decode(errors="replace") if extracted is not None else ""

    def stats(self, container_id: str) -> dict[str, Any] | None:
        try:
            sample = self.api.stats(container_id, stream=False)
        except docker.errors.APIError:
            return None
        return sample if isinstance(sample, dict) and sample.get("memory_stats") else None


class _Refused(Exception):
    def __init__(self, message: str, container_id: str) -> None:
        super().__init__(message)
        self.container_id = container_id


class _Budget(Exception):
    pass


def search_proposal(copies: Copies, observe: float, max_trials: int) -> Search:
    """Observe the workload, then find the tightest proposal it still works under (see the module doc)."""
    trials: list[Trial] = []

    baseline_id = copies.start(None)
    if copies.mode == SERVICE:
        time.sleep(observe)
    ok, reason = copies.judge(baseline_id)
    baseline_logs = copies.api.logs(baseline_id, stdout=True, stderr=True).decode(errors="replace")
    trials.append(Trial("baseline (unchanged copy)", ok, reason, baseline_id, baseline_logs))
    if not ok:
        raise HardenError(
            f"the workload already fails in an unchanged copy ({reason}); a working baseline is needed to verify "
            "anything" + (" — pass --smoke with a command that succeeds" if copies.smoke else "")
        )
    changes = copies.api.diff(baseline_id) or []
    tmpfs, unresolved = tmpfs_from_changes(changes)
    original_running = bool(copies.original["State"].get("Running"))
    stats = copies.stats(str(copies.original["Id"]) if original_running else baseline_id)
    limits = limits_from_stats(stats)
    if stats is None:
        notes = ["resource use could not be sampled (the job ended first): limits are the floors, verified below"]
    else:
        notes = [f"limits from observed use {limits.observed} with 2x headroom"]
    if unresolved:
        notes.append(f"read-only root not proposed: the workload writes directly under / ({', '.join(unresolved)})")
    passwd = copies.read_file(baseline_id, "/etc/passwd")
    base = RunProposal(
        read_only=not unresolved,
        tmpfs=tuple(tmpfs),
        memory=limits.memory,
        pids_limit=limits.pids,
        cpus=limits.cpus,
        notes=tuple(notes),
    )

    tried: dict[tuple[str | None, frozenset[str]], bool] = {}

    def works(proposal: RunProposal, label: str) -> bool:
        key = (proposal.user, frozenset(proposal.cap_add))
        if key in tried:
            return tried[key]
        if len(trials) >= max_trials:
            raise _Budget
        trial = copies.run(label, proposal)
        trials.append(trial)
        tried[key] = trial.ok
        return trial.ok

    needed: dict[str, Any] = {}
    try:
        user = copies.original["Config"].get("User") or ""
        if runs_as_root(user):
            for candidate in non_root_users(passwd)[:2]:
                proposal = replace(base, user=candidate)
                if works(proposal, f"user {candidate}, no capabilities"):
                    return Search(proposal, True, trials, mode=copies.mode, baseline_changes=_paths(changes))
        added = tuple(_capability(c) for c in copies.original["HostConfig"].get("CapAdd") or [])
        found = _least_capabilities(base, works, trials, tuple(c for c in added if c not in DEFAULT_CAPABILITIES))
        if found is not None:
            return Search(found, True, trials, mode=copies.mode, baseline_changes=_paths(changes))
    except _Budget:
        needed["budget"] = f"stopped after {max_trials} trials (--max-trials)"
    last = trials[-1]
    hints, refusals = capability_hints("\n".join(t.logs for t in trials[1:]))
    needed.update(
        {
            "failure": f"{last.label}: {last.reason}",
            "capabilities_hinted": sorted(hints),
            "refused_operations": refusals,
            "paths_written": _paths(changes),
            "image_files_under_tmpfs": _shipped_files_under(changes, base.tmpfs),
        }
    )
    return Search(base, False, trials, needed, copies.mode, _paths(changes))


def _least_capabilities(
    base: RunProposal, works: Callable[[RunProposal, str], bool], trials: list[Trial], extra: tuple[str, ...]
) -> RunProposal | None:
    """The smallest capability set (found by bisection) the workload works with; None when even all fail."""
    if works(base.with_caps(()), "no capabilities"):
        return base.with_caps(())
    # Each refusal fixed may uncover the next one, so follow the EPERM lines while they name something new.
    needed: set[str] = set()
    while True:
        hints, _ = capability_hints(trials[-1].logs)
        if hints <= needed:
            break
        needed |= hints
        if works(base.with_caps(needed), f"capabilities from EPERM lines: {', '.join(sorted(needed))}"):
            return base.with_caps(needed)
    # The container's own additions are candidates too: a workload may really need one (it then stays, visibly).
    candidates = [c for c in (*DEFAULT_CAPABILITIES, *extra) if c not in needed]
    if not works(base.with_caps({*DEFAULT_CAPABILITIES, *extra}), "the default capabilities plus the container's"):
        return None  # not a capability problem: read-only root, limits or no-new-privileges broke it
    while not works(base.with_caps(needed), f"capabilities {', '.join(sorted(needed)) or 'none'}"):
        low, high = 0, len(candidates)  # works(needed + candidates[:high]) holds, works(needed) does not
        while high - low > 1:
            middle = (low + high) // 2
            trying = needed | set(candidates[:middle])
            if works(base.with_caps(trying), f"bisect: {', '.join(sorted(trying))}"):
                high = middle
            else:
                low = middle
        needed.add(candidates[high - 1])
        candidates = candidates[: high - 1]
    return base.with_caps(needed)


def _shipped_files_under(changes: list[dict[str, Any]], directories: tuple[str, ...]) -> list[str]:
    """Files the image ships (changed, not added) inside a proposed tmpfs: the tmpfs hides them from the workload."""
    changed = [str(c.get("Path")) for c in changes if int(c.get("Kind", 0)) == 0]
    inside = [p for p in changed if any(p.startswith(d + "/") for d in directories)]
    return [p for p in inside if not any(other.startswith(p + "/") for other in changed)]


def _capability(name: str) -> str:
    return str(name).upper().removeprefix("CAP_")


def _paths(changes: list[dict[str, Any]]) -> list[str]:
    kinds = {0: "changed", 1: "added", 2: "deleted"}
    return [f"{kinds.get(int(c.get('Kind', 0)), '?')} {c.get('Path')}" for c in changes][:50]


@dataclass
class Verification:
    ok: bool
    reason: str
    copy_name: str
    rules: list[dict[str, str]] = field(default_factory=list)

    @property
    def failed_before(self) -> int:
        return sum(1 for r in self.rules if r["before"] == "fail")

    @property
    def failed_after(self) -> int:
        return sum(1 for r in self.rules if r["after"] == "fail")

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "reason": self.reason,
            "copy": self.copy_name,
            "section5_failed_before": self.failed_before,
            "section5_failed_after": self.failed_after,
            "rules": self.rules,
        }


def verify_proposal(copies: Copies, conn: EngineConnection, proposal: RunProposal) -> Verification:
    """Start a copy with the proposal (restart policy included), judge it, and audit it against the original."""
    from portcullis.collect.audit import collect_facts
    from portcullis.pipelines.audit import audit_report

    trial = copies.run("verification", proposal, keep_restart=True)
    copy_name = str(copies.api.inspect_container(trial.container_id)["Name"]).lstrip("/")
    report = audit_report(collect_facts(conn), ["CIS-5"], [], None)
    before: dict[str, str] = {}
    after: dict[str, str] = {}
    said: dict[str, str] = {}
    for finding in report.findings:
        if finding.target.name == copies.name:
            before[finding.rule_id] = finding.status.value
        elif finding.target.name == copy_name:
            after[finding.rule_id] = finding.status.value
            said[finding.rule_id] = finding.message
    rules = [
        {
            "rule_id": rule_id,
            "before": before.get(rule_id, "-"),
            "after": after.get(rule_id, "-"),
            "after_message": said.get(rule_id, ""),
        }
        for rule_id in sorted(set(before) | set(after), key=_control_order)
        if rule_id not in PORT_RULES
    ]
    return Verification(trial.ok, trial.reason, copy_name, rules)


def _control_order(rule_id: str) -> tuple[int, ...]:
    return tuple(int(p) for p in rule_id.removeprefix("CIS-").split(".") if p.isdigit())


def recreate_with(copies: Copies, proposal: RunProposal, log: Callable[[str], None]) -> str:
    """Replace the user's container by one with the proposal, same name; roll back when the new one fails.

    The old container is renamed (and stopped, to free its ports) and kept until the new one works; on any
    failure the new one is removed, the old one gets its name back and is started again if it was running.
    """
    api = copies.api
    original = copies.original
    name = copies.name
    old_id = str(original["Id"])
    was_running = bool(original["State"].get("Running"))
    backup = f"{name}-portcullis-old-{int(time.time())}"
    config = {k: v for k, v in original["Config"].items() if k != "Hostname"}
    config["Image"] = original["Image"]
    host, config = proposal.apply_to(dict(original["HostConfig"]), config)
    host["Binds"] = list(host.get("Binds") or []) + _anonymous_volumes(original)
    networks = (original.get("NetworkSettings") or {}).get("Networks") or {}
    endpoints = {
        net: {"Aliases": [a for a in (ep.get("Aliases") or []) if a != old_id[:12]] or None}
        for net, ep in networks.items()
        if net not in ("bridge", "host", "none")
    }
    body = {**config, "HostConfig": host}
    if endpoints:
        body["NetworkingConfig"] = {"EndpointsConfig": endpoints}
    api.rename(old_id, backup)
    new_id = ""
    try:
        if was_running:
            api.stop(old_id, timeout=10)
        new_id = str(api.create_container_from_config(body, name=name)["Id"])
        api.start(new_id)
        ok, reason = copies.judge(new_id)
        if not ok:
            raise HardenError(f"the recreated {name} does not work ({reason}); rolled back to the old container")
    except BaseException:
        if new_id:
            api.remove_container(new_id, force=True)
        api.rename(old_id, name)
        if was_running:
            api.start(old_id)
        raise
    api.remove_container(old_id, force=True)
    log(f"{name} recreated with the proposal ({reason}); the old container was removed")
    return new_id


def _anonymous_volumes(original: dict[str, Any]) -> list[str]:
    """Image VOLUMEs the container got fresh volumes for: the new container must reuse them, not start empty."""
    host = original["HostConfig"]
    declared = {str(b).split(":")[1] for b in host.get("Binds") or [] if ":" in str(b)}
    declared |= {str(m.get("Target")) for m in host.get("Mounts") or []}
    return [
        f"{m['Name']}:{m['Destination']}" + ("" if m.get("RW") else ":ro")
        for m in original.get("Mounts") or []
        if m.get("Type") == "volume" and m.get("Destination") not in declared
    ]

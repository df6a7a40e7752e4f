"""One AuthZReq in, one verdict out: the audit's section-5 rules judge the container the request would make.

The verdicts the plugin reaches on its own, before any rule runs, carry their own ids:
AUTHZ-BODY-MISSING (a request that must carry a body arrived without one: CVE-2024-41110, CVE-2026-34040),
AUTHZ-BODY-SIZE, AUTHZ-BODY-INVALID, AUTHZ-FIELD (a field the plugin does not model), AUTHZ-POLICY (the policy
file cannot be loaded) and AUTHZ-INTERNAL (the plugin failed). All of them deny, except AUTHZ-FIELD for
harmless-looking fields or under `unknown_fields: log`.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from posixpath import normpath
from typing import Any
from urllib.parse import unquote, urlsplit

from portcullis.authz.lookup import EngineLookup, EngineLookupError
from portcullis.authz.policy import Policy
from portcullis.authz.request import BodyError, Parsed, parse_create, parse_exec, parse_start, parse_update
from portcullis.checks.registry import RULE_MODULES, Outcome, Rule, all_rules
from portcullis.model.facts import ContainerFacts, EngineFacts, EngineInfo, EngineVersion, Facts
from portcullis.model.findings import Status

# The audit's container rules: CIS section 5 and Portcullis's own runtime rules (DKR-RT-*).
JUDGED_MODULES = tuple(
    m
    for m in RULE_MODULES
    if m.startswith("portcullis.checks.cis.s5_runtime.") or m == "portcullis.checks.runtime_rules"
)

# The engine the rules assume: seccomp and AppArmor available, the daemon's default socket. A request that opts
# out of them (seccomp=unconfined, apparmor=unconfined) is what the rules then catch.
ASSUMED_ENGINE = EngineFacts(
    endpoint="unix:///var/run/docker.sock",
    local=True,
    info=EngineInfo(security_options=["name=apparmor", "name=seccomp,profile=builtin"]),
    version=EngineVersion(),
)

# The rules that judge exec sessions: only they judge an exec request, and they never judge a create.
EXEC_RULES = frozenset({"CIS-5.23", "CIS-5.24"})
# The rules that read a user the request may leave to the engine's default (see lookup.py).
ROOT_EXEC_RULE, ROOT_USER_RULE = "CIS-5.24", "DKR-RT-001"
_VERSION = re.compile(r"^/v[0-9]+(\.[0-9]+)?(?=/)")
_CREATE = re.compile(r"^/containers/create$")
_EXEC = re.compile(r"^/containers/([^/]+)/exec$")
_UPDATE = re.compile(r"^/containers/([^/]+)/update$")
_START = re.compile(r"^/containers/([^/]+)/start$")
# Before API 1.24 a start could carry a HostConfig that replaces the container's (dockerd 20.10 still honours it):
# `POST /v1.23/containers/ID/start {"Binds": ["/:/host"]}` would otherwise pass a plugin that judges creates only.
START_BODY_MAX_API = (1, 24)


@dataclass(frozen=True)
class Verdict:
    allow: bool
    message: str
    logged: list[str] = field(default_factory=list)  # failures the policy only logs, and exemptions used

    def reply(self) -> dict[str, Any]:
        return {"Allow": self.allow, "Msg": self.message}


def deny(reason_id: str, message: str) -> Verdict:
    return Verdict(False, f"portcullis authz denied this request: {reason_id}: {message}")


def judged_rules() -> list[Rule]:
    return all_rules(JUDGED_MODULES)


def _host_cgroupns(container: ContainerFacts) -> str | None:
    if container.host_config.cgroupns_mode == "host":
        return "the container asks for the host's cgroup namespace (--cgroupns host)"
    return None


# Checks only the plugin makes, on what a request asks for: an audit sees the daemon's default in inspect and
# cannot tell it from a request (on cgroup v1 every container shows CgroupnsMode host).
REQUEST_CHECKS: dict[str, Callable[[ContainerFacts], str | None]] = {"DKR-AUTHZ-001": _host_cgroupns}


def api_version(uri: str) -> tuple[int, int] | None:
    """The API version a request names in its path (/v1.23/...); None when it names none (the engine's own)."""
    path = normpath("/" + unquote(urlsplit(uri).path).lstrip("/"))
    m = _VERSION.match(path)
    if m is None:
        return None
    major, _, minor = m.group(0)[2:].partition(".")
    return int(major), int(minor or 0)


def route(method: str, uri: str) -> tuple[str, str] | None:
    """Which judged call a request is ('create', name) / ('exec', id) / ('update', id) / ('start', id); None for
    any other."""
    if method.upper() != "POST":
        return None
    parts = urlsplit(uri)
    # normpath keeps a leading "//", so the slashes go first: //v1.47//containers/create is still a create.
    path = normpath("/" + unquote(parts.path).lstrip("/"))
    path = _VERSION.sub("", path, count=1)
    if _CREATE.match(path):
        query = dict(p.partition("=")[::2] for p in parts.query.split("&") if p)
        return "create", unquote(query.get("name", ""))
    if m := _EXEC.match(path):
        return "exec", m.group(1)
    if m := _UPDATE.match(path):
        return "update", m.group(1)
    if m := _START.match(path):
        return "start", m.group(1)
    return None


class Judge:
    def __init__(self, rules: list[Rule], lookup: EngineLookup | None = None) -> None:
        self.rules = rules
        self.facts = Facts(engine=ASSUMED_ENGINE)
        self.lookup = lookup  # None: the engine's defaults are not read back, an unset user counts as root

    @property
    def rule_ids(self) -> list[str]:
        """Every id a policy may name: the audit's rules the plugin runs and its own request checks."""
        return [r.id for r in self.rules] + list(REQUEST_CHECKS)

    def request(self, message: Any, policy: Policy) -> Verdict:
        """The verdict on an AuthZReq message (already decoded from JSON)."""
        if not isinstance(message, dict):
            return deny("AUTHZ-BODY-INVALID", "the plugin request is not a JSON object")
        method, uri = message.get("RequestMethod"), message.get("RequestUri")
        if not isinstance(method, str) or not isinstance(uri, str):
            return deny("AUTHZ-BODY-INVALID", "the plugin request has no RequestMethod/RequestUri")
        call = route(method, uri)
        if call is None:
            return Verdict(True, "")
        kind, subject = call
        encoded = message.get("RequestBody")
        if kind == "start" and not encoded:
            if _start_body_hidden(uri, message.get("RequestHeaders")):
                hidden = "a start before API 1.24 may carry a HostConfig, and the plugin was not sent it"
                return deny("AUTHZ-BODY-MISSING", hidden)
            return Verdict(True, "")
        if encoded is None or encoded == "":
            return deny("AUTHZ-BODY-MISSING", f"a {kind} request must carry a JSON body and this one arrived empty")
        if not isinstance(encoded, str) or len(encoded) > (policy.max_body_bytes * 4) // 3 + 4:
            return deny("AUTHZ-BODY-SIZE", f"the body is larger than the policy's {policy.max_body_kib} KiB")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            return deny("AUTHZ-BODY-INVALID", "the request body is not valid base64")
        if len(raw) > policy.max_body_bytes:
            return deny("AUTHZ-BODY-SIZE", f"the body is larger than the policy's {policy.max_body_kib} KiB")
        try:
            if kind == "create":
                parsed = parse_create(raw, subject)
            elif kind == "exec":
                parsed = parse_exec(raw, subject)
            elif kind == "start":
                parsed = parse_start(raw, subject)
            else:
                parsed = parse_update(raw)
        except BodyError as exc:
            return deny("AUTHZ-BODY-INVALID", str(exc))
        try:
            self._fill_default_user(parsed, policy)
        except EngineLookupError as exc:
            return deny("AUTHZ-LOOKUP", str(exc))
        return self._judge(parsed, policy)

    def _fill_default_user(self, parsed: Parsed, policy: Policy) -> None:
        """An exec or create that leaves the user unset runs as the container's or image's user: read it from the
        engine, only when a rule the policy acts on looks at it."""
        subject = parsed.subject
        if self.lookup is None or subject is None or subject.config.user:
            return
        if parsed.exec_only:
            sessions = subject.exec_sessions or []
            if policy.action(ROOT_EXEC_RULE) and any(not s.user for s in sessions):
                subject.config.user = self.lookup.container_user(subject.id)
        elif parsed.kind == "create" and policy.action(ROOT_USER_RULE) and parsed.image:
            subject.config.user = self.lookup.image_user(parsed.image)

    def _judge(self, parsed: Parsed, policy: Policy) -> Verdict:
        denials: list[str] = []
        logged: list[str] = []
        found: list[tuple[str, str, str]] = []  # (rule id, the policy's action, what failed)
        for unknown in parsed.unknown:
            if unknown.alias_of is not None:
                denials.append(f"AUTHZ-FIELD: {unknown.where} is spelled unlike {unknown.alias_of}, which dockerd sets")
            elif unknown.dangerous and policy.unknown_fields == "deny":
                denials.append(f"AUTHZ-FIELD: {unknown.where} is a field the plugin does not model")
            else:
                logged.append(f"AUTHZ-FIELD: {unknown.where} is a field the plugin does not model")
        if parsed.subject is not None:
            for rule in self.rules:
                if (rule.id in EXEC_RULES) != parsed.exec_only:
                    continue
                action = policy.action(rule.id)
                if action is None:
                    continue
                for outcome in _outcomes(rule.check(parsed.subject, self.facts)):
                    # A gate has no one to confirm a manual verdict: the policy's action applies to it too.
                    if outcome.status in (Status.FAIL, Status.MANUAL):
                        found.append((rule.id, action, outcome.message))
            if not parsed.exec_only:
                for rule_id, check in REQUEST_CHECKS.items():
                    request_action = policy.action(rule_id)
                    if request_action is not None and (message := check(parsed.subject)) is not None:
                        found.append((rule_id, request_action, message))
        for rule_id, verdict, message in found:
            line = f"{rule_id}: {message}"
            exemption = policy.exemption(rule_id, parsed.image, parsed.labels)
            if exemption is not None:
                logged.append(f"{line} (exempt: {exemption.reason})")
            elif verdict == "deny":
                denials.append(line)
            else:
                logged.append(line)
        if denials:
            return Verdict(False, "portcullis authz denied this request: " + "; ".join(denials), logged)
        return Verdict(True, "", logged)


def _start_body_hidden(uri: str, headers: Any) -> bool:
    """A bodiless start that dockerd may still have read a HostConfig from: an API version before 1.24 and no
    Content-Length of 0 (a chunked body, or one above dockerd's 1 MiB forwarding limit, reaches no plugin)."""
    version = api_version(uri)
    if version is None or version >= START_BODY_MAX_API:
        return False
    length = headers.get("Content-Length") if isinstance(headers, dict) else None
    return length != "0"


def _outcomes(result: Any) -> list[Outcome]:
    return [result] if isinstance(result, Outcome) else list(result)

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
from dataclasses import dataclass, field
from posixpath import normpath
from typing import Any
from urllib.parse import unquote, urlsplit

from portcullis.authz.policy import Policy
from portcullis.authz.request import BodyError, Parsed, parse_create, parse_exec, parse_update
from portcullis.checks.registry import RULE_MODULES, Outcome, Rule, all_rules
from portcullis.model.facts import EngineFacts, EngineInfo, EngineVersion, Facts
from portcullis.model.findings import Status

SECTION_5 = tuple(m for m in RULE_MODULES if m.startswith("portcullis.checks.cis.s5_runtime."))

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
_VERSION = re.compile(r"^/v[0-9]+(\.[0-9]+)?(?=/)")
_CREATE = re.compile(r"^/containers/create$")
_EXEC = re.compile(r"^/containers/([^/]+)/exec$")
_UPDATE = re.compile(r"^/containers/([^/]+)/update$")


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
    return all_rules(SECTION_5)


def route(method: str, uri: str) -> tuple[str, str] | None:
    """Which judged call a request is ('create', name) / ('exec', id) / ('update', id); None for any other."""
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
    return None


class Judge:
    def __init__(self, rules: list[Rule]) -> None:
        self.rules = rules
        self.facts = Facts(engine=ASSUMED_ENGINE)

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
            else:
                parsed = parse_update(raw)
        except BodyError as exc:
            return deny("AUTHZ-BODY-INVALID", str(exc))
        return self._judge(parsed, policy)

    def _judge(self, parsed: Parsed, policy: Policy) -> Verdict:
        denials: list[str] = []
        logged: list[str] = []
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
                    if outcome.status is not Status.FAIL:
                        continue
                    line = f"{rule.id}: {outcome.message}"
                    exemption = policy.exemption(rule.id, parsed.image, parsed.labels)
                    if exemption is not None:
                        logged.append(f"{line} (exempt: {exemption.reason})")
                    elif action == "deny":
                        denials.append(line)
                    else:
                        logged.append(line)
        if denials:
            return Verdict(False, "portcullis authz denied this request: " + "; ".join(denials), logged)
        return Verdict(True, "", logged)


def _outcomes(result: Any) -> list[Outcome]:
    return [result] if isinstance(result, Outcome) else list(result)

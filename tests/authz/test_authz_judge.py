"""The judge over AuthZReq messages recorded from dockerd 20.10.24 with the docker 28.2 CLI (tests/authz/bodies)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from portcullis.authz.judge import Judge, api_version, judged_rules, route
from portcullis.authz.lookup import EngineLookup
from portcullis.authz.policy import Policy, parse_policy

BODIES = Path(__file__).parent / "bodies"
JUDGE = Judge(judged_rules())
POLICY = parse_policy(
    "deny: [CIS-5.5, CIS-5.6, CIS-5.18, DKR-RT-002, DKR-RT-003, DKR-AUTHZ-001]\nlog: [DKR-RT-004]\n",
    JUDGE.rule_ids,
    "test",
)


def recorded(name: str) -> dict[str, Any]:
    message: dict[str, Any] = json.loads((BODIES / f"{name}.json").read_text())
    return message


def judge(message: dict[str, Any], policy: Policy = POLICY) -> tuple[bool, str, list[str]]:
    verdict = JUDGE.request(message, policy)
    return verdict.allow, verdict.message, verdict.logged


@pytest.mark.parametrize(
    ("name", "rule_id", "says"),
    [
        ("create-sysctl-host-network", "DKR-RT-002", "net.ipv4.ip_forward"),
        ("create-device-cgroup-rule", "CIS-5.18", "cgroup rule 'c *:* rwm'"),
        ("create-device", "CIS-5.18", "/dev/null"),
        ("create-cgroupns-host", "DKR-AUTHZ-001", "host's cgroup namespace"),
        ("create-systempaths-unconfined", "DKR-RT-003", "MaskedPaths and ReadonlyPaths emptied"),
        ("create-privileged-api124", "CIS-5.5", "privileged"),
    ],
)
def test_a_recorded_dangerous_create_is_denied_by_its_rule(name: str, rule_id: str, says: str) -> None:
    allow, message, _ = judge(recorded(name))
    assert not allow
    assert f"{rule_id}: " in message and says in message, message


def test_the_privileged_create_came_through_an_old_api_version() -> None:
    assert api_version(recorded("create-privileged-api124")["RequestUri"]) == (1, 24)
    assert api_version("/containers/create") is None


@pytest.mark.parametrize("name", ["create-plain", "create-sysctl-own-network"])
def test_a_recorded_safe_create_passes(name: str) -> None:
    assert judge(recorded(name)) == (True, "", [])


def test_a_non_default_runtime_is_for_the_policy_to_decide() -> None:
    """DKR-RT-004 is a manual verdict in the audit; at the gate the policy's action applies to it."""
    message = recorded("create-runtime-other")
    allow, _, logged = judge(message)
    assert allow and logged == ["DKR-RT-004: confirm the runtime runsc is intended (the default is runc)"]
    strict = parse_policy("deny: [DKR-RT-004]\n", JUDGE.rule_ids, "strict")
    allow, text, _ = judge(message, strict)
    assert not allow and "DKR-RT-004: confirm the runtime runsc" in text
    assert judge(recorded("create-plain"), strict)[0]


def test_privileged_spelled_in_another_case_or_another_version_path_is_still_judged() -> None:
    message = recorded("create-plain")
    body = json.loads(base64.b64decode(message["RequestBody"]))
    body["HostConfig"]["Privileged"] = True
    for uri in ("/v1.12/containers/create", "/containers/create", "//v1.41//containers/create?name=x"):
        forged = {**message, "RequestUri": uri, "RequestBody": base64.b64encode(json.dumps(body).encode()).decode()}
        allow, text, _ = judge(forged)
        assert not allow and "CIS-5.5" in text, uri
    del body["HostConfig"]["Privileged"]
    body["HostConfig"]["privileged"] = True
    forged = {**message, "RequestBody": base64.b64encode(json.dumps(body).encode()).decode()}
    allow, text, _ = judge(forged)
    assert not allow and "AUTHZ-FIELD: HostConfig.privileged" in text


def start(uri: str, body: bytes | None, length: str | None) -> dict[str, Any]:
    headers = {"User-Agent": "docker-sdk-python/7.2.0"} | ({"Content-Length": length} if length is not None else {})
    return {
        "RequestMethod": "POST",
        "RequestUri": uri,
        "RequestHeaders": headers,
        "RequestBody": base64.b64encode(body).decode() if body else None,
    }


def test_a_start_carrying_a_host_config_is_judged_like_a_create() -> None:
    """Recorded: dockerd 20.10.24 honours `POST /v1.23/containers/ID/start {"Binds": ["/etc:/hostetc"]}` (the
    container ran with /etc mounted) and asks the plugin with that body."""
    body = b'{"Binds": ["/etc:/hostetc"]}'
    allow, text, _ = judge(start("/v1.23/containers/57993149d06a/start", body, "28"))
    assert not allow and "CIS-5.6" in text and "/etc" in text, text
    allow, text, _ = judge(start("/v1.23/containers/57993149d06a/start", b'{"Binds": ["data:/data"]}', "26"))
    assert allow, text


def test_a_bodiless_start_passes_unless_an_old_api_may_have_hidden_its_body() -> None:
    assert route("POST", "/v1.41/containers/abc/start") == ("start", "abc")
    assert judge(start("/v1.41/containers/abc/start", None, "0"))[0]
    assert judge(start("/containers/abc/start", None, None))[0]  # the current API refuses a start body itself
    assert judge(start("/v1.23/containers/abc/start", None, "0"))[0]
    # chunked (no Content-Length reaches the plugin) or above dockerd's 1 MiB forwarding limit: the body is unseen
    for length in (None, str(2 << 20)):
        allow, text, _ = judge(start("/v1.23/containers/abc/start", None, length))
        assert not allow and "AUTHZ-BODY-MISSING" in text


def test_the_policy_may_name_the_plugins_own_checks_and_the_runtime_rules() -> None:
    assert {"DKR-AUTHZ-001", "DKR-RT-001", "DKR-RT-002", "CIS-5.18", "CIS-5.24"} <= set(JUDGE.rule_ids)
    assert "CIS-2.13" not in JUDGE.rule_ids


def test_an_exec_without_user_counts_as_root_unless_the_engine_is_asked() -> None:
    policy = parse_policy("deny: [CIS-5.24]\n", JUDGE.rule_ids, "exec")
    allow, text, _ = judge(recorded("exec-no-user"), policy)
    assert not allow and "CIS-5.24" in text and "1 exec session(s) run as root" in text


def test_a_lookup_the_engine_cannot_answer_denies_and_is_made_only_when_a_rule_needs_it(tmp_path: Path) -> None:
    blind = Judge(judged_rules(), EngineLookup(str(tmp_path / "no-engine.sock"), timeout=0.5))
    needs_exec_user = parse_policy("deny: [CIS-5.24]\n", blind.rule_ids, "exec")
    verdict = blind.request(recorded("exec-no-user"), needs_exec_user)
    assert not verdict.allow and "AUTHZ-LOOKUP: the user of container" in verdict.message
    needs_image_user = parse_policy("deny: [DKR-RT-001]\n", blind.rule_ids, "create")
    verdict = blind.request(recorded("create-plain"), needs_image_user)
    assert not verdict.allow and "AUTHZ-LOOKUP: the default user of image portcullis-test/busybox:1" in verdict.message
    assert blind.request(recorded("create-plain"), POLICY).allow  # no rule in POLICY reads the user: no lookup

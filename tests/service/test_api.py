"""The fleet API over real HTTP against a running `portcullis serve`, on SQLite and on PostgreSQL: tokens and roles,
idempotent pushes, the fleet's engines, images, findings and trends, bounded bodies, JSON errors, the OpenAPI
document. Each test uses its own agent names, so tests sharing a server do not see each other's engines."""

from __future__ import annotations

import json
import threading
from typing import Any

from portcullis import __version__
from portcullis.model.findings import (
    Finding,
    Report,
    Severity,
    Status,
    Summary,
    Target,
    TargetKind,
    ToolInfo,
    VulnerabilityDetail,
)
from portcullis.model.vuln import Ecosystem, FixState, VendorStatus
from portcullis.service.tokens import Role
from portcullis.store import open_store
from support.fleet_service import MAX_BODY_MIB, Service


def check(rule: str, severity: Severity, status: Status = Status.FAIL, *, engine: str | None = None) -> Finding:
    return Finding(
        rule_id=rule,
        title=rule,
        cis=None,
        status=status,
        severity=severity,
        target=Target(kind=TargetKind.DAEMON, name="dockerd"),
        message=f"{rule} {status.value}",
        engine=engine,
    )


def vulnerability(advisory: str, package: str, severity: Severity) -> Finding:
    detail = VulnerabilityDetail(
        advisory_id=advisory,
        package=package,
        installed_version="1.0",
        fixed_version="1.1",
        fix_state=FixState.FIXED,
        ecosystem=Ecosystem.DEBIAN,
        purl=f"pkg:deb/debian/{package}@1.0",
        severity=severity,
        severity_source="vendor",
        vendor_status=VendorStatus(source="debian-tracker", release="bookworm", status="resolved"),
    )
    return Finding(
        rule_id="DKR-VULN",
        title=f"{advisory} in {package}",
        cis=None,
        status=Status.FAIL,
        severity=severity,
        target=Target(kind=TargetKind.IMAGE, name="shop/web:1"),
        message=f"{package} 1.0 has {advisory}",
        vulnerability=detail,
    )


def report(command: str, subject: str, *findings: Finding) -> dict[str, Any]:
    items = list(findings)
    model = Report(
        command=command, tool=ToolInfo(version="9.9"), subject=subject, findings=items, summary=Summary.of(items)
    )
    loaded: dict[str, Any] = json.loads(model.model_dump_json())
    return loaded


def push(service: Service, token: str, agent: str, report_id: str, body: dict[str, Any]) -> Any:
    return service.call("POST", "/reports", token, json={"report_id": report_id, "agent": agent, "report": body})


AUDIT = report(
    "audit",
    "unix:///var/run/docker.sock",
    check("CIS-2.1", Severity.HIGH),
    check("CIS-2.2", Severity.MEDIUM),
    check("CIS-2.3", Severity.LOW, Status.PASS),
)


def test_nothing_is_read_or_written_without_a_token_of_the_right_role(service: Service) -> None:
    agent = service.token("roles-agent", Role.AGENT)
    reader = service.token("roles-reader", Role.READER)
    token_id = agent.split("_")[1]
    for token in (None, "garbage", f"pcs_{token_id}_not-the-secret", "pcs_000000000000_x"):
        for method, path in (("POST", "/reports"), ("GET", "/findings"), ("GET", "/engines"), ("GET", "/openapi.json")):
            answer = service.call(method, path, token, json={})
            assert answer.status_code == 401, (token, path, answer.text)
            assert answer.headers["www-authenticate"] == "Bearer"
            assert set(answer.json()) == {"error"}
    refused = push(service, reader, "roles-reader", "r1", AUDIT)
    assert (refused.status_code, refused.json()) == (
        403,
        {"error": "a reader token cannot do this; it takes a token of role agent"},
    )
    for path in ("/findings", "/engines", "/images", "/trends"):
        assert service.call("GET", path, agent).status_code == 403
    impostor = push(service, agent, "someone-else", "r1", AUDIT)
    assert (impostor.status_code, impostor.json()["error"]) == (
        403,
        "this token pushes as roles-agent, not as someone-else",
    )
    assert push(service, agent, "roles-agent", "r1", AUDIT).status_code == 201
    assert service.call("GET", "/engines", reader).status_code == 200


def test_health_needs_no_token_and_says_only_that_the_store_answers(service: Service) -> None:
    for token in (None, "garbage"):
        answer = service.call("GET", "/health", token)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"status": "ok", "version": __version__}


def test_a_retried_push_is_stored_once_and_a_reused_id_with_other_content_is_refused(service: Service) -> None:
    agent = service.token("retry-agent", Role.AGENT)
    other = service.token("retry-other", Role.AGENT)
    first = push(service, agent, "retry-agent", "2026-12-03T10:00:00Z.1", AUDIT)
    again = push(service, agent, "retry-agent", "2026-12-03T10:00:00Z.1", AUDIT)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json() | {"created": False}
    changed = dict(AUDIT, subject="unix:///elsewhere.sock")
    conflict = push(service, agent, "retry-agent", "2026-12-03T10:00:00Z.1", changed)
    assert conflict.status_code == 409 and "pushed before with a different report" in conflict.json()["error"]
    # another agent's report id is its own: the same id from it is a new run
    assert push(service, other, "retry-other", "2026-12-03T10:00:00Z.1", AUDIT).status_code == 201

    # eight copies of one push racing each other: one run, every answer naming it
    answers: list[Any] = []
    racers = [
        threading.Thread(target=lambda: answers.append(push(service, agent, "retry-agent", "race", AUDIT)))
        for _ in range(8)
    ]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    assert sorted(a.status_code for a in answers) == [200] * 7 + [201]
    assert len({a.json()["run_id"] for a in answers}) == 1
    store = open_store(service.store)
    try:
        pushed = [r for r in store.execute("SELECT report_uid FROM runs WHERE agent = 'retry-agent'")]
    finally:
        store.close()
    assert sorted(pushed) == [("2026-12-03T10:00:00Z.1",), ("race",)]


def test_engines_images_and_findings_by_filter_and_page(service: Service) -> None:
    agent = service.token("filter-agent", Role.AGENT)
    reader = service.token("filter-reader", Role.READER)
    many = report(  # one agent auditing two engines in one run: each finding names its engine
        "audit",
        "fleet",
        check("CIS-2.1", Severity.HIGH, engine="filter-east"),
        check("CIS-2.2", Severity.MEDIUM, engine="filter-east"),
        check("CIS-2.3", Severity.CRITICAL, engine="filter-west"),
        check("CIS-2.4", Severity.LOW, Status.PASS, engine="filter-west"),
    )
    scan = report(
        "image",
        "shop/web:1",
        vulnerability("CVE-2026-0001", "openssl", Severity.CRITICAL),
        vulnerability("CVE-2026-0002", "zlib", Severity.LOW),
        vulnerability("CVE-2026-0003", "curl", Severity.HIGH),
    )
    old = push(service, agent, "filter-agent", "audit-1", many).json()["run_id"]
    assert push(service, agent, "filter-agent", "scan-1", scan).status_code == 201
    # a newer audit of the same stream: the fleet's state is now this one; east's HIGH is fixed
    newer = report(
        "audit",
        "fleet",
        check("CIS-2.2", Severity.MEDIUM, engine="filter-east"),
        check("CIS-2.3", Severity.CRITICAL, engine="filter-west"),
    )
    latest = push(service, agent, "filter-agent", "audit-2", newer).json()["run_id"]

    def get(path: str, **params: Any) -> Any:
        answer = service.call("GET", path, reader, params=params)
        assert answer.status_code == 200, answer.text
        return answer.json()

    engines = {e["name"]: e for e in get("/engines")}
    assert engines["filter-east"]["failing"] == {"medium": 1}
    assert engines["filter-west"]["failing"] == {"critical": 1}
    assert engines["filter-east"]["last_run"] == latest
    images = {i["name"]: i for i in get("/images")}
    assert images["shop/web:1"]["failing"] == {"critical": 1, "low": 1, "high": 1}

    east = get("/findings", engine="filter-east")["findings"]
    assert [(f["rule_id"], f["run_id"], f["agent"]) for f in east] == [("CIS-2.2", latest, "filter-agent")]
    east_then = get("/findings", engine="filter-east", run=old)["findings"]
    assert [f["rule_id"] for f in east_then] == ["CIS-2.1", "CIS-2.2"]
    assert [f["rule_id"] for f in get("/findings", engine="filter-west", status="pass", run=old)["findings"]] == [
        "CIS-2.4"
    ]
    by_advisory = get("/findings", rule="CVE-2026-0003")["findings"]
    assert [(f["rule_id"], f["advisory"], f["image"]) for f in by_advisory] == [
        ("DKR-VULN", "CVE-2026-0003", "shop/web:1")
    ]
    serious = get("/findings", image="shop/web:1", severity=["critical", "high"])["findings"]
    assert sorted(f["advisory"] for f in serious) == ["CVE-2026-0001", "CVE-2026-0003"]

    pages, offset = [], 0
    while offset is not None:
        page = get("/findings", image="shop/web:1", limit=2, offset=offset)
        pages.append([f["advisory"] for f in page["findings"]])
        offset = page["next_offset"]
    assert pages == [["CVE-2026-0001", "CVE-2026-0002"], ["CVE-2026-0003"]]

    bad = service.call("GET", "/findings", reader, params={"severity": "dire"})
    assert bad.status_code == 422 and bad.json()["error"].startswith("query.severity.0: Input should be")
    assert service.call("GET", "/findings", reader, params={"limit": 0}).status_code == 422


def test_trends_count_failures_per_run_and_severity(service: Service) -> None:
    agent = service.token("trend-agent", Role.AGENT)
    reader = service.token("trend-reader", Role.READER)
    for n, findings in enumerate(
        [
            [check("CIS-1", Severity.HIGH, engine="trend-a"), check("CIS-2", Severity.HIGH, engine="trend-b")],
            [check("CIS-1", Severity.HIGH, engine="trend-a"), check("CIS-3", Severity.LOW, engine="trend-a")],
            [check("CIS-1", Severity.HIGH, Status.PASS, engine="trend-a")],
        ]
    ):
        assert push(service, agent, "trend-agent", f"t{n}", report("audit", "fleet", *findings)).status_code == 201
    points = service.call("GET", "/trends", reader, params={"engine": "trend-a"}).json()
    assert [p["failing"] for p in points] == [{"high": 1}, {"high": 1, "low": 1}, {}]
    assert points[0]["started_at"] <= points[1]["started_at"] <= points[2]["started_at"]
    only_b = service.call("GET", "/trends", reader, params={"engine": "trend-b"}).json()
    assert [p["failing"] for p in only_b] == [{"high": 1}]


def test_a_body_over_the_limit_is_refused_before_it_is_stored(service: Service) -> None:
    agent = service.token("body-agent", Role.AGENT)
    huge = report("audit", "big", *(check(f"R-{n}", Severity.LOW) for n in range(4000)))
    envelope = json.dumps({"report_id": "big", "agent": "body-agent", "report": huge}).encode()
    assert len(envelope) > MAX_BODY_MIB * 1024 * 1024
    declared = service.call("POST", "/reports", agent, data=envelope, headers={"content-type": "application/json"})
    assert declared.status_code == 413, declared.text
    assert declared.json() == {"error": f"the request body is over the limit of {MAX_BODY_MIB * 1024 * 1024} bytes"}

    def streamed() -> Any:  # chunked: no Content-Length to refuse it by, so it is counted as it arrives
        for start in range(0, len(envelope), 65536):
            yield envelope[start : start + 65536]

    chunked = service.call("POST", "/reports", agent, data=streamed(), headers={"content-type": "application/json"})
    assert chunked.status_code == 413 and "over the limit" in chunked.json()["error"]
    store = open_store(service.store)
    try:
        assert store.execute("SELECT count(*) FROM runs WHERE agent = 'body-agent'") == [(0,)]
    finally:
        store.close()


def test_bad_input_gets_one_json_error_never_a_traceback(service: Service) -> None:
    agent = service.token("bad-agent", Role.AGENT)
    cases = [
        ({"report_id": "x", "agent": "bad-agent", "report": {"command": "audit"}}, "report.tool: Field required"),
        ({"report_id": "no spaces", "agent": "bad-agent", "report": AUDIT}, "report_id: String should match pattern"),
        ({"agent": "bad-agent", "report": AUDIT}, "report_id: Field required"),
    ]
    for body, start in cases:
        answer = service.call("POST", "/reports", agent, json=body)
        assert answer.status_code == 422 and answer.json()["error"].startswith(start), answer.text
    broken = service.call("POST", "/reports", agent, data="{not json", headers={"content-type": "application/json"})
    assert broken.status_code == 422 and broken.json()["error"].startswith("the body is not JSON")
    missing = service.call("GET", "/nowhere", agent)
    assert (missing.status_code, missing.json()) == (404, {"error": "Not Found"})
    wrong_method = service.call("DELETE", "/reports", agent)
    assert wrong_method.status_code == 405 and set(wrong_method.json()) == {"error"}


def test_the_openapi_document_describes_the_api_to_any_token_holder(service: Service) -> None:
    agent = service.token("openapi-agent", Role.AGENT)
    document = service.call("GET", "/openapi.json", agent).json()
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == {
        "/api/v1/reports",
        "/api/v1/engines",
        "/api/v1/images",
        "/api/v1/findings",
        "/api/v1/trends",
        "/api/v1/rematch",
        "/api/v1/health",
    }
    assert "HTTPBearer" in document["components"]["securitySchemes"]
    push_body = document["paths"]["/api/v1/reports"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert push_body == {"$ref": "#/components/schemas/Push"}
    assert set(document["components"]["schemas"]["Push"]["required"]) == {"report_id", "agent", "report"}

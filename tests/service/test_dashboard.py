"""The fleet dashboard against a running `portcullis serve` on SQLite and PostgreSQL: in real headless Chromium a
person logs in with a reader token, sees the pushed engines and images, the change since the previous run, and
hostile report content as text with no script run; over plain HTTP the cookie, the headers and the refusals."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from test_api import check, push, report, vulnerability

from portcullis.model.findings import Finding, Severity, Status, Target, TargetKind
from portcullis.service.tokens import Role
from report.headless_chromium import CHROMIUM, Browser, Page
from support.fleet_service import Service, start_server, stop_server

HOSTILE = '"><img src=x onerror="document.title=\'pwned\'"><script>document.title="pwned"</script>{{7*7}}'
HOSTILE_IMAGE = f"evil/{HOSTILE}:1"


def _hostile_check(rule: str) -> Finding:
    return Finding(
        rule_id=rule,
        title=HOSTILE,
        cis=None,
        status=Status.FAIL,
        severity=Severity.CRITICAL,
        target=Target(kind=TargetKind.CONTAINER, name=f"/{HOSTILE}"),
        message=f"mounts /etc/{HOSTILE}",
    )


def _image_finding(finding: Finding, image: str) -> Finding:
    return finding.model_copy(update={"target": Target(kind=TargetKind.IMAGE, name=image)})


@pytest.fixture(scope="module")
def fleet(service: Service) -> dict[str, str]:
    """Two audits of one engine (the second fixes CIS-2.2, adds a hostile CIS-5.4) and a scan of a hostile image."""
    agent = service.token("dash-web", Role.AGENT)
    first = report(
        "audit", "unix:///var/run/docker.sock", check("CIS-2.1", Severity.HIGH), check("CIS-2.2", Severity.MEDIUM)
    )
    second = report("audit", "unix:///var/run/docker.sock", check("CIS-2.1", Severity.HIGH), _hostile_check("CIS-5.4"))
    scan = report(
        "image",
        HOSTILE_IMAGE,
        _image_finding(vulnerability("CVE-2024-2398", "curl", Severity.HIGH), HOSTILE_IMAGE),
        _image_finding(vulnerability("CVE-2023-52425", "expat", Severity.MEDIUM), HOSTILE_IMAGE),
    )
    for number, body in enumerate((first, second, scan)):
        assert push(service, agent, "dash-web", f"dash-{number}", body).status_code == 201
    return {"reader": service.token("dash-reader", Role.READER), "agent": agent}


def _root(service: Service) -> str:
    return service.url.removesuffix("/api/v1")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed; `make programs` installs it (scripts/programs.tsv)")
    running = Browser()
    try:
        yield running
    finally:
        running.close()


def _go(page: Page, url: str) -> None:
    page.browser.events.clear()
    page.send("Page.navigate", url=url)
    page.browser.wait_for("Page.loadEventFired", page.session)


def _submit(page: Page, selector: str) -> None:
    """Click, and wait for the page the click leads to."""
    page.browser.events.clear()
    page.click(selector)
    page.browser.wait_for("Page.loadEventFired", page.session)


def _texts(page: Page, selector: str) -> list[str]:
    return [
        str(text)
        for text in page.evaluate(f"[...document.querySelectorAll({selector!r})].map(e => e.textContent.trim())")
    ]


def _nothing_ran(page: Page) -> None:
    assert page.evaluate("document.title") != "pwned"
    assert page.evaluate("document.querySelectorAll('main img, main script').length") == 0
    assert page.dialogs == [] and page.errors == []


def test_login_fleet_engine_change_and_hostile_image_in_chromium(
    service: Service, fleet: dict[str, str], browser: Browser
) -> None:
    page = browser.new_page()
    try:
        _go(page, _root(service) + "/")
        assert page.evaluate("location.pathname") == "/login"  # no token: the form

        page.type("#token", fleet["agent"])  # an agent token pushes, it does not read
        _submit(page, "#submit")
        assert "use a reader token" in page.evaluate("document.querySelector('#problem').textContent")
        assert page.errors == ["Failed to load resource: the server responded with a status of 403 (Forbidden)"]
        page.errors.clear()

        page.type("#token", fleet["reader"])
        _submit(page, "#submit")
        assert page.evaluate("location.pathname") == "/"
        assert page.evaluate("document.cookie") == ""  # HttpOnly: the page's own scripts could not read it
        engines = _texts(page, "#engines tr.engine")
        assert len(engines) >= 1
        web = next(
            row
            for row in page.evaluate(
                "[...document.querySelectorAll('#engines tr.engine')].map(r => [...r.cells].map(c => c.textContent))"
            )
            if row[0] == "dash-web"
        )
        # severities in the order critical, high, medium, low, info: the latest audit fails CIS-5.4 and CIS-2.1
        assert web[2:] == ["1", "1", "0", "0", "0"]
        images = page.evaluate(
            "[...document.querySelectorAll('#images tr.image')].map(r => [...r.cells].map(c => c.textContent))"
        )
        hostile = next(row for row in images if row[0] == HOSTILE_IMAGE)  # the raw text, as text
        assert hostile[2:] == ["0", "1", "1", "0", "0", "0"]
        _nothing_ran(page)

        _submit(page, "#engines a[href='/engine?name=dash-web']")
        assert page.evaluate("document.querySelector('#subject').textContent") == "dash-web"
        assert _texts(page, ".change .new-count") == ["1"] and _texts(page, ".change .fixed-count") == ["1"]
        new = _texts(page, ".change ul.new li")
        assert len(new) == 1 and new[0].startswith("critical CIS-5.4") and HOSTILE in new[0]
        assert _texts(page, ".change ul.fixed li .rule") == ["CIS-2.2"]
        assert _texts(page, "#controls td.rule") == ["CIS-5.4", "CIS-2.1"]  # by severity
        _nothing_ran(page)

        _go(page, _root(service) + "/")
        link = page.evaluate(  # the hostile image's own link: its name goes out in the URL and comes back as text
            "[...document.querySelectorAll('#images a')].find(a => a.textContent.startsWith('evil/')).href"
        )
        _go(page, link)
        assert page.evaluate("document.querySelector('#subject').textContent") == HOSTILE_IMAGE
        assert _texts(page, "#vulnerabilities td.rule") == ["CVE-2024-2398", "CVE-2023-52425"]
        assert _texts(page, ".change .first") == ["The first run of this stream: nothing to compare with."]
        _nothing_ran(page)

        _submit(page, "header button")  # log out
        assert page.evaluate("location.pathname") == "/login"
        _go(page, _root(service) + "/")
        assert page.evaluate("location.pathname") == "/login"
    finally:
        page.close()


def test_headers_cookie_and_refusals_over_http(service: Service, fleet: dict[str, str]) -> None:
    root = _root(service)
    answer = requests.get(root + "/", headers={"Authorization": f"Bearer {fleet['reader']}"}, timeout=30)
    assert answer.status_code == 200
    csp = answer.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp  # no script source at all
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert "<script" not in answer.text
    assert (
        requests.get(root + "/", headers={"Authorization": f"Bearer {fleet['agent']}"}, timeout=30).status_code == 403
    )

    logged_in = requests.post(root + "/login", data={"token": fleet["reader"]}, allow_redirects=False, timeout=30)
    assert logged_in.status_code == 303
    cookie = logged_in.headers["set-cookie"]
    assert re.search(r"HttpOnly", cookie) and re.search(r"SameSite=strict", cookie, re.IGNORECASE)
    assert "Secure" not in cookie  # plain HTTP on loopback; over HTTPS it is Secure (the next test)

    # a form posted from another site (login CSRF) is refused
    forged = requests.post(
        root + "/login", data={"token": fleet["reader"]}, headers={"Origin": "https://evil.example"}, timeout=30
    )
    assert forged.status_code == 403 and "set-cookie" not in forged.headers
    wrong = requests.post(root + "/login", data={"token": "pcs_000000000000_x"}, allow_redirects=False, timeout=30)
    assert wrong.status_code == 401 and "set-cookie" not in wrong.headers

    missing = requests.get(root + "/engine", params={"name": "nobody"}, cookies=_cookie(logged_in), timeout=30)
    assert missing.status_code == 404 and "No engine named nobody" in missing.text


def _cookie(answer: requests.Response) -> dict[str, Any]:
    return {name: value for name, value in answer.cookies.items()}


def test_the_cookie_is_secure_over_https(tmp_path: Path) -> None:
    from test_serve_cli import _self_signed

    cert, key = _self_signed(tmp_path)
    service = start_server(
        str(tmp_path / "store.sqlite3"), tmp_path / "serve.log", "--tls-cert", str(cert), "--tls-key", str(key)
    )
    try:
        reader = service.token("tls-dash", Role.READER)
        answer = requests.post(
            _root(service) + "/login", data={"token": reader}, allow_redirects=False, verify=str(cert), timeout=30
        )
        assert answer.status_code == 303
        assert "Secure" in answer.headers["set-cookie"] and "HttpOnly" in answer.headers["set-cookie"]
    finally:
        stop_server(service.process)

"""The fleet dashboard: server-rendered pages over the same store as the API, for a person with a reader token.

The token arrives by the login form (kept in an HttpOnly, SameSite=Strict cookie, Secure over HTTPS) or in an
Authorization header. Report content is hostile (image names, paths, messages come from the engines): every value
goes through jinja2's autoescape, and the Content-Security-Policy allows no script at all and styles only from
this server, so a value that slipped through could still not run.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit

import jinja2
from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.requests import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from portcullis.model.findings import Severity, Status
from portcullis.model.vuln import VULN_RULE_ID
from portcullis.pipelines.history import diff_stored
from portcullis.service.connections import Connections
from portcullis.service.tokens import Role, Verifier
from portcullis.store import Run, StoredFinding
from portcullis.store.fleet import FindingFilter, FleetFinding, StoredToken, engines, find, images, latest_runs_of
from portcullis.store.fleet import previous_run as stream_previous

COOKIE = "portcullis_token"
PAGE_LIMIT = 1000  # findings shown on a subject's page
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SEVERITIES = [s.value for s in sorted(Severity, key=lambda s: -s.rank)]
_RANK = {s.value: s.rank for s in Severity}


class LoginNeeded(Exception):
    """No usable token: the browser is sent to the login form."""


@dataclass(frozen=True)
class Change:
    """What changed about one subject in one stream: the latest run against the one before it."""

    after: Run
    before: Run | None
    new: list[StoredFinding]
    fixed: list[StoredFinding]


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("portcullis.service", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@cache
def _stylesheet() -> str:
    return files("portcullis.service").joinpath("templates/dashboard.css").read_text(encoding="utf-8")


def _headers() -> dict[str, str]:
    return {
        "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",  # not no-referrer: that makes a browser send `Origin: null` on our forms
        "Cache-Control": "no-store",
    }


def page(template: str, code: int = 200, **values: Any) -> HTMLResponse:
    html = _environment().get_template(template).render(severities=SEVERITIES, **values)
    return HTMLResponse(html, code, headers=_headers())


def _presented(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and credentials:
        return credentials.strip()
    return request.cookies.get(COOKIE)


def _verify(request: Request, presented: str) -> StoredToken | None:
    connections: Connections = request.app.state.connections
    verifier: Verifier = request.app.state.verifier
    with connections.use() as store:
        return verifier.verify(store, presented)


def reader(request: Request) -> StoredToken:
    presented = _presented(request)
    token = _verify(request, presented) if presented else None
    if token is None:
        raise LoginNeeded
    if token.role != Role.READER.value:
        raise HTTPException(403, f"a {token.role} token cannot read the dashboard; it takes a reader token")
    return token


Reader = Annotated[StoredToken, Depends(reader)]
dashboard = APIRouter(include_in_schema=False)


def _same_origin(request: Request) -> bool:
    """A form post from another site (login CSRF) names that site in Origin; browsers always send it on POST."""
    origin = request.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == request.headers.get("host", "")


@dashboard.get("/login")
def login_form() -> HTMLResponse:
    return page("login.html.j2", problem=None)


@dashboard.post("/login")
async def login(request: Request) -> Response:
    if not _same_origin(request):
        return page("login.html.j2", 403, problem="this form can only be sent from this server's own page")
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    presented = (form.get("token") or [""])[0].strip()
    token = _verify(request, presented) if presented else None
    if token is None:
        return page("login.html.j2", 401, problem="that token is not valid: unknown, mistyped or revoked")
    if token.role != Role.READER.value:
        return page("login.html.j2", 403, problem=f"a {token.role} token cannot read the dashboard; use a reader token")
    response = RedirectResponse("/", 303, headers=_headers())
    response.set_cookie(
        COOKIE,
        presented,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@dashboard.post("/logout")
def logout(request: Request) -> Response:
    response = RedirectResponse("/login", 303, headers=_headers())
    if _same_origin(request):
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


@dashboard.get("/static/dashboard.css")
def stylesheet() -> Response:
    return Response(_stylesheet(), media_type="text/css", headers={"X-Content-Type-Options": "nosniff"})


@dashboard.get("/favicon.ico")
def no_icon() -> Response:
    return Response(status_code=204)


@dashboard.get("/")
def overview(token: Reader, request: Request) -> HTMLResponse:
    connections: Connections = request.app.state.connections
    with connections.use() as store:
        fleet_engines, fleet_images = engines(store), images(store)
    return page("overview.html.j2", who=token.name, engines=fleet_engines, images=fleet_images)


def _by_severity(findings: list[FleetFinding]) -> list[FleetFinding]:
    return sorted(findings, key=lambda f: (-_RANK.get(f.severity, -1), f.rule_id, f.target_name))


def _changes(request: Request, *, engine: str | None = None, image: str | None = None) -> list[Change]:
    connections: Connections = request.app.state.connections

    def mine(finding: StoredFinding) -> bool:
        return finding.engine == engine if engine is not None else finding.image == image

    changes: list[Change] = []
    with connections.use() as store:
        for run in latest_runs_of(store, engine=engine, image=image):
            before = stream_previous(store, run)
            if before is None:
                changes.append(Change(run, None, [], []))
                continue
            diff = diff_stored(store, before, run)
            changes.append(Change(run, before, [f for f in diff.new if mine(f)], [f for f in diff.fixed if mine(f)]))
    return changes


def _subject_page(request: Request, token: StoredToken, kind: str, name: str) -> HTMLResponse:
    engine, image = (name, None) if kind == "engine" else (None, name)
    connections: Connections = request.app.state.connections
    with connections.use() as store:
        which = FindingFilter(engine=engine, image=image, statuses=[Status.FAIL.value])
        failing = find(store, which, limit=PAGE_LIMIT + 1)
    changes = _changes(request, engine=engine, image=image)
    if not failing and not changes:
        return page("missing.html.j2", 404, who=token.name, kind=kind, name=name)
    vulnerabilities = [f for f in failing[:PAGE_LIMIT] if f.rule_id == VULN_RULE_ID]
    controls = [f for f in failing[:PAGE_LIMIT] if f.rule_id != VULN_RULE_ID]
    return page(
        "subject.html.j2",
        who=token.name,
        kind=kind,
        name=name,
        controls=_by_severity(controls),
        vulnerabilities=_by_severity(vulnerabilities),
        truncated=len(failing) > PAGE_LIMIT,
        limit=PAGE_LIMIT,
        changes=changes,
    )


@dashboard.get("/engine")
def engine_page(token: Reader, request: Request, name: Annotated[str, Query(max_length=512)]) -> HTMLResponse:
    return _subject_page(request, token, "engine", name)


@dashboard.get("/image")
def image_page(token: Reader, request: Request, name: Annotated[str, Query(max_length=512)]) -> HTMLResponse:
    return _subject_page(request, token, "image", name)


def is_page(request: Request) -> bool:
    """Dashboard paths answer errors as pages; the API's as JSON."""
    return not request.url.path.startswith("/api/")


async def to_login(request: Request, exc: LoginNeeded) -> Response:
    return RedirectResponse("/login", 303, headers=_headers())


def error_page(status: int, message: str) -> HTMLResponse:
    return page("error.html.j2", status, status=status, message=message)

"""The fleet service's HTTP API, under /api/v1: agents push reports, readers list engines, images, findings and
trends. Every route wants a bearer token of the right role; every error is `{"error": "one line"}`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Response
from fastapi.exceptions import RequestValidationError
from fastapi.requests import Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from portcullis import __version__
from portcullis.model.findings import Report, Severity, Status
from portcullis.model.fleet import DeployedContainer, ImageInventory
from portcullis.pipelines.errors import VulnerabilityInputError
from portcullis.pipelines.rematch import accept_inventories
from portcullis.service.connections import Connections
from portcullis.service.dashboard import LoginNeeded, dashboard, error_page, is_page, to_login
from portcullis.service.notify import Notifier, Pruner, Rematcher, Watcher, Webhook
from portcullis.service.tokens import NAME_PATTERN, Role, Verifier
from portcullis.store import StoreConflict, StoreError
from portcullis.store.fleet import FindingFilter, FleetFinding, StoredToken, Subject, TrendPoint, engines, find, images
from portcullis.store.fleet import trends as fleet_trends

API = "/api/v1"
DEFAULT_MAX_BODY = 32 * 1024 * 1024
MAX_PAGE = 1000
log = logging.getLogger("portcullis.service")


class Push(BaseModel):
    """One report from one agent. `report_id` is the agent's own id for it: pushing it again is answered with the run
    already stored, never a second copy."""

    report_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
    agent: str = Field(pattern=f"^{NAME_PATTERN.pattern}$", description="must be the pushing token's name")
    report: Report
    inventories: list[ImageInventory] = Field(
        default_factory=list, description="the package inventory of each image the report scanned, for re-matching"
    )
    containers: list[DeployedContainer] | None = Field(
        None, description="every container of the agent's engine (replacing the list pushed before); null: not sent"
    )


class Pushed(BaseModel):
    run_id: int
    report_id: str
    created: bool = Field(description="false when this report id had been pushed before")


class FindingsPage(BaseModel):
    findings: list[FleetFinding]
    next_offset: int | None = Field(description="the offset of the next page; null on the last")


class RematchDone(BaseModel):
    images: int = Field(description="deployed images re-matched")
    new_matches: int = Field(description="advisories newly matched to them")
    notification: int | None = Field(description="the id of the queued webhook notification; null if nothing new")


class ApiError(BaseModel):
    error: str


class Health(BaseModel):
    status: str = Field(description="ok: the server answers and its store answered a query just now")
    version: str


class BodyTooLarge(StarletteHTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is over the limit of {limit} bytes")


class BodyLimit:
    """Refuse a body over `limit` bytes: by its Content-Length before reading it, else while it streams in."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.limit:
            reason = BodyTooLarge(self.limit).detail if declared.isdigit() else "the Content-Length is not a number"
            await JSONResponse({"error": reason}, 413 if declared.isdigit() else 400)(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise BodyTooLarge(self.limit)
            return message

        await self.app(scope, counted, send)


def _problem(exc: RequestValidationError) -> str:
    errors = exc.errors()
    first = errors[0]
    if first.get("type") == "json_invalid":
        return f"the body is not JSON: {first.get('ctx', {}).get('error', 'invalid')} (at character {first['loc'][-1]})"
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "request"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first.get('msg', 'invalid')}{more}"


bearer = HTTPBearer(auto_error=False, description="a token from `portcullis token add NAME --role ROLE`")


def _connections(request: Request) -> Connections:
    connections: Connections = request.app.state.connections
    return connections


Stores = Annotated[Connections, Depends(_connections)]


def authenticated(
    request: Request, connections: Stores, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> StoredToken:
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None:
        raise HTTPException(401, "a bearer token is required (Authorization: Bearer …)", challenge)
    verifier: Verifier = request.app.state.verifier
    with connections.use() as store:
        token = verifier.verify(store, credentials.credentials)
    if token is None:
        raise HTTPException(401, "the token is not valid: unknown, mistyped or revoked", challenge)
    return token


def holding(role: Role) -> Callable[[StoredToken], StoredToken]:
    def check(token: Annotated[StoredToken, Depends(authenticated)]) -> StoredToken:
        if token.role != role.value:
            raise HTTPException(403, f"a {token.role} token cannot do this; it takes a token of role {role.value}")
        return token

    return check


Anyone = Annotated[StoredToken, Depends(authenticated)]
Agent = Annotated[StoredToken, Depends(holding(Role.AGENT))]
Reader = Annotated[StoredToken, Depends(holding(Role.READER))]
Admin = Annotated[StoredToken, Depends(holding(Role.ADMIN))]
api = APIRouter(prefix=API, responses={401: {"model": ApiError}, 403: {"model": ApiError}})


@api.post("/reports", status_code=201, responses={200: {"model": Pushed}, 409: {"model": ApiError}})
def push_report(push: Push, token: Agent, connections: Stores, request: Request, response: Response) -> Pushed:
    """Store one report pushed by an agent, with its images' inventories and its engine's containers when sent.
    201 when stored, 200 when this report id was stored before."""
    if push.agent != token.name:
        raise HTTPException(403, f"this token pushes as {token.name}, not as {push.agent}")
    body = push.report.model_dump_json()
    with connections.use() as store:
        earlier = store.pushed(push.agent, push.report_id)
        if earlier is None:
            try:
                run_id = store.save(push.report, agent=push.agent, report_uid=push.report_id)
                if push.inventories or push.containers is not None:
                    accept_inventories(
                        store, push.agent, push.inventories, push.containers, request.app.state.rematcher.db_path
                    )
                return Pushed(run_id=run_id, report_id=push.report_id, created=True)
            except StoreConflict:  # the same push, retried while the first was being stored
                earlier = store.pushed(push.agent, push.report_id)
                if earlier is None:
                    raise
    run_id, kept = earlier
    if kept != body:
        raise HTTPException(409, f"report id {push.report_id} was pushed before with a different report")
    response.status_code = 200
    return Pushed(run_id=run_id, report_id=push.report_id, created=False)


@api.get("/engines")
def list_engines(token: Reader, connections: Stores) -> list[Subject]:
    """Every engine in the latest runs, with its unsuppressed failures by severity."""
    with connections.use() as store:
        return engines(store)


@api.get("/images")
def list_images(token: Reader, connections: Stores) -> list[Subject]:
    """Every image in the latest runs, with its unsuppressed failures (vulnerabilities included) by severity."""
    with connections.use() as store:
        return images(store)


@api.get("/findings")
def list_findings(
    token: Reader,
    connections: Stores,
    engine: str | None = None,
    image: str | None = None,
    rule: Annotated[str | None, Query(description="a rule id, or an advisory id (CVE-…) of a vulnerability")] = None,
    severity: Annotated[list[Severity] | None, Query()] = None,
    status: Annotated[list[Status] | None, Query()] = None,
    run: Annotated[int | None, Query(description="one run's findings; default: the latest run of each")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> FindingsPage:
    """Findings of the latest runs (or of one run), filtered, a page at a time, newest run first."""
    which = FindingFilter(
        engine=engine,
        image=image,
        rule=rule,
        severities=[s.value for s in severity or ()],
        statuses=[s.value for s in status or ()],
        run_id=run,
    )
    with connections.use() as store:
        page = find(store, which, limit=limit + 1, offset=offset)
    more = len(page) > limit
    return FindingsPage(findings=page[:limit], next_offset=offset + limit if more else None)


@api.get("/trends")
def list_trends(
    token: Reader,
    connections: Stores,
    engine: str | None = None,
    image: str | None = None,
    since: Annotated[str | None, Query(description="ISO 8601 time: runs started at or after it")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 200,
) -> list[TrendPoint]:
    """Unsuppressed failures by severity in each run, oldest first: the newest `limit` runs."""
    with connections.use() as store:
        return fleet_trends(store, engine=engine, image=image, since=since, limit=limit)


@api.post("/rematch", responses={409: {"model": ApiError}})
def rematch_now(token: Admin, request: Request) -> RematchDone:
    """Re-match the deployed images against the service's vulnerability database now (the service also does so by
    itself when the database file changes) and queue a webhook notification of what is newly affected."""
    rematcher: Rematcher = request.app.state.rematcher
    try:
        done = rematcher.run()
    except VulnerabilityInputError as exc:
        raise HTTPException(409, str(exc)) from exc
    return RematchDone(images=done.images, new_matches=done.new_matches, notification=done.notification)


@api.get("/health", responses={503: {"model": ApiError}})
def health(connections: Stores) -> Health:
    """For load balancers and orchestrators: no token, nothing about the fleet. A store that cannot answer gives 503."""
    with connections.use() as store:
        store.execute("SELECT 1")
    return Health(status="ok", version=__version__)


@api.get("/openapi.json", include_in_schema=False)
def openapi(token: Anyone, request: Request) -> dict[str, Any]:
    document: dict[str, Any] = request.app.openapi()
    return document


def create_app(
    location: str,
    *,
    db_path: Path,
    max_body: int = DEFAULT_MAX_BODY,
    webhook: Webhook | None = None,
    watch_every: float = 0.0,
    retain_days: float | None = None,
) -> FastAPI:
    """The API over the store at `location`, opened and migrated now (an unusable store fails here). Deployed images
    are re-matched against the database at `db_path` when it changes (checked every `watch_every` seconds; 0: only
    on an admin's request) and what is newly affected is sent to `webhook`. With `retain_days`, runs older than that
    are pruned at start and hourly (each stream's newest run stays)."""
    connections = Connections(location)
    notifier = Notifier(connections, webhook) if webhook is not None else None
    rematcher = Rematcher(connections, db_path, notifier.wake if notifier else lambda: None)
    watcher = Watcher(rematcher, watch_every) if watch_every > 0 else None
    pruner = Pruner(connections, retain_days) if retain_days is not None else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loops = [loop for loop in (notifier, watcher, pruner) if loop is not None]
        for loop in loops:
            loop.start()
        if notifier is not None:
            notifier.wake()  # what a previous run left in the outbox
        yield
        for loop in loops:
            loop.stop()
        connections.close()

    app = FastAPI(
        title="Portcullis fleet service",
        version=__version__,
        lifespan=lifespan,
        openapi_url=None,  # served by the router, behind a token like everything else
        docs_url=None,
        redoc_url=None,
    )
    app.state.connections = connections
    app.state.rematcher = rematcher
    app.state.verifier = Verifier()
    app.state.store_where = connections.where
    app.add_middleware(BodyLimit, limit=max_body)
    app.add_exception_handler(LoginNeeded, to_login)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid)  # type: ignore[arg-type]
    app.add_exception_handler(StoreError, _store_down)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _fault)
    app.include_router(api)
    app.include_router(dashboard)
    return app


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    if is_page(request):
        return error_page(exc.status_code, str(exc.detail))
    return JSONResponse({"error": str(exc.detail)}, exc.status_code, headers=exc.headers)


async def _invalid(request: Request, exc: RequestValidationError) -> Response:
    if is_page(request):
        return error_page(400, _problem(exc))
    return JSONResponse({"error": _problem(exc)}, 422)


async def _store_down(request: Request, exc: StoreError) -> JSONResponse:
    log.error("%s %s: %s", request.method, request.url.path, exc)
    return JSONResponse({"error": "the store could not answer; the server log has the reason"}, 503)


async def _fault(request: Request, exc: Exception) -> JSONResponse:
    log.error("%s %s: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
    return JSONResponse({"error": "internal error; the server log has the reason"}, 500)

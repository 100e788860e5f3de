"""The coordinator's web service: the feed page, the JSON API for people, the gateways' endpoint.

Public (no credentials): ``GET /`` and ``/static/*`` (the page shell; it
holds no data), ``GET /api/v1/health``, ``GET /api/v1/openapi.json`` (the
schema), ``POST /api/v1/session`` (log in). ``POST /api/v1/batches`` is
authenticated by the gateway's batch signature (app.py). Everything else
needs a browser session (cookie ``sf_session`` plus ``X-CSRF-Token`` on
writes) or an API token (``Authorization: Bearer sft_...``), and a role:
viewer < responder < admin.

Errors are ``{"error": code, "message": text}``; 401 means "log in", 403
"not allowed for your role" (or a missing CSRF token).
"""

# No `from __future__ import annotations`: FastAPI reads the route signatures'
# annotations at run time, and the dependency aliases (Viewer, Admin...) are
# local to create_coordinator_app.

import asyncio
import json
import logging
import math
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, Query, Request, Security
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from signalfire import __version__, wire
from signalfire.errors import SignalfireError

from . import exports
from .accounts import AccountError, Accounts, LoginFailed, NoSuchUser, Principal, User, UserExists
from .app import (
    DEFAULT_BURST,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_RATE_PER_S,
    batch_endpoint,
    health,
)
from .config import check_gateway_name
from .feed import Feed, FeedError, Filters, parse_filters
from .feed_model import STATES, FeedReport
from .ingest import Ingestor
from .ratelimit import TokenBuckets
from .webhooks import Webhooks, webhook_router

log = logging.getLogger(__name__)

SESSION_COOKIE = "sf_session"
CSRF_COOKIE = "sf_csrf"  # readable by the page, which echoes it in X-CSRF-Token
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
_HEARTBEAT_S = 15.0
_REAUTH_S = 30.0
# Argon2id takes 64 MiB and tens of milliseconds per check: at most this many at once.
_PASSWORD_CHECKS_AT_ONCE = 2
STATIC_DIR = Path(str(resources.files("signalfire.coordinator") / "static"))


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


_STATUS_LABELS = tuple(sorted(s.label for s in wire.Status))
_NUMBER = r"-?[0-9]{1,3}(\.[0-9]{1,12})?"
_BBOX_PATTERN = rf"^{_NUMBER}(,{_NUMBER}){{3}}$"


def _list_pattern(words: tuple[str, ...]) -> str:
    one = "(" + "|".join(words) + ")"
    return rf"^{one}(,{one})*$"


class ErrorOut(BaseModel):
    error: str = Field(description="a stable code, e.g. unauthenticated, forbidden, bad-filter")
    message: str = Field(description="what went wrong and what to do, for people")


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {
        400: "Bad request: the message says which value",
        401: "Not logged in, or the session or token is no longer valid",
        403: "Not allowed for this role, or the CSRF header is missing",
        404: "No such object",
        409: "It exists already",
        429: "Too many attempts; Retry-After says when to try again",
        503: "The database is unavailable; try again",
    }
    return {c: {"model": ErrorOut, "description": text[c]} for c in codes}


# -- request bodies -------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not ignored


class LoginIn(_Body):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class MarkIn(_Body):
    state: Literal["seen", "assigned", "resolved"]
    note: str = Field(default="", max_length=2000)


class UserIn(_Body):
    username: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
    password: str = Field(min_length=10, max_length=1024)
    role: Literal["viewer", "responder", "admin"]


class UserPatch(_Body):
    role: Literal["viewer", "responder", "admin"] | None = None
    password: str | None = Field(default=None, min_length=10, max_length=1024)
    disabled: bool | None = None


class GatewayIn(_Body):
    name: str = Field(pattern=r"^[^\x00-\x1f\x7f]{1,64}$", description="printable")
    public_key: str = Field(pattern=r"^[0-9a-fA-F]{64}$", description="64 hex digits")


class RevokeIn(_Body):
    reason: str = Field(min_length=1, max_length=500)
    since: float | None = Field(
        default=None, ge=0, lt=1e11, description="flag reports created at or after (Unix s)"
    )


class TokenIn(_Body):
    label: str = Field(min_length=1, max_length=64)
    days: float = Field(default=90, gt=0, le=3650)


@dataclass(frozen=True)
class ApiSettings:
    secure_cookies: bool = False  # set when serving HTTPS: the cookie never goes over plain HTTP
    login_per_minute: float = 5.0  # per user name and per client address
    login_burst: int = 5
    sse_poll_s: float = 1.0
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    rate_per_s: float = DEFAULT_RATE_PER_S
    burst: int = DEFAULT_BURST


def _error_response(status: int, code: str, message: str, headers: dict[str, str]) -> JSONResponse:
    return JSONResponse(
        {"error": code, "message": message},
        status_code=status,
        headers={"Cache-Control": "no-store", **headers},
    )


def _content_security_policy(tile_url: str | None) -> str:
    img = "'self' data:"
    if tile_url:
        parts = urlsplit(tile_url.replace("{s}", "a"))
        if parts.scheme in ("http", "https") and parts.hostname:
            host = parts.netloc.replace("a.", "*.", 1) if "{s}" in tile_url else parts.netloc
            img += f" {parts.scheme}://{host}"
    return (
        f"default-src 'self'; img-src {img}; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )


class _SecurityHeaders:
    """Headers on every answer, errors included; plain ASGI so that streams pass untouched.

    (Starlette's ``@app.middleware("http")`` would wrap each request in a task group and
    memory streams: a third of a small request's cost, and a detour for SSE.)
    """

    def __init__(self, app: ASGIApp, csp: str) -> None:
        self.app = app
        self.csp = csp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = str(scope.get("path", "")).startswith("/api/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "no-referrer")
                headers.setdefault("X-Frame-Options", "DENY")
                if api:
                    headers.setdefault("Cache-Control", "no-store")
                else:
                    headers.setdefault("Content-Security-Policy", self.csp)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_coordinator_app(
    *,
    ingestor: Ingestor,
    feed: Feed,
    accounts: Accounts,
    settings: ApiSettings | None = None,
    wall_clock: Callable[[], float] = time.time,
    clock: Callable[[], float] = time.monotonic,
    webhooks: Webhooks | None = None,
) -> FastAPI:
    """The whole coordinator service as one ASGI app."""
    cfg = settings or ApiSettings()
    login_by_name = TokenBuckets(cfg.login_per_minute / 60.0, cfg.login_burst)
    login_by_source = TokenBuckets(cfg.login_per_minute * 4 / 60.0, cfg.login_burst * 4)
    password_checks = threading.BoundedSemaphore(_PASSWORD_CHECKS_AT_ONCE)
    csp = _content_security_policy(feed.settings.tile_url)

    app = FastAPI(
        title="signalfire coordinator",
        version=__version__,
        description=(
            "Verified, deduplicated reports from signalfire gateways. Authenticate with the "
            "session cookie from POST /api/v1/session (browsers; send X-CSRF-Token on writes) "
            "or an API token (Authorization: Bearer sft_...)."
        ),
        openapi_url="/api/v1/openapi.json",
        responses=_errors(400, 401, 403, 503),
        docs_url=None,  # the interactive docs load scripts from a CDN: not here
        redoc_url=None,
    )

    cookie_scheme = APIKeyCookie(name=SESSION_COOKIE, auto_error=False)
    bearer_scheme = HTTPBearer(auto_error=False)

    # -- errors ---------------------------------------------------------------

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return _error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(FeedError)
    async def _feed_error(request: Request, exc: FeedError) -> Response:
        status = 404 if exc.code == "not-found" else 400
        return _error_response(status, exc.code, exc.message, {})

    @app.exception_handler(SQLAlchemyError)
    async def _db_error(request: Request, exc: SQLAlchemyError) -> Response:
        log.error("database error in %s: %s", request.url.path, type(exc).__name__)
        return _error_response(
            503, "database-unavailable", "the database is unavailable; try again", {}
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse(
            {
                "error": "invalid-request",
                "message": f"{where}: {first.get('msg', 'invalid')}",
                "detail": [
                    {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type")}
                    for e in exc.errors()
                ],
            },
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not-found", 405: "not-found"}.get(exc.status_code, "http-error")
        status = 404 if exc.status_code == 405 else exc.status_code
        message = "not found" if status == 404 else str(exc.detail)
        return _error_response(status, code, message, {})

    app.add_middleware(_SecurityHeaders, csp=csp)

    # -- authentication -------------------------------------------------------

    async def _principal(
        request: Request,
        cookie: Annotated[str | None, Security(cookie_scheme)] = None,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)] = None,
    ) -> Principal:
        secret = bearer.credentials if bearer is not None else cookie
        if not secret:
            raise ApiError(
                401,
                "unauthenticated",
                "log in first (POST /api/v1/session) or send an API token",
                {"WWW-Authenticate": "Bearer"},
            )
        principal = await run_in_threadpool(accounts.authenticate, secret, wall_clock())
        if principal is None:
            raise ApiError(
                401,
                "unauthenticated",
                "the session has ended or the token is not valid; log in again",
                {"WWW-Authenticate": "Bearer"},
            )
        if request.method not in _SAFE_METHODS and not principal.csrf_ok(
            request.headers.get("x-csrf-token")
        ):
            raise ApiError(403, "csrf", "missing or wrong X-CSRF-Token header; reload the page")
        return principal

    def role(minimum: str) -> Callable[..., Awaitable[Principal]]:
        async def check(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
            if not principal.user.at_least(minimum):
                raise ApiError(403, "forbidden", f"this needs the {minimum} role or higher")
            return principal

        return check

    Viewer = Annotated[Principal, Depends(role("viewer"))]
    Responder = Annotated[Principal, Depends(role("responder"))]
    Admin = Annotated[Principal, Depends(role("admin"))]

    def _filters(
        status: Annotated[
            str | None,
            Query(pattern=_list_pattern(_STATUS_LABELS), description="comma-separated statuses"),
        ] = None,
        since: Annotated[float | None, Query(ge=0, lt=1e11, description="Unix seconds")] = None,
        until: Annotated[float | None, Query(ge=0, lt=1e11, description="Unix seconds")] = None,
        bbox: Annotated[
            str | None,
            Query(pattern=_BBOX_PATTERN, description="min_lon,min_lat,max_lon,max_lat (degrees)"),
        ] = None,
        gateway: Annotated[
            str | None, Query(pattern=r"^[0-9a-f]{16}$", description="a gateway's key id")
        ] = None,
        state: Annotated[
            str | None, Query(pattern=_list_pattern(STATES), description=", ".join(STATES))
        ] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
        before: Annotated[
            float | None, Query(ge=0, lt=1e11, description="paging: next_before of a page")
        ] = None,
    ) -> Filters:
        return parse_filters(
            status=status,
            since=since,
            until=until,
            bbox=bbox,
            gateway=gateway,
            state=state,
            limit=limit,
            before=before,
        )

    FiltersDep = Annotated[Filters, Depends(_filters)]

    def _session_body(user: User, csrf: str) -> dict[str, Any]:
        return {"user": {"username": user.username, "role": user.role}, "csrf_token": csrf}

    # -- public ---------------------------------------------------------------

    app.add_route("/api/v1/health", health, methods=["GET"], include_in_schema=True)
    post_batch = batch_endpoint(
        ingestor,
        max_body_bytes=cfg.max_body_bytes,
        rate_per_s=cfg.rate_per_s,
        burst=cfg.burst,
        clock=clock,
        wall_clock=wall_clock,
    )
    app.add_route("/api/v1/batches", post_batch, methods=["POST"], include_in_schema=False)

    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    if STATIC_DIR.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.post("/api/v1/session", tags=["session"], responses=_errors(429))
    async def login(body: LoginIn, request: Request) -> Response:
        """Log in with a password; sets the session cookie and returns the CSRF token."""
        source = request.client.host if request.client else "unknown"
        now = clock()
        waits = [login_by_source.take(source, now)]
        if await run_in_threadpool(accounts.user, body.username) is not None:
            waits.append(login_by_name.take(body.username, now))
        wait = max(waits)
        if wait > 0:
            retry = str(max(1, math.ceil(wait)))
            raise ApiError(
                429,
                "too-many-attempts",
                f"too many login attempts; wait {retry} s",
                {"Retry-After": retry},
            )

        def check() -> Any:
            with password_checks:
                return accounts.login(body.username, body.password, wall_clock(), source=source)

        try:
            new = await run_in_threadpool(check)
        except LoginFailed as exc:
            raise ApiError(401, "login-failed", exc.message) from None
        response = JSONResponse(_session_body(new.principal.user, new.csrf_token))
        max_age = max(1, int(new.expires_at - wall_clock()))
        response.set_cookie(
            SESSION_COOKIE,
            new.secret,
            max_age=max_age,
            httponly=True,
            secure=cfg.secure_cookies,
            samesite="strict",
            path="/",
        )
        response.set_cookie(
            CSRF_COOKIE,
            new.csrf_token,
            max_age=max_age,
            httponly=False,
            secure=cfg.secure_cookies,
            samesite="strict",
            path="/",
        )
        return response

    # -- session --------------------------------------------------------------

    @app.get("/api/v1/session", tags=["session"])
    async def session(principal: Viewer, request: Request) -> dict[str, Any]:
        """Who is logged in; for a browser session also its CSRF token again."""
        csrf = request.cookies.get(CSRF_COOKIE, "")
        return _session_body(principal.user, csrf if principal.csrf_ok(csrf) else "")

    @app.delete("/api/v1/session", tags=["session"])
    async def logout(principal: Viewer) -> Response:
        await run_in_threadpool(accounts.logout, principal, wall_clock())
        response = JSONResponse({"ok": True})
        response.delete_cookie(SESSION_COOKIE, path="/")
        response.delete_cookie(CSRF_COOKIE, path="/")
        return response

    @app.post("/api/v1/tokens", tags=["session"])
    async def create_token(body: TokenIn, principal: Viewer) -> dict[str, Any]:
        """A new API token for yourself (scripts, GIS tools); shown only in this answer."""
        token = await run_in_threadpool(
            lambda: accounts.create_token(
                principal.user.username,
                body.label,
                wall_clock(),
                days=body.days,
                actor=principal.actor,
            )
        )
        return {"token": token, "label": body.label, "days": body.days}

    @app.get("/api/v1/config", tags=["feed"])
    async def config(principal: Viewer) -> dict[str, Any]:
        s = feed.settings
        return {
            "network": s.network,
            "tile_url": s.tile_url,
            "tile_attribution": s.tile_attribution,
            "viewer_precision_m": s.viewer_precision_m,
            "role": principal.user.role,
            "username": principal.user.username,
        }

    # -- feed -----------------------------------------------------------------

    def _reports_json(found: list[FeedReport]) -> list[dict[str, Any]]:
        return [r.to_json() for r in found]

    @app.get("/api/v1/reports", tags=["feed"])
    async def list_reports(principal: Viewer, filters: FiltersDep) -> dict[str, Any]:
        """Reports, newest first (by when the coordinator received them)."""
        found = await run_in_threadpool(feed.reports, principal.user, filters, wall_clock())
        nxt = found[-1].received_at if len(found) == filters.limit else None
        return {"reports": _reports_json(found), "next_before": nxt}

    @app.get("/api/v1/reports/{report_id}", tags=["feed"], responses=_errors(404))
    async def one_report(
        report_id: Annotated[str, PathParam(min_length=1, max_length=64)], principal: Viewer
    ) -> dict[str, Any]:
        """One report with its receipts and the history of its handling."""
        found, history = await run_in_threadpool(
            feed.report, principal.user, report_id, wall_clock()
        )
        return found.to_json() | {"marks": [m.to_json() for m in history]}

    @app.post("/api/v1/reports/{report_id}/marks", tags=["feed"], responses=_errors(404))
    async def mark_report(
        report_id: Annotated[str, PathParam(min_length=1, max_length=64)],
        body: MarkIn,
        principal: Responder,
    ) -> dict[str, Any]:
        """Mark a report seen, assigned or resolved, with a note (audited)."""
        found = await run_in_threadpool(
            feed.mark, principal.user, report_id, body.state, body.note, wall_clock()
        )
        return {"report": found.to_json()}

    @app.get("/api/v1/senders", tags=["feed"])
    async def senders(principal: Viewer, filters: FiltersDep) -> dict[str, Any]:
        """The latest report of each sender, newest first, with how many they sent."""
        rows = await run_in_threadpool(feed.senders, principal.user, filters, wall_clock())
        return {"senders": [{"sender": s, "latest": r.to_json(), "count": n} for s, r, n in rows]}

    @app.get("/api/v1/senders/{sender}/reports", tags=["feed"])
    async def sender_reports(
        sender: Annotated[str, PathParam(min_length=1, max_length=40)],
        principal: Viewer,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> dict[str, Any]:
        """One sender's reports, newest first."""
        found = await run_in_threadpool(
            feed.sender_reports, principal.user, sender, limit, wall_clock()
        )
        return {"reports": _reports_json(found)}

    @app.get("/api/v1/counts", tags=["feed"])
    async def counts(principal: Viewer, filters: FiltersDep) -> dict[str, Any]:
        """Totals by status, need and handling state for the filters."""
        return await run_in_threadpool(feed.counts, filters)

    @app.get("/api/v1/gateways", tags=["gateways"])
    async def list_gateways(principal: Viewer) -> dict[str, Any]:
        return {"gateways": await run_in_threadpool(feed.gateways)}

    @app.get(
        "/api/v1/exports/{fmt}",
        tags=["feed"],
        response_class=Response,
        responses={
            200: {
                "description": "the export file",
                "content": {
                    f.media_type.split(";")[0]: {
                        "schema": {"type": "object" if "json" in f.media_type else "string"}
                    }
                    for f in exports.FORMATS.values()
                },
            }
        },
    )
    async def export(
        fmt: Literal["geojson", "csv", "cot", "cap", "pfif"],
        principal: Viewer,
        filters: FiltersDep,
    ) -> Response:
        """The filtered reports as a file (audited; viewers get coarsened positions)."""
        now = wall_clock()
        found = await run_in_threadpool(feed.export, principal.user, fmt, filters, now)
        spec = exports.FORMATS[fmt]
        ctx = exports.ExportContext(now=now, coordinator=feed.settings.network)
        body = await run_in_threadpool(spec.render, found, ctx)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
        return Response(
            body,
            media_type=spec.media_type,
            headers={
                "Content-Disposition": (
                    f'attachment; filename="signalfire-{stamp}.{spec.extension}"'
                )
            },
        )

    @app.get(
        "/api/v1/events",
        tags=["feed"],
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}}},
    )
    async def events(principal: Viewer, request: Request) -> StreamingResponse:
        """Server-sent events: ``report`` (new report JSON) and ``mark`` (handling changed)."""
        return StreamingResponse(
            _event_stream(principal, request),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    async def _event_stream(principal: Principal, request: Request) -> AsyncIterator[str]:
        last = wall_clock()
        sent: dict[str, float] = {}
        sent_marks: set[tuple[str, float, str]] = set()
        beat = reauth = clock()
        yield "retry: 3000\n\n"
        while not await request.is_disconnected():
            await asyncio.sleep(cfg.sse_poll_s)
            now_wall = wall_clock()
            if clock() - reauth > _REAUTH_S:
                reauth = clock()
                again = await run_in_threadpool(
                    accounts.authenticate_hash, principal.token_hash, now_wall
                )
                if again is None:
                    yield "event: logout\ndata: {}\n\n"
                    return
            changes = await run_in_threadpool(feed.changes, last)
            fresh = [r for r in changes.reports if r.id not in sent]
            shown = await run_in_threadpool(feed.visible, principal.user, fresh, now_wall)
            for r in shown:
                sent[r.id] = r.received_at
                yield f"event: report\ndata: {json.dumps(r.to_json())}\n\n"
            for report_id, mark in changes.marks:
                key = (report_id, mark.at, mark.state)
                if key not in sent_marks:
                    sent_marks.add(key)
                    payload = {"report_id": report_id, "mark": mark.to_json()}
                    yield f"event: mark\ndata: {json.dumps(payload)}\n\n"
            last = now_wall
            horizon = now_wall - 300.0
            for rid in [k for k, t in sent.items() if t < horizon]:
                del sent[rid]
            sent_marks = {k for k in sent_marks if k[1] >= horizon}
            if clock() - beat > _HEARTBEAT_S:
                beat = clock()
                yield ": keep-alive\n\n"

    # -- admin ----------------------------------------------------------------

    @app.get("/api/v1/users", tags=["admin"])
    async def list_users(principal: Admin) -> dict[str, Any]:
        return {"users": [u.to_json() for u in await run_in_threadpool(accounts.users)]}

    @app.post("/api/v1/users", tags=["admin"], status_code=201, responses=_errors(409))
    async def add_user(body: UserIn, principal: Admin) -> dict[str, Any]:
        try:
            user = await run_in_threadpool(
                lambda: accounts.add_user(
                    body.username, body.password, body.role, wall_clock(), actor=principal.actor
                )
            )
        except UserExists as exc:
            raise ApiError(409, "user-exists", exc.message) from None
        except AccountError as exc:
            raise ApiError(400, "bad-user", exc.message) from None
        return {"user": user.to_json()}

    @app.patch("/api/v1/users/{username}", tags=["admin"], responses=_errors(404))
    async def update_user(
        username: Annotated[str, PathParam(min_length=1, max_length=64)],
        body: UserPatch,
        principal: Admin,
    ) -> dict[str, Any]:
        try:
            user = await run_in_threadpool(
                lambda: accounts.update_user(
                    username,
                    wall_clock(),
                    actor=principal.actor,
                    role=body.role,
                    password=body.password,
                    disabled=body.disabled,
                )
            )
        except NoSuchUser as exc:
            raise ApiError(404, "not-found", exc.message) from None
        except AccountError as exc:
            raise ApiError(400, "bad-user", exc.message) from None
        return {"user": user.to_json()}

    @app.post("/api/v1/gateways", tags=["admin"], status_code=201)
    async def add_gateway(body: GatewayIn, principal: Admin) -> dict[str, Any]:
        try:
            name = check_gateway_name(body.name)
            row, new = await run_in_threadpool(
                lambda: ingestor.store.add_gateway(
                    bytes.fromhex(body.public_key), name, wall_clock(), actor=principal.actor
                )
            )
        except SignalfireError as exc:
            raise ApiError(400, "bad-gateway", exc.message) from None
        return {"gateway": row.to_json(), "new": new}

    @app.post("/api/v1/gateways/{key_id}/revoke", tags=["admin"], responses=_errors(404))
    async def revoke_gateway(
        key_id: Annotated[str, PathParam(min_length=16, max_length=16)], principal: Admin
    ) -> dict[str, Any]:
        done = await run_in_threadpool(
            lambda: ingestor.store.revoke_gateway(
                key_id.lower(), wall_clock(), actor=principal.actor
            )
        )
        if not done and await run_in_threadpool(ingestor.store.gateway, key_id.lower()) is None:
            raise ApiError(404, "not-found", "no gateway with that key id")
        return {"revoked": True}

    @app.post("/api/v1/senders/{sender}/revoke", tags=["admin"])
    async def revoke_sender(
        sender: Annotated[str, PathParam(pattern=r"^([0-9a-f]{16}|node-[0-9a-f]{8})$")],
        body: RevokeIn,
        principal: Admin,
    ) -> dict[str, Any]:
        """Flag the sender's reports created since a time (a seized device); audited."""
        now = wall_clock()
        since = now if body.since is None else body.since

        def revoke() -> int:
            with ingestor.store.transaction() as tx:
                return tx.revoke_sender(sender, since, body.reason, principal.actor, now)

        return {"sender": sender, "since": since, "flagged": await run_in_threadpool(revoke)}

    @app.get("/api/v1/audit", tags=["admin"])
    async def audit(
        principal: Admin, limit: Annotated[int, Query(ge=1, le=1000)] = 100
    ) -> dict[str, Any]:
        """The newest audit entries (append-only: who saw exact positions, exports, changes)."""

        def read() -> list[dict[str, Any]]:
            with ingestor.store.transaction(write=False) as tx:
                return tx.audit_entries(limit)

        return {"entries": await run_in_threadpool(read)}

    app.include_router(webhook_router(ingestor, webhooks or Webhooks(), wall_clock=wall_clock))
    return app

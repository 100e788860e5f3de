"""The coordinator's HTTP side: the gateways' batch endpoint and a public health check.

A plain Starlette app, so that the JSON API for people (FastAPI, OpenAPI)
can mount it or be mounted beside it later.

    POST /api/v1/batches   body: a signed batch envelope (signalfire.batch)
        200 {"stored": [id...], "duplicates": [id...], "pending": [id...],
             "rejected": [{"id": id, "error": code}...], "deferred": [id...]}
            The gateway marks stored, duplicates and pending done (all are safely
            kept), stops retrying rejected, and sends deferred again later.
        400 {"error": code, "message": ...}   not a valid signed batch
        403 {"error": "unknown-gateway" | "revoked-gateway", ...}
        413 body larger than the limit
        429 per-gateway rate limit; Retry-After says when to come back
        503 the database is unavailable; Retry-After
    GET /api/v1/health     {"ok": true}, nothing else
    anything else          404

The gateway authenticates by its batch signature alone; no other secret
travels, so there is nothing to steal from a request log.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from signalfire.batch import BatchError

from .ingest import GatewayRefused, Ingestor
from .ratelimit import TokenBuckets

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024  # ~5,000 packets; HTTPS batches are far smaller
DEFAULT_RATE_PER_S = 10.0
DEFAULT_BURST = 50
DATABASE_RETRY_AFTER_S = 5
_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(body, status_code=status, headers={**_HEADERS, **(headers or {})})


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return _json(status, {"error": code, "message": message}, headers)


class _TooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing more than ``limit`` bytes while reading, not after."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _TooLarge
    return bytes(body)


def batch_endpoint(
    ingestor: Ingestor,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    rate_per_s: float = DEFAULT_RATE_PER_S,
    burst: int = DEFAULT_BURST,
    uplink: str = "https",
    clock: Callable[[], float] = time.monotonic,
    wall_clock: Callable[[], float] = time.time,
) -> Callable[[Request], Awaitable[Response]]:
    """The handler of POST /api/v1/batches (here and in the full coordinator app, api.py)."""
    buckets = TokenBuckets(rate_per_s, burst)

    async def post_batch(request: Request) -> Response:
        try:
            data = await _read_body(request, max_body_bytes)
        except _TooLarge:
            return _error(413, "too-large", f"a batch may be at most {max_body_bytes} bytes")
        except ClientDisconnect:
            return Response(status_code=400)  # nobody is left to read it; no traceback
        try:
            # Signature checks are CPU work: off the event loop.
            batch = await run_in_threadpool(ingestor.open_batch, data)
        except BatchError as exc:
            log.info("batch refused error=%s", exc.code)
            return _error(400, exc.code, exc.message)
        except GatewayRefused as exc:
            return _error(403, exc.code, exc.message)
        # The bucket is charged only after the signature verified: otherwise anyone
        # could drain an enrolled gateway's allowance by naming its key.
        wait = buckets.take(batch.gateway_key_id.hex(), clock())
        if wait > 0:
            retry = str(max(1, math.ceil(wait)))
            return _error(
                429,
                "rate-limited",
                f"too many batches from this gateway; retry in {retry} s",
                {"Retry-After": retry},
            )
        try:
            result = await run_in_threadpool(ingestor.ingest, batch, data, uplink, wall_clock())
        except SQLAlchemyError as exc:
            log.error("database error while ingesting: %s", type(exc).__name__)
            return _error(
                503,
                "database-unavailable",
                "the coordinator cannot store the batch now; send it again later",
                {"Retry-After": str(DATABASE_RETRY_AFTER_S)},
            )
        return _json(200, result.response())

    return post_batch


async def health(request: Request) -> Response:
    return _json(200, {"ok": True})


def create_app(
    ingestor: Ingestor,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    rate_per_s: float = DEFAULT_RATE_PER_S,
    burst: int = DEFAULT_BURST,
    uplink: str = "https",
    clock: Callable[[], float] = time.monotonic,
    wall_clock: Callable[[], float] = time.time,
) -> Starlette:
    """The gateways-only ASGI app; clocks are injectable so rate-limit tests need no sleeping."""
    post_batch = batch_endpoint(
        ingestor,
        max_body_bytes=max_body_bytes,
        rate_per_s=rate_per_s,
        burst=burst,
        uplink=uplink,
        clock=clock,
        wall_clock=wall_clock,
    )

    async def not_found(request: Request, exc: Exception) -> Response:
        # A wrong method on a known path is a 404 too: the surface says no more
        # than the two routes above.
        return _error(404, "not-found", "not found")

    return Starlette(
        routes=[
            Route("/api/v1/batches", post_batch, methods=["POST"]),
            Route("/api/v1/health", health, methods=["GET"]),
        ],
        exception_handlers={404: not_found, 405: not_found},
    )

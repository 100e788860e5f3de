"""The coordinator API's JSON request bodies, through the FastAPI app in-process.

Log in, marks, users (add and change), tokens and gateways, as an admin with an API
token (no CSRF header needed) on a seeded store. Byte 0 picks the route; the rest is
the request body, sent as application/json whatever it holds.
Property: never a 5xx, never an exception out of the app.
"""

from __future__ import annotations

import json

from ..common import Finding
from ..coord import ADMIN_PASSWORD, AppClient

ALLOWED: tuple[type[BaseException], ...] = ()
_CLIENT: AppClient | None = None
_ROUTES = (
    ("POST", "/api/v1/session", False),
    ("POST", "/api/v1/reports/{report}/marks", True),
    ("POST", "/api/v1/users", True),
    ("PATCH", "/api/v1/users/viewer1", True),
    ("POST", "/api/v1/tokens", True),
    ("POST", "/api/v1/gateways", True),
)


def _client() -> AppClient:
    global _CLIENT
    if _CLIENT is None:
        _CLIENT = AppClient()
    return _CLIENT


def test_one_input(data: bytes) -> None:
    if not data:
        return
    client = _client()
    coord = client.tick()
    method, path, auth = _ROUTES[data[0] % len(_ROUTES)]
    headers = {"content-type": "application/json"}
    if auth:
        headers["authorization"] = f"Bearer {coord.token}"
    r = client.request(
        method, path.format(report=coord.report_id), content=data[1:], headers=headers
    )
    if r.status_code >= 500:
        raise Finding(f"{method} {path} answered {r.status_code}: {r.content[:300]!r}")


def seeds() -> list[bytes]:
    bodies = [
        {"username": "admin", "password": ADMIN_PASSWORD},
        {"state": "assigned", "note": "team 3 on the way"},
        {"username": "responder2", "password": "long enough password", "role": "responder"},
        {"role": "responder", "password": "another long one", "disabled": False},
        {"label": "qgis", "days": 30},
        {"name": "north gateway", "public_key": "ab" * 32},
    ]
    return [bytes([i]) + json.dumps(b).encode() for i, b in enumerate(bodies)]

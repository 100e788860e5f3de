"""A seeded coordinator for the targets that fuzz through it: store, ingest, accounts, app.

The database is a SQLite file in a fresh directory on /dev/shm (tmpfs; fsyncs cost
nothing there). Targets rebuild it every ``RESET_EVERY`` inputs so that a million
inputs do not grow one database without bound (which would show up as a memory
"finding" of the harness, not of the code).
"""

from __future__ import annotations

import asyncio
import importlib
import itertools
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from argon2 import PasswordHasher

from signalfire import wire
from signalfire.coordinator.accounts import Accounts
from signalfire.coordinator.api import create_coordinator_app
from signalfire.coordinator.config import SbdSettings, SmsSettings
from signalfire.coordinator.feed import Feed, FeedSettings
from signalfire.coordinator.ingest import Ingestor
from signalfire.coordinator.store import CoordinatorStore
from signalfire.coordinator.webhooks import Webhooks

from .common import NOW, real_batch, world

RESET_EVERY = 2_000
SBD_TOKEN = "s" * 24
SMS_TOKEN = "m" * 24
IMEI = "300434063480220"
PHONE = "+37491000001"
ADMIN_PASSWORD = "correct horse battery"


def _tmp_root() -> str | None:
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() else None


@dataclass
class Coordinator:
    directory: Path
    store: CoordinatorStore
    ingestor: Ingestor
    accounts: Accounts
    token: str
    report_id: str  # a stored report, for the marks route

    def close(self) -> None:
        self.store.close()
        shutil.rmtree(self.directory, ignore_errors=True)


def build() -> Coordinator:
    w = world()
    directory = Path(tempfile.mkdtemp(prefix="signalfire-fuzz-", dir=_tmp_root()))
    store = CoordinatorStore(f"sqlite:///{directory / 'coordinator.db'}", now=NOW)
    ingestor = Ingestor(
        store,
        wire.Keyring(w.network_public, w.network_private),
        enrolled_gateways=[("gw1", w.gateway_public)],
        now=NOW,
    )
    result = ingestor.ingest_batch(real_batch(), "https", NOW)
    # Argon2id at its cheapest: the fuzzer is after the request handling, not the hash.
    accounts = Accounts(store, hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    accounts.add_user("admin", ADMIN_PASSWORD, "admin", NOW, actor="fuzz")
    accounts.add_user("viewer1", ADMIN_PASSWORD, "viewer", NOW, actor="fuzz")
    token = accounts.create_token("admin", "fuzz", NOW, actor="fuzz")
    return Coordinator(directory, store, ingestor, accounts, token, result.stored[-1])


class Fresh:
    """The seeded coordinator, rebuilt every RESET_EVERY inputs."""

    def __init__(self) -> None:
        self.inputs = 0
        self.coord: Coordinator | None = None

    def get(self) -> Coordinator:
        self.inputs += 1
        if self.coord is None or self.inputs % RESET_EVERY == 0:
            if self.coord is not None:
                self.coord.close()
            self.coord = build()
        return self.coord


class Ticking:
    """A monotonic clock that jumps a minute per reading: the login rate limit never bites."""

    def __init__(self) -> None:
        self._n = itertools.count()

    def __call__(self) -> float:
        return float(next(self._n) * 60)


async def _inline(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return func(*args, **kwargs)


# The app runs its blocking work (database, password checks) in worker threads. In the
# fuzzer the same calls run inline: one thread is what libFuzzer expects, and handing
# each request to a thread and back cost more than the request. The code that runs is
# the same; only where it runs changes.
_THREADPOOL_USERS = (
    "fastapi.routing",
    "fastapi.dependencies.utils",
    "signalfire.coordinator.api",
    "signalfire.coordinator.webhooks",
)


def _run_blocking_work_inline() -> None:
    for name in _THREADPOOL_USERS:
        module = importlib.import_module(name)
        assert hasattr(module, "run_in_threadpool"), name
        module.run_in_threadpool = _inline  # type: ignore[attr-defined]


@dataclass
class Answer:
    status_code: int
    content: bytes


class AppClient:
    """The whole coordinator app, called in-process as a bare ASGI application.

    No HTTP client in between (httpx's ASGI transport cost a third of each request):
    one scope, the body in one message, the answer collected. Exceptions the app lets
    escape propagate, so a target sees them as the crash they are; a 5xx answer is
    checked by the target.
    """

    def __init__(self) -> None:
        _run_blocking_work_inline()
        self.loop = asyncio.new_event_loop()
        self.inputs = 0
        self.coord: Coordinator | None = None
        self.app: Any = None
        self._reset()

    def _reset(self) -> None:
        if self.coord is not None:
            self.coord.close()
        self.coord = build()
        self.app = create_coordinator_app(
            ingestor=self.coord.ingestor,
            feed=Feed(self.coord.store, FeedSettings()),
            accounts=self.coord.accounts,
            webhooks=Webhooks(
                sbd=SbdSettings(token=SBD_TOKEN, modems=((IMEI, "gw1"),)),
                sms=SmsSettings(token=SMS_TOKEN, phones=((PHONE, "gw1"),)),
            ),
            wall_clock=lambda: NOW,
            clock=Ticking(),
        )

    def tick(self) -> Coordinator:
        self.inputs += 1
        if self.inputs % RESET_EVERY == 0:
            self._reset()
        assert self.coord is not None
        return self.coord

    def request(
        self, method: str, url: str, *, content: bytes = b"", headers: dict[str, str] | None = None
    ) -> Answer:
        return self.loop.run_until_complete(self._call(method, url, content, headers or {}))

    async def _call(self, method: str, url: str, content: bytes, headers: dict[str, str]) -> Answer:
        path, _, query = url.partition("?")
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": unquote(path),
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": [
                (b"host", b"coordinator"),
                (b"content-length", str(len(content)).encode()),
                *((k.lower().encode(), v.encode()) for k, v in headers.items()),
            ],
            "client": ("127.0.0.1", 40000),
            "server": ("coordinator", 80),
        }
        sent = False
        status = 0
        body = bytearray()

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": content, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                body.extend(message.get("body", b""))

        await self.app(scope, receive, send)
        return Answer(status, bytes(body))

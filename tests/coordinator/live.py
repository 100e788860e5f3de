"""A real coordinator service (FastAPI under uvicorn, SQLite or PostgreSQL) for API and UI tests.

Reports reach it the way a gateway's do: sealed by enrolled senders, put in
a batch signed by an enrolled gateway, POSTed to /api/v1/batches over HTTP.
Users get a cheap Argon2 cost so that a test logging in a dozen times does
not spend seconds hashing (production uses argon2-cffi's defaults).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from argon2 import PasswordHasher

from signalfire import batch as batchfmt
from signalfire import wire
from signalfire.coordinator.accounts import Accounts
from signalfire.coordinator.api import ApiSettings, create_coordinator_app
from signalfire.coordinator.feed import Feed, FeedSettings
from signalfire.coordinator.store import CoordinatorStore

from .kit import Sender, World

CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PASSWORDS = {
    "viewer": ("vera", "viewer-password-1"),
    "responder": ("ruben", "responder-password-1"),
    "admin": ("anna", "admin-password-12"),
}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveCoordinator:
    world: World
    feed_settings: FeedSettings = field(default_factory=FeedSettings)
    api_settings: ApiSettings = field(default_factory=lambda: ApiSettings(sse_poll_s=0.2))
    users: dict[str, tuple[str, str]] = field(default_factory=lambda: dict(PASSWORDS))
    senders: dict[str, Sender] = field(default_factory=dict)

    def start(self) -> None:
        self.store = CoordinatorStore(self.world.db_url)
        self.ingestor = self.world.ingestor(self.store)
        self.feed = Feed(self.store, self.feed_settings)
        self.accounts = Accounts(self.store, hasher=CHEAP_HASHER)
        for role, (name, password) in self.users.items():
            if self.accounts.user(name) is None:
                self.accounts.add_user(name, password, role, time.time(), actor="test")
        app = create_coordinator_app(
            ingestor=self.ingestor,
            feed=self.feed,
            accounts=self.accounts,
            settings=self.api_settings,
        )
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_config=None, lifespan="off",
            access_log=False,
        )  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("coordinator did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.store.close()

    # -- reports ---------------------------------------------------------------

    def sender(self, name: str) -> Sender:
        if name not in self.senders:
            self.senders[name] = self.world.sender()
        return self.senders[name]

    def add_reports(self, specs: Sequence[dict[str, Any]], gateway: str = "gw1") -> list[str]:
        """Seal one report per spec and deliver them in one signed batch; returns their ids.

        A spec: status (label), and optionally lat, lon, people, needs (labels),
        text, sender (a name: the same name is the same identity), age_s.
        """
        packets: list[bytes] = []
        ids: list[str] = []
        now = time.time()
        for n, spec in enumerate(specs):
            who = self.sender(str(spec.get("sender", f"s{len(self.senders)}-{n}")))
            if who.seq == 0:
                packets.append(who.announcement)
            location = None
            if spec.get("lat") is not None:
                location = wire.Location.from_degrees(
                    float(spec["lat"]), float(spec["lon"]), accuracy_m=spec.get("accuracy_m", 20)
                )
            report = wire.Report(
                status=wire.Status.from_label(str(spec["status"])),
                time=int(now - float(spec.get("age_s", 0))),
                people=int(spec.get("people", 1)),
                needs=wire.needs_from_labels(list(spec.get("needs", []))),
                location=location,
                text=spec.get("text"),
            )
            packet = who.seal(report)
            packets.append(packet)
            ids.append(wire.packet_id(packet[:-64]).hex())
        items = [batchfmt.BatchItem(p, received_at=now, radio_node=0x1234, hops=1) for p in packets]
        body = batchfmt.encode(
            items,
            gateway=self.world.gateways[gateway],
            network_id=self.world.network_id,
            batch_id=f"live-{time.monotonic_ns()}",
            sent_at=int(now),
        )
        answer = httpx.post(f"{self.url}/api/v1/batches", content=body, timeout=10)
        answer.raise_for_status()
        stored = set(answer.json()["stored"]) | set(answer.json()["duplicates"])
        missing = [i for i in ids if i not in stored]
        assert not missing, f"coordinator did not store {missing}: {answer.json()}"
        return ids

    # -- clients ---------------------------------------------------------------

    def client(self, role: str | None = None) -> httpx.Client:
        """An HTTP client, logged in as the user of ``role`` (with the CSRF header) if given."""
        c = httpx.Client(base_url=self.url, timeout=10)
        if role is not None:
            name, password = self.users[role]
            r = c.post("/api/v1/session", json={"username": name, "password": password})
            r.raise_for_status()
            c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
        return c


def start_live(tmp_path: Path, db_url: str | None = None, **kw: Any) -> LiveCoordinator:
    live = LiveCoordinator(World(tmp_path, db_url), **kw)
    live.start()
    return live

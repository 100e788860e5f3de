"""Shared by the SBD and SMS tests: a real coordinator with its webhooks, a gateway store.

The coordinator is the whole service (FastAPI app under uvicorn, SQLite) with the
RockBLOCK and Kannel webhooks configured; senders and gateways come from the
coordinator tests' World (real keys, real sealed reports).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from pathlib import Path

import sqlalchemy as sa
import uvicorn
from argon2 import PasswordHasher

from coordinator.kit import Sender, World
from gateway.storekit import from_wire
from signalfire import wire
from signalfire.coordinator.accounts import Accounts
from signalfire.coordinator.api import create_coordinator_app
from signalfire.coordinator.config import SbdSettings, SmsSettings
from signalfire.coordinator.feed import Feed, FeedSettings
from signalfire.coordinator.store import CoordinatorStore
from signalfire.coordinator.webhooks import Webhooks
from signalfire.gateway.records import Verified
from signalfire.gateway.store import GatewayStore

SBD_TOKEN = "sbd-secret-0123456789abcdef0123"
SMS_TOKEN = "sms-secret-0123456789abcdef0123"
IMEI = "300434063480220"
GATEWAY_NUMBER = "+37491000001"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Coordinator:
    """The coordinator service with both webhooks, on a free loopback port."""

    def __init__(self, world: World, *, gateway: str = "gw1") -> None:
        self.world = world
        self.hooks = Webhooks(
            sbd=SbdSettings(token=SBD_TOKEN, modems=((IMEI, gateway),)),
            sms=SmsSettings(token=SMS_TOKEN, phones=((GATEWAY_NUMBER, gateway),)),
        )
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.sbd_url = f"{self.url}/api/v1/sbd/rockblock/{SBD_TOKEN}"
        self.sms_url = f"{self.url}/api/v1/sms/kannel/{SMS_TOKEN}"

    def start(self) -> None:
        self.store = CoordinatorStore(self.world.db_url)
        self.ingestor = self.world.ingestor(self.store)
        app = create_coordinator_app(
            ingestor=self.ingestor,
            feed=Feed(self.store, FeedSettings()),
            accounts=Accounts(self.store, hasher=PasswordHasher(time_cost=1, memory_cost=1024)),
            webhooks=self.hooks,
        )
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_config=None, lifespan="off",
            access_log=False,
        )  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "coordinator did not start"
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.store.close()

    def query(self, sql: str) -> list[tuple[object, ...]]:
        engine = sa.create_engine(self.world.db_url)
        try:
            with engine.connect() as conn:
                return [tuple(r) for r in conn.execute(sa.text(sql))]
        finally:
            engine.dispose()

    def report_ids(self) -> set[str]:
        return {str(r[0]) for r in self.query("SELECT id FROM reports")}


class Gateway:
    """A gateway store filled with real sealed reports (and their announcements)."""

    def __init__(self, world: World, tmp: Path, uplinks: Iterable[str]) -> None:
        self.world = world
        self.uplinks = list(uplinks)
        self.store = GatewayStore(tmp / "gateway.sqlite")
        self.store.ensure_uplinks(self.uplinks)
        self.expected: dict[str, int] = {}  # report id -> priority
        self.clock = 0.0

    def add(self, raw: bytes) -> str:
        self.clock += 1
        packet = from_wire(raw, received_at=1_795_000_000 + self.clock, verified=Verified.VERIFIED)
        self.store.add(packet, self.uplinks)
        return packet.id.hex()

    def report(self, who: Sender, status: wire.Status, text: str | None = None) -> str:
        if who.seq == 0:
            self.add(who.announcement)
        pid = self.add(who.report(status, text=text))
        self.expected[pid] = int(wire.priority_of(status))
        return pid

    def backlog(self, senders: int, each: int) -> list[Sender]:
        statuses = [
            wire.Status.SAFE,
            wire.Status.SOS,
            wire.Status.NEED_SUPPLIES,
            wire.Status.MEDICAL,
        ]
        people = [self.world.sender() for _ in range(senders)]
        for r in range(each):
            for n, who in enumerate(people):
                text = "water for 4, road blocked" if (n + r) % 3 == 0 else None
                self.report(who, statuses[(n + r) % len(statuses)], text)
        return people

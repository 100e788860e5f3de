"""Store -> scheduler -> HTTPS -> a real coordinator: life-safety first, flapping, exactly once."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from signalfire import wire
from signalfire.gateway.intake import stored_packet
from signalfire.gateway.records import Verified
from signalfire.gateway.scheduler import UplinkWorker
from signalfire.gateway.store import GatewayStore
from signalfire.gateway.uplinks.https import HttpsUplink
from signalfire.profile import init_network
from signalfire.sender import Identity

from .coordkit import CoordinatorServer

T = 1_795_860_000


class World:
    def __init__(self, tmp: Path) -> None:
        self.profile, self.key_path = init_network(tmp / "net", "town")
        self.gateway = Identity.create(tmp / "gw.key")
        self.store = GatewayStore(tmp / "gateway.sqlite")
        self.coordinator = CoordinatorServer(
            tmp, self.profile, self.key_path, {"gw": self.gateway.public}
        )
        self.expected: dict[str, int] = {}  # report id -> priority
        self.tmp = tmp

    def civilians(self, n: int, reports_each: int) -> None:
        statuses = [wire.Status.SAFE, wire.Status.SOS, wire.Status.EVACUATE, wire.Status.MEDICAL]
        for c in range(n):
            who = Identity.create(self.tmp / f"civ{c}.key")
            for r in range(reports_each):
                status = statuses[(c + r) % len(statuses)]
                sealed = who.seal(self.profile, wire.Report(status, T + r, 1))
                if sealed.announcement:
                    self._add(sealed.announcement)
                pid = self._add(sealed.packet)
                self.expected[pid] = int(wire.priority_of(status))

    def _add(self, raw: bytes) -> str:
        parsed = wire.parse(raw)
        self.store.add(stored_packet(raw, parsed, None, time.time(), Verified.NOT_CHECKED), ["c"])
        return parsed.id.hex()

    def worker(self, batch_size: int = 10) -> UplinkWorker:
        uplink = HttpsUplink(
            self.coordinator.url, gateway=self.gateway.key, network_id=self.profile.network_id,
            name="c", timeout_s=5,
        )  # fmt: skip
        return UplinkWorker(uplink, self.store, batch_size=batch_size, backoff_base=0.05,
                            backoff_max=0.5, seed=1)  # fmt: skip


def wait_until(predicate, timeout: float = 30.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def world(tmp_path: Path):  # type: ignore[no-untyped-def]
    w = World(tmp_path)
    yield w
    w.coordinator.stop()
    w.store.close()


def test_backlog_drains_life_safety_first_once_the_uplink_appears(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING", logger="signalfire")
    world.civilians(6, 10)
    worker = world.worker(batch_size=10)
    worker.start()
    try:
        time.sleep(0.5)  # the uplink is down: nothing can go
        assert worker.delivered == 0
        assert worker.last_error == "not reachable"
        world.coordinator.start()
        worker.notify()
        assert wait_until(lambda: set(world.coordinator.report_ids()) == set(world.expected))
    finally:
        worker.stop()
    # The default log level shows the outage and its end, once each, not every retry.
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("signalfire")]
    assert [m for m in ours if "not reachable" in m] == [
        "uplink c: not reachable; packets wait in the store and are tried again"
    ]
    assert len([m for m in ours if "working again after" in m]) == 1, ours
    rows = world.coordinator.query(
        "SELECT r.priority, min(c.ingested_at) FROM reports r JOIN receipts c ON c.report_id = r.id"
        " GROUP BY r.id, r.priority"
    )
    first = {p: min(t for q, t in rows if q == p) for p, _ in rows}
    last = {p: max(t for q, t in rows if q == p) for p, _ in rows}
    assert last["life-safety"] <= first["routine"]  # every SOS/medical was in before any "safe"
    assert last["life-safety"] <= first["elevated"]
    # exactly once in effect: one report row and one receipt per report for this uplink
    receipts = world.coordinator.query("SELECT report_id, count(*) FROM receipts GROUP BY 1")
    assert all(n == 1 for _, n in receipts)
    stats = world.store.stats(time.time())
    assert stats["uplinks"]["c"]["pending_total"] == 0


def test_coordinator_flapping_loses_and_duplicates_nothing(world: World) -> None:
    world.civilians(5, 40)
    world.coordinator.start()
    worker = world.worker(batch_size=5)
    stop = threading.Event()

    def flap() -> None:
        while not stop.is_set():
            time.sleep(0.15)
            world.coordinator.stop()
            time.sleep(0.1)
            world.coordinator.start()
            worker.notify()

    flapper = threading.Thread(target=flap)
    worker.start()
    flapper.start()
    try:
        assert wait_until(lambda: len(world.coordinator.report_ids()) >= len(world.expected) // 2)
        stop.set()
        flapper.join()
        worker.notify()
        assert wait_until(lambda: set(world.coordinator.report_ids()) == set(world.expected))
    finally:
        stop.set()
        worker.stop()
    ids = world.coordinator.report_ids()
    assert len(ids) == len(set(ids)) == len(world.expected)
    assert worker.failures == 0  # recovered
    assert world.store.stats(time.time())["uplinks"]["c"]["pending_total"] == 0


def test_unenrolled_gateway_is_told_clearly_and_keeps_everything(world: World) -> None:
    world.coordinator.gateways = {}  # nobody enrolled
    world.civilians(1, 3)
    world.coordinator.start()
    worker = world.worker()
    worker.start()
    try:
        assert wait_until(lambda: worker.last_error is not None and "enrol" in worker.last_error)
    finally:
        worker.stop()
    assert world.coordinator.report_ids() == []
    assert world.store.stats(time.time())["uplinks"]["c"]["pending_total"] == 4

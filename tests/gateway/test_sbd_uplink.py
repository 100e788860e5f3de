"""Gateway store -> scheduler -> SBD uplink -> emulated 9603 on a pty -> RockBLOCK webhook
-> a real coordinator: packed, counted, within budget, backing off on the modem's codes.

The scheduler is driven with deliver_once() and a fake clock, so back-off and the daily
budget are tested without waiting; the modem, pyserial, the webhook and the ingest are
all real.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from coordinator.kit import World
from modem.kit import IMEI, Coordinator, Gateway
from signalfire import wire
from signalfire.gateway.scheduler import UplinkWorker
from signalfire.gateway.uplinks.sbd import SbdUplink
from signalfire.modem import container
from signalfire.modem.sbd_emulator import SbdEmulator


class Clock:
    def __init__(self) -> None:
        self.now = 1_795_100_000.0

    def __call__(self) -> float:
        return self.now


class Rig:
    def __init__(self, tmp: Path, *, credits_per_day: int | None = None) -> None:
        self.world = World(tmp)
        self.coordinator = Coordinator(self.world)
        self.coordinator.start()
        self.clock = Clock()
        self.modem = SbdEmulator(
            imei=IMEI, webhook_url=self.coordinator.sbd_url, link_path=tmp / "ttyRockBLOCK"
        )
        self.modem.start()
        self.gateway = Gateway(self.world, tmp, ["sbd"])
        self.uplink = SbdUplink(
            self.modem.path, credits_per_day=credits_per_day, clock=self.clock,
            session_timeout_s=5,
        )  # fmt: skip
        self.worker = UplinkWorker(
            self.uplink, self.gateway.store, clock=self.clock, backoff_base=2, backoff_max=600,
            seed=1,
        )  # fmt: skip

    def drain(self, max_rounds: int = 200) -> int:
        """deliver_once until nothing is due now; returns the messages sent."""
        for sent in range(max_rounds):
            if not self.worker.deliver_once():
                return sent
        raise AssertionError("still sending after max_rounds")

    def state(self, pid: str) -> str:
        (copy,) = self.gateway.store.copies(bytes.fromhex(pid))
        return self.gateway.store.deliveries(copy.copy_id)["sbd"].state

    def close(self) -> None:
        self.worker.stop()
        self.modem.stop()
        self.coordinator.stop()
        self.gateway.store.close()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(tmp_path)
    yield r
    r.close()


def test_backlog_goes_out_packed_once_each_and_counted(rig: Rig) -> None:
    rig.gateway.backlog(senders=6, each=4)
    messages = rig.drain()
    assert rig.modem.wait_delivered(len(rig.modem.sent))
    superseded = {pid for pid in rig.gateway.expected if rig.state(pid) == "superseded"}
    due = set(rig.gateway.expected) - superseded
    assert all(rig.state(pid) == "done" for pid in due)
    assert rig.coordinator.report_ids() == due  # nothing lost, nothing that was not sent
    # Superseded on this costly link only: the durable log still has every report.
    for pid in superseded:
        assert rig.gateway.store.copies(bytes.fromhex(pid))
    receipts = rig.coordinator.query("SELECT report_id, count(*) FROM receipts GROUP BY 1")
    assert all(n == 1 for _, n in receipts)
    # Packed: every message a readable container within 340 bytes, several reports each.
    sizes = [len(data) for _, data in rig.modem.sent]
    assert messages == len(sizes) and max(sizes) <= container.SBD_MO_MAX
    packets = sum(len(container.decode(data).packets) for _, data in rig.modem.sent)
    assert packets / messages > 2
    credits = sum(container.sbd_credits(n) for n in sizes)
    assert rig.uplink.credits_used == credits
    assert rig.gateway.store.spent("sbd", rig.clock.now - 86_400)[0] == credits
    assert all(form["imei"] == IMEI for form in rig.modem.posts)


def test_life_safety_goes_first_and_past_a_short_budget(tmp_path: Path) -> None:
    rig = Rig(tmp_path, credits_per_day=14)
    try:
        senders = [rig.world.sender() for _ in range(12)]
        routine = [rig.gateway.report(s, wire.Status.SAFE) for s in senders[:8]]
        life = [rig.gateway.report(s, wire.Status.SOS) for s in senders[8:]]
        rig.drain()
        assert rig.modem.wait_delivered(len(rig.modem.sent))
        stored = rig.coordinator.report_ids()
        assert set(life) <= stored  # every SOS got out
        assert all(rig.state(p) == "done" for p in life)
        # The budget held routine reports back once spent (life-safety went first).
        waiting = [p for p in routine if rig.state(p) == "pending"]
        assert waiting and not set(waiting) & stored
        assert rig.worker.budget_blocked_until is not None
        assert "daily budget" in (rig.worker.last_error or "")
        # A new SOS still goes past the spent budget...
        late = rig.gateway.report(rig.world.sender(), wire.Status.TRAPPED)
        rig.drain()
        assert rig.state(late) == "done"
        assert rig.gateway.store.spent("sbd", rig.clock.now - 86_400)[0] > 14
        assert all(rig.state(p) == "pending" for p in waiting)
        # ...and the routine ones go as the budget allows, day by day.
        days = 0
        while any(rig.state(p) == "pending" for p in routine):
            days += 1
            assert days < 10
            rig.clock.now += 86_401
            sent = len(rig.modem.sent)
            rig.drain()
            spent_today = sum(container.sbd_credits(len(d)) for _, d in rig.modem.sent[sent:])
            assert 0 < spent_today <= 14
        assert days >= 2
        assert rig.modem.wait_delivered(len(rig.modem.sent))
        assert set(routine) <= rig.coordinator.report_ids()
    finally:
        rig.close()


def test_failure_codes_back_off_as_the_modem_asks_and_deliver_eventually(rig: Rig) -> None:
    pid = rig.gateway.report(rig.world.sender(), wire.Status.MEDICAL)
    rig.modem.fail_next(32, 18, 36)  # no network, RF drop, "wait 3 minutes"
    store = rig.gateway.store
    assert rig.worker.deliver_once()
    assert "MO status 32" in (rig.worker.last_error or "")
    assert not rig.worker.deliver_once()  # backing off: nothing due yet
    rig.clock.now = store.next_due_at("sbd") or 0
    assert rig.worker.deliver_once()
    assert "RF drop" in (rig.worker.last_error or "")
    rig.clock.now = store.next_due_at("sbd") or 0
    before = rig.clock.now
    assert rig.worker.deliver_once()
    assert "wait 3 minutes" in (rig.worker.last_error or "")
    assert (store.next_due_at("sbd") or 0) >= before + 180  # not before the 3 minutes
    assert not rig.uplink.probe()  # the uplink itself holds off too
    rig.clock.now += 181
    assert rig.uplink.probe()
    rig.clock.now = max(rig.clock.now, store.next_due_at("sbd") or 0)
    assert rig.worker.deliver_once()
    assert rig.state(pid) == "done"
    assert rig.modem.wait_delivered(1)
    assert pid in rig.coordinator.report_ids()
    assert rig.modem.sessions == 4
    assert rig.uplink.credits_used == container.sbd_credits(len(rig.modem.sent[0][1]))


def test_weak_signal_is_not_tried_and_costs_nothing(rig: Rig) -> None:
    pid = rig.gateway.report(rig.world.sender(), wire.Status.SOS)
    rig.modem.signal = 1
    assert not rig.uplink.probe()
    assert rig.worker.deliver_once()
    assert "signal 1 bars" in (rig.worker.last_error or "")
    assert rig.modem.sessions == 0 and rig.uplink.credits_used == 0
    rig.modem.signal = 4
    rig.clock.now = rig.gateway.store.next_due_at("sbd") or 0
    assert rig.worker.deliver_once()
    assert rig.state(pid) == "done"


def test_modem_unplugged_mid_session_loses_nothing(rig: Rig) -> None:
    pid = rig.gateway.report(rig.world.sender(), wire.Status.SOS)
    rig.modem.session_delay_s = 0.3
    threading.Timer(0.1, rig.modem.unplug).start()
    assert rig.worker.deliver_once()
    assert rig.state(pid) == "pending"
    assert "modem" in (rig.worker.last_error or "")
    assert not rig.uplink.probe()  # still unplugged
    rig.modem.session_delay_s = 0
    rig.modem.replug()  # the same /dev/serial/by-id name, a new tty behind it
    assert rig.uplink.probe()
    rig.clock.now = rig.gateway.store.next_due_at("sbd") or 0
    assert rig.worker.deliver_once()
    assert rig.state(pid) == "done"
    assert rig.modem.wait_delivered(len(rig.modem.sent))
    assert pid in rig.coordinator.report_ids()


def test_mobile_terminated_messages_are_read_and_logged(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    got: list[tuple[int, bytes]] = []
    rig.uplink.on_mt = lambda mtmsn, data: got.append((mtmsn, data))
    rig.modem.queue_mt(b"ack \r\n\x00\xff binary")
    rig.gateway.report(rig.world.sender(), wire.Status.SOS)
    with caplog.at_level("INFO", logger="signalfire.gateway.uplinks.sbd"):
        rig.drain()
    assert got == [(1, b"ack \r\n\x00\xff binary")]
    assert "mobile-terminated message MTMSN 1" in caplog.text
    assert rig.modem.mo_buffer == b""  # cleared after the session (AT+SBDD0)


def test_worker_thread_delivers_without_polling(rig: Rig) -> None:
    worker = UplinkWorker(SbdUplink(rig.modem.path), rig.gateway.store, seed=2)
    worker.start()
    try:
        pid = rig.gateway.report(rig.world.sender(), wire.Status.SOS)
        worker.notify()
        deadline = time.monotonic() + 10
        while rig.state(pid) != "done":
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        worker.stop()
    assert rig.modem.wait_delivered(1)
    assert pid in rig.coordinator.report_ids()

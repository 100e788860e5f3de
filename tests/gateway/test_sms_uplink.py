"""Gateway store -> scheduler -> SMS uplink -> emulated GSM modem on a pty -> SMSC and a
Kannel-style forwarder -> the real coordinator's SMS webhook: packed, split, reassembled,
acknowledged on the delivery reports, within the parts budget, backing off on errors.

The scheduler is driven with deliver_once() and a fake clock, so back-off and the daily
budget are tested without waiting; the modem, pyserial, the PDUs, the webhook and the
ingest are all real. Only the wait for a lost delivery report is real time (it waits on
the serial port), kept short with a small status_report_timeout_s.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from coordinator.kit import World
from modem.kit import GATEWAY_NUMBER, Coordinator, Gateway
from signalfire import wire
from signalfire.gateway.config import GatewayConfigError, load_config
from signalfire.gateway.daemon import build_uplink
from signalfire.gateway.scheduler import UplinkWorker
from signalfire.gateway.uplinks.sms import SmsUplink
from signalfire.modem import container
from signalfire.modem.gsm_emulator import GsmEmulator
from signalfire.modem.pdu import Concat
from signalfire.profile import init_network
from signalfire.sender import Identity

COORDINATOR_NUMBER = "+37491000009"


class Clock:
    def __init__(self) -> None:
        self.now = 1_795_100_000.0

    def __call__(self) -> float:
        return self.now


class Rig:
    def __init__(
        self, tmp: Path, *, parts_per_day: int | None = None, report_timeout: float = 5.0
    ) -> None:
        self.world = World(tmp)
        self.coordinator = Coordinator(self.world)
        self.coordinator.start()
        self.clock = Clock()
        self.modem = GsmEmulator(
            number=GATEWAY_NUMBER, webhook_url=self.coordinator.sms_url, link_path=tmp / "ttyGSM"
        )
        self.modem.start()
        self.gateway = Gateway(self.world, tmp, ["sms"])
        self.uplink = SmsUplink(
            self.modem.path, to=COORDINATOR_NUMBER, parts_per_day=parts_per_day,
            status_report_timeout_s=report_timeout, clock=self.clock,
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
        return self.gateway.store.deliveries(copy.copy_id)["sms"].state

    def answers(self) -> list[Any]:
        """The webhook's answers to whole messages (not to parts still waiting)."""
        assert self.modem.wait_idle()
        return [a for _, a in self.modem.posts if isinstance(a, dict) and not a.get("waiting")]

    def messages(self) -> list[bytes]:
        """The containers the gateway sent, joined from their parts as the webhook does."""
        out: list[bytes] = []
        joined: dict[int, list[bytes]] = {}
        for acc in self.modem.accepted:
            c = acc.submit.concat
            if c is None:
                out.append(acc.submit.data)
                continue
            joined.setdefault(c.reference, []).append(acc.submit.data)
            if c.seq == c.total:
                out.append(b"".join(joined.pop(c.reference)))
        return out

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


def test_backlog_goes_out_packed_split_and_reassembled_once_each(rig: Rig) -> None:
    rig.gateway.backlog(senders=6, each=4)
    messages = rig.drain()
    superseded = {pid for pid in rig.gateway.expected if rig.state(pid) == "superseded"}
    due = set(rig.gateway.expected) - superseded
    assert all(rig.state(pid) == "done" for pid in due)
    assert rig.coordinator.report_ids() == due  # nothing lost, nothing that was not sent
    receipts = rig.coordinator.query("SELECT report_id, count(*) FROM receipts GROUP BY 1")
    assert all(n == 1 for _, n in receipts)
    # Every SMS asked for a report and was reported delivered; each message fits 8 parts
    # and was cut exactly as protocol.md section 16 says.
    accepted = rig.modem.accepted
    assert all(a.submit.status_report and a.submit.destination == COORDINATOR_NUMBER
               for a in accepted)  # fmt: skip
    assert len(rig.modem.reports) == len(accepted)
    assert all(r.delivered for r in rig.modem.reports)
    sent = rig.messages()
    assert len(sent) == messages and messages > 1
    for data in sent:
        assert len(data) <= 8 * 134
        assert container.decode(data).error is None
    assert any(container.sms_parts(len(d)) > 1 for d in sent)
    for acc in accepted:
        c = acc.submit.concat
        if c is not None:
            assert len(acc.submit.data) == (134 if c.seq < c.total else len(acc.submit.data))
            assert 1 <= len(acc.submit.data) <= 134
        else:
            assert len(acc.submit.data) <= 140
    # Counted: every part paid, in the store too (a restart keeps the day's spending).
    parts = sum(container.sms_parts(len(d)) for d in sent)
    assert parts == len(accepted) == rig.uplink.parts_sent
    assert rig.gateway.store.spent("sms", rig.clock.now - 86_400)[0] == parts
    # Packed well: several reports a message.
    packets = sum(len(container.decode(d).packets) for d in sent)
    assert packets / messages > 3
    assert all(f["from"] == GATEWAY_NUMBER.encode() for f, _ in rig.modem.posts)


def test_life_safety_goes_first_and_past_a_short_parts_budget(tmp_path: Path) -> None:
    rig = Rig(tmp_path, parts_per_day=3)
    try:
        senders = [rig.world.sender() for _ in range(12)]
        routine = [rig.gateway.report(s, wire.Status.SAFE) for s in senders[:8]]
        life = [rig.gateway.report(s, wire.Status.SOS) for s in senders[8:]]
        rig.drain()
        stored = rig.coordinator.report_ids()
        assert set(life) <= stored  # every SOS got out, though they cost more than 3 parts
        assert all(rig.state(p) == "done" for p in life)
        # Life-safety first: no routine report went in a message before the last SOS.
        order = [
            {wire.parse(p).id.hex() for p in container.decode(m).packets} for m in rig.messages()
        ]
        last_life = max(n for n, ids in enumerate(order) if ids & set(life))
        assert not any(ids & set(routine) for ids in order[: last_life + 1])
        waiting = [p for p in routine if rig.state(p) == "pending"]
        assert waiting and not set(waiting) & stored
        assert "daily budget of 3 SMS parts" in (rig.worker.last_error or "")
        # A new SOS still goes past the spent budget...
        late = rig.gateway.report(rig.world.sender(), wire.Status.TRAPPED)
        rig.drain()
        assert rig.state(late) == "done"
        assert all(rig.state(p) == "pending" for p in waiting)
        # ...and the routine ones go as the budget allows, day by day.
        days = 0
        while any(rig.state(p) == "pending" for p in routine):
            days += 1
            assert days < 10
            rig.clock.now += 86_401
            before = len(rig.modem.accepted)
            rig.drain()
            assert 0 < len(rig.modem.accepted) - before <= 3
        assert days >= 2
        assert rig.modem.wait_idle()
        assert set(routine) <= rig.coordinator.report_ids()
    finally:
        rig.close()


def test_congestion_backs_off_and_the_report_gets_through(rig: Rig) -> None:
    pid = rig.gateway.report(rig.world.sender(), wire.Status.MEDICAL)  # 2 parts
    store = rig.gateway.store
    rig.modem.fail_next(42)  # the first part is refused: congestion
    before = rig.clock.now
    assert rig.worker.deliver_once()
    assert "+CMS ERROR 42: congestion" in (rig.worker.last_error or "")
    assert rig.state(pid) == "pending"
    assert (store.next_due_at("sms") or 0) >= before + 60  # a minute, not 2 s
    assert not rig.uplink.probe()  # the uplink holds off too
    assert not rig.worker.deliver_once()
    rig.clock.now += 61
    rig.modem.fail_next(0, 38)  # the next try: first part goes, second refused
    rig.clock.now = max(rig.clock.now, store.next_due_at("sms") or 0)
    assert rig.worker.deliver_once()
    error = rig.worker.last_error or ""
    assert "part 2 of 2 failed: +CMS ERROR 38: network out of order" in error
    assert "1 part(s) already sent and paid" in error
    assert store.spent("sms", rig.clock.now - 86_400)[0] == 1  # paid, though not done
    rig.clock.now += 61
    rig.clock.now = max(rig.clock.now, store.next_due_at("sms") or 0)
    assert rig.worker.deliver_once()
    assert rig.state(pid) == "done"
    assert rig.coordinator.report_ids() == {pid}
    # The second attempt's lone first part waits at the coordinator under its own
    # reference (dropped after part_ttl_hours); the third attempt used a new one.
    refs = [a.submit.concat.reference for a in rig.modem.accepted if a.submit.concat]
    assert len(refs) == 3 and refs[0] != refs[1]
    assert store.spent("sms", rig.clock.now - 86_400)[0] == 3


def test_a_lost_delivery_report_causes_a_resend_the_coordinator_recognises(
    tmp_path: Path,
) -> None:
    rig = Rig(tmp_path, report_timeout=0.4)
    try:
        who = rig.world.sender()
        pid = rig.gateway.report(who, wire.Status.SOS)  # announcement + report: 2 parts
        rig.modem.drop_reports(1)  # the second part's report never comes
        started = time.monotonic()
        assert rig.worker.deliver_once()
        assert time.monotonic() - started < 3
        assert "no delivery report for 1 of 2 SMS" in (rig.worker.last_error or "")
        assert rig.state(pid) == "pending"
        assert pid in rig.coordinator.report_ids()  # it did arrive
        rig.clock.now = rig.gateway.store.next_due_at("sms") or 0
        assert rig.worker.deliver_once()
        assert rig.state(pid) == "done"
        first, second = rig.answers()
        assert pid in first["stored"]
        assert pid in second["duplicates"] and not second["stored"]
        assert rig.coordinator.query("SELECT count(*) FROM reports") == [(1,)]
        # A single SMS sent again is the same message: answered as a replay.
        single = rig.gateway.report(who, wire.Status.SAFE)
        rig.modem.drop_reports(1)
        rig.clock.now += 1
        rig.drain()
        assert rig.state(single) == "pending"
        rig.clock.now = rig.gateway.store.next_due_at("sms") or 0
        rig.drain()
        assert rig.state(single) == "done"
        assert rig.answers()[-1] == rig.answers()[-2]
        receipts = rig.coordinator.query("SELECT report_id, count(*) FROM receipts GROUP BY 1")
        assert sorted(receipts) == sorted([(pid, 1), (single, 1)])
    finally:
        rig.close()


def test_a_failed_delivery_report_sends_again(rig: Rig) -> None:
    pid = rig.gateway.report(rig.world.sender(), wire.Status.SOS)
    rig.modem.fail_reports(0x46)  # first part: validity period expired, not delivered
    assert rig.worker.deliver_once()
    assert "validity period expired" in (rig.worker.last_error or "")
    assert rig.state(pid) == "pending"
    rig.clock.now = rig.gateway.store.next_due_at("sms") or 0
    assert rig.worker.deliver_once()
    assert rig.state(pid) == "done"
    assert pid in rig.coordinator.report_ids()


def test_weak_signal_and_lost_network_are_not_tried_and_cost_nothing(rig: Rig) -> None:
    pid = rig.gateway.report(rig.world.sender(), wire.Status.SOS)
    rig.modem.rssi = 2
    assert not rig.uplink.probe()
    assert rig.worker.deliver_once()
    assert "signal 2" in (rig.worker.last_error or "")
    rig.modem.rssi = 20
    rig.modem.registration = 2
    assert not rig.uplink.probe()
    rig.clock.now = rig.gateway.store.next_due_at("sms") or 0
    assert rig.worker.deliver_once()
    assert "not registered" in (rig.worker.last_error or "")
    assert rig.modem.accepted == [] and rig.uplink.parts_sent == 0
    assert rig.gateway.store.spent("sms", rig.clock.now - 86_400)[0] == 0
    rig.modem.registration = 5  # roaming across the border: fine
    assert rig.uplink.probe()
    rig.clock.now = rig.gateway.store.next_due_at("sms") or 0
    assert rig.worker.deliver_once()
    assert rig.state(pid) == "done"


def test_worker_thread_delivers_without_polling(rig: Rig) -> None:
    uplink = SmsUplink(rig.modem.path, to=COORDINATOR_NUMBER)
    worker = UplinkWorker(uplink, rig.gateway.store, seed=2)
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
    assert pid in rig.coordinator.report_ids()
    assert rig.modem.accepted[0].submit.concat == Concat(
        rig.modem.accepted[0].submit.concat.reference, 2, 1
    )


# -- configuration -----------------------------------------------------------------

BASE = """\
[gateway]
name = "gw"
identity = "gw.key"
network = "network.json"
data_dir = "data"
[radio]
spec = "tcp:127.0.0.1:4403"
[[uplink]]
type = "sms"
name = "phone"
port = "/dev/ttyUSB2"
to = "+37491000009"
"""


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    init_network(tmp_path, "town")
    Identity.create(tmp_path / "gw.key")
    return tmp_path


def test_sms_settings_are_read_and_the_uplink_built(config_dir: Path) -> None:
    path = config_dir / "gateway.toml"
    path.write_text(BASE + 'smsc = "+37491000000"\nmax_parts = 4\nparts_per_day = 40\n')
    (cfg,) = load_config(path).uplinks
    assert cfg.type == "sms" and cfg.name == "phone"
    uplink = build_uplink(cfg, None, None)  # type: ignore[arg-type]
    assert isinstance(uplink, SmsUplink)
    assert uplink.max_message_bytes == 4 * 134 and uplink.budget_per_day == 40
    assert uplink.to == "+37491000009" and uplink.modem.smsc == "+37491000000"
    assert uplink.costly and uplink.min_signal == 5 and uplink.status_report_timeout_s == 120


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('to = "0037491000009"\n', "international form"),
        ('smsc = "12"\n', "[[uplink]] #1 smsc"),
        ("max_parts = 1\n", "one SMS cannot carry a key announcement"),
        ("max_parts = 256\n", "use 2-255"),
        ("parts_per_day = -1\n", "parts_per_day"),
        ("parts_per_day = 1\n", "a key announcement needs two SMS parts"),
        ("min_signal = 40\n", "AT+CSQ units"),
        ("status_report_timeout_s = 0\n", "status_report_timeout_s"),
        ('port = ""\n', "serial port"),
    ],
)
def test_bad_sms_settings_name_the_setting_and_the_fix(
    config_dir: Path, extra: str, message: str
) -> None:
    path = config_dir / "gateway.toml"
    text = BASE
    key = extra.split("=")[0].strip()
    text = "\n".join(line for line in text.splitlines() if not line.startswith(key + " "))
    path.write_text(text + "\n" + extra)
    with pytest.raises(GatewayConfigError) as info:
        load_config(path)
    assert message in info.value.message


def test_missing_number_is_a_clear_error(config_dir: Path) -> None:
    path = config_dir / "gateway.toml"
    path.write_text(BASE.replace('to = "+37491000009"\n', ""))
    with pytest.raises(GatewayConfigError, match=r"\[uplink #1\] to is missing"):
        load_config(path)

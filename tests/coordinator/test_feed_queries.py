"""The feed's queries: filters, ordering, latest per sender, counts, one report in full.

Reports go in through the real ingest (sealed by senders, delivered by gateways at
chosen coordinator times); handling states are written directly, as feed.py's
marking is not under test here. Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from signalfire import wire
from signalfire.coordinator import feed_queries as fq
from signalfire.coordinator.ingest import Ingestor
from signalfire.coordinator.store import CoordinatorStore, report_marks, report_state, reports

from .kit import NOW, Sender, World, pid

TOWN = (40.18, 44.51)
FAR = (41.50, 45.80)


def _seal(
    sender: Sender,
    status: wire.Status,
    *,
    created: float,
    where: tuple[float, float] | None = TOWN,
    needs: wire.Need | None = None,
    seq: int | None = None,
    attestation: wire.Attestation | None = None,
) -> bytes:
    location = None if where is None else wire.Location.from_degrees(*where, accuracy_m=20)
    report = wire.Report(
        status=status,
        time=int(created),
        people=2,
        needs=needs or wire.Need(0),
        location=location,
        attestation=attestation,
    )
    return sender.seal(report, seq)


def _deliver(
    world: World, ing: Ingestor, packets: list[bytes], at: float, gateway: str = "gw1"
) -> None:
    result = ing.ingest_batch(world.batch(packets, gateway), "https", at)
    assert not (result.rejected or result.pending or result.deferred), result.response()


def _mark(store: CoordinatorStore, report_id: str, state: str, at: float = NOW) -> None:
    with store.transaction() as tx:
        for table in (report_state, report_marks):
            tx.conn.execute(
                table.insert().values(report_id=report_id, state=state, note="", by="ana", at=at)
            )


def _ids(rows: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in rows]


class Town:
    """Three civilians and a stock radio, reports received one minute apart."""

    def __init__(self, world: World, store: CoordinatorStore) -> None:
        self.world, self.store = world, store
        self.ing = world.ingestor(store)
        self.alice, self.bob, self.carol = world.sender(), world.sender(), world.sender()
        self.gw1 = world.gateway_sender("gw1")
        anns = [s.announcement for s in (self.alice, self.bob, self.carol, self.gw1)]
        _deliver(world, self.ing, anns, NOW - 7200)
        self.received: dict[str, float] = {}
        plan: list[tuple[Sender, wire.Status, tuple[float, float] | None, wire.Need]] = [
            (self.alice, wire.Status.SOS, TOWN, wire.Need.WATER),  # t0
            (self.bob, wire.Status.NEED_SUPPLIES, TOWN, wire.Need.WATER | wire.Need.FOOD),
            (self.carol, wire.Status.SAFE, FAR, wire.Need(0)),
            (self.alice, wire.Status.SAFE, None, wire.Need(0)),  # alice is safe now
            (self.bob, wire.Status.TRAPPED, TOWN, wire.Need.MEDICINE),
        ]
        self.ids: list[str] = []
        for n, (sender, status, where, needs) in enumerate(plan):
            at = NOW - 3600 + 60 * n
            packet = _seal(sender, status, created=at - 10, where=where, needs=needs)
            _deliver(world, self.ing, [packet], at)
            self.ids.append(pid(packet))
            self.received[pid(packet)] = at
        # A stock radio's message that gw1 wrapped: its own sender, "node-...".
        att = wire.Attestation(node_num=0x0A0B0C0D, packet_id=7, rx_time=int(NOW - 3000))
        wrapped = _seal(self.gw1, wire.Status.MEDICAL, created=NOW - 3000, attestation=att)
        _deliver(world, self.ing, [wrapped], NOW - 2990)
        self.ids.append(pid(wrapped))
        self.received[pid(wrapped)] = NOW - 2990


@pytest.fixture
def town(world: World, store: CoordinatorStore) -> Town:
    return Town(world, store)


def test_newest_reports_newest_first_with_paging(town: Town, store: CoordinatorStore) -> None:
    with store.transaction(write=False) as tx:
        rows = fq.newest_reports(tx.conn)
        assert _ids(rows) == town.ids[::-1]
        assert "raw" not in rows[0]
        assert rows[0]["sender"] == "node-0a0b0c0d" and rows[0]["status"] == "medical"
        assert {r["state"] for r in rows} == {"new"} and rows[0]["state_at"] is None
        page1 = fq.newest_reports(tx.conn, limit=4)
        page2 = fq.newest_reports(tx.conn, limit=4, before=page1[-1]["first_received_at"])
    assert _ids(page1) + _ids(page2) == town.ids[::-1]


def test_newest_reports_filters(town: Town, world: World, store: CoordinatorStore) -> None:
    a_sos, b_need, c_safe, a_safe, b_trapped, radio = town.ids
    # bob's trapped report also reached gw2, over two uplinks: still one row
    with store.transaction(write=False) as tx:
        raw = tx.report_raw(b_trapped)
    assert raw is not None
    town.ing.ingest_batch(world.batch([raw], "gw2"), "mqtt", NOW)
    town.ing.ingest_batch(world.batch([raw], "gw2"), "https", NOW)
    gw2 = wire.key_id(wire.ed25519_public_bytes(world.gateways["gw2"])).hex()
    _mark(store, a_sos, "resolved")
    _mark(store, b_need, "assigned")
    with store.transaction(write=False) as tx:
        conn = tx.conn
        life = fq.newest_reports(conn, statuses=["sos", "medical", "trapped"])
        assert _ids(life) == [radio, b_trapped, a_sos]
        window = fq.newest_reports(
            conn, since=town.received[b_need], until=town.received[b_trapped]
        )
        assert _ids(window) == [a_safe, c_safe, b_need]  # since inclusive, until exclusive
        box = (44.0, 40.0, 45.0, 40.5)  # min lon, min lat, max lon, max lat: the town
        in_town = fq.newest_reports(conn, bbox=box)
        assert _ids(in_town) == [radio, b_trapped, b_need, a_sos]  # no position: no match
        assert _ids(fq.newest_reports(conn, gateway=gw2)) == [b_trapped]
        assert _ids(fq.newest_reports(conn, states=["new"])) == [radio, b_trapped, a_safe, c_safe]
        handled = fq.newest_reports(conn, states=["assigned", "resolved"])
        assert [(r["id"], r["state"], r["state_by"]) for r in handled] == [
            (b_need, "assigned", "ana"),
            (a_sos, "resolved", "ana"),
        ]
        both = fq.newest_reports(conn, states=["new", "resolved"], statuses=["sos", "safe"])
        assert _ids(both) == [a_safe, c_safe, a_sos]
        assert fq.newest_reports(conn, statuses=["cancel"]) == []


def test_latest_per_sender_is_what_each_says_now(
    town: Town, world: World, store: CoordinatorStore
) -> None:
    _, _, c_safe, a_safe, b_trapped, radio = town.ids
    # carol's older report, created before her "safe", arrives last by a slow path:
    # she is still "safe", and still listed where that report put her
    late = _seal(town.carol, wire.Status.EVACUATE, created=NOW - 7000, seq=50)
    _deliver(world, town.ing, [late], NOW - 100)
    with store.transaction(write=False) as tx:
        conn = tx.conn
        rows = fq.latest_per_sender(conn)
        assert [(r["sender"], r["id"]) for r in rows] == [
            ("node-0a0b0c0d", radio),
            (town.bob.key_id.hex(), b_trapped),
            (town.alice.key_id.hex(), a_safe),
            (town.carol.key_id.hex(), c_safe),
        ]
        # the filter is on the latest report: alice's sos is over, bob's trapped is not
        sos = fq.latest_per_sender(conn, statuses=["sos", "trapped"])
        assert _ids(sos) == [b_trapped]
        assert _ids(fq.latest_per_sender(conn, limit=2)) == [radio, b_trapped]
        # carol's late report is recent but not her latest: she is not in the window
        assert _ids(fq.latest_per_sender(conn, since=NOW - 3000)) == [radio]
        assert _ids(fq.latest_per_sender(conn, states=["new"], bbox=(44, 40, 45, 40.5))) == [
            radio,
            b_trapped,
        ]


def test_sender_history_last_created_first(town: Town, store: CoordinatorStore) -> None:
    a_sos, _, _, a_safe, _, radio = town.ids
    with store.transaction(write=False) as tx:
        assert _ids(fq.sender_history(tx.conn, town.alice.key_id.hex())) == [a_safe, a_sos]
        assert _ids(fq.sender_history(tx.conn, town.alice.key_id.hex(), limit=1)) == [a_safe]
        assert _ids(fq.sender_history(tx.conn, "node-0a0b0c0d")) == [radio]
        assert fq.sender_history(tx.conn, "nobody") == []


def test_counts(town: Town, store: CoordinatorStore) -> None:
    a_sos, *_ = town.ids
    _mark(store, a_sos, "seen")
    with store.transaction(write=False) as tx:
        everything = fq.counts(tx.conn)
        recent = fq.counts(tx.conn, since=town.received[town.ids[3]])
        none = fq.counts(tx.conn, statuses=["cancel"])
    assert everything["total"] == 6 and everything["senders"] == 4
    assert everything["by_status"] == {
        "safe": 2,
        "sos": 1,
        "medical": 1,
        "trapped": 1,
        "evacuate": 0,
        "need-supplies": 1,
        "missing-person": 0,
        "cancel": 0,
    }
    assert everything["by_need"] == {
        "water": 2,
        "food": 1,
        "shelter": 0,
        "medicine": 1,
        "power": 0,
        "transport": 0,
    }
    assert everything["by_state"] == {"new": 5, "seen": 1, "assigned": 0, "resolved": 0}
    assert (recent["total"], recent["senders"]) == (3, 3)
    assert recent["by_status"]["safe"] == 1 and recent["by_need"]["medicine"] == 1
    assert none["total"] == none["senders"] == 0 and sum(none["by_need"].values()) == 0


def test_report_with_receipts(town: Town, world: World, store: CoordinatorStore) -> None:
    report_id = town.ids[0]
    with store.transaction(write=False) as tx:
        raw = tx.report_raw(report_id)
    assert raw is not None
    town.ing.ingest_batch(world.batch([raw], "gw2"), "mqtt", NOW)
    _mark(store, report_id, "seen", NOW + 1)
    with store.transaction() as tx:  # the latest state replaces the first; marks keep both
        tx.conn.execute(
            report_state.update()
            .where(report_state.c.report_id == report_id)
            .values(state="assigned", at=NOW + 2)
        )
        tx.conn.execute(
            report_marks.insert().values(
                report_id=report_id, state="assigned", note="team 2", by="ana", at=NOW + 2
            )
        )
    with store.transaction(write=False) as tx:
        full = fq.report_with_receipts(tx.conn, report_id)
        assert fq.report_with_receipts(tx.conn, "00" * 16) is None
        many = fq.receipts_for(tx.conn, [report_id, town.ids[1], "00" * 16])
    assert full is not None
    assert (full["status"], full["state"], full["sender"]) == (
        "sos",
        "assigned",
        town.alice.key_id.hex(),
    )
    assert [(r["gateway_name"], r["uplink"]) for r in full["receipts"]] == [
        ("gw1", "https"),
        ("gw2", "mqtt"),
    ]
    assert [(m["state"], m["note"]) for m in full["marks"]] == [
        ("seen", ""),
        ("assigned", "team 2"),
    ]
    assert [r["gateway_name"] for r in many[report_id]] == ["gw1", "gw2"]
    assert len(many[town.ids[1]]) == 1 and many["00" * 16] == []


def test_sender_latest_survives_retention_and_matches_a_rebuild(
    town: Town, world: World, store: CoordinatorStore
) -> None:
    """The table kept at every insert equals one computed from scratch, before and after expiry."""
    from signalfire.coordinator.feed import Feed, FeedSettings
    from signalfire.coordinator.store import rebuild_sender_latest, sender_latest

    def table() -> set[tuple[object, ...]]:
        with store.transaction(write=False) as tx:
            return {tuple(r) for r in tx.conn.execute(sa.select(sender_latest))}

    kept = table()
    assert len(kept) == 4
    with store.transaction() as tx:
        rebuild_sender_latest(tx.conn)
    assert table() == kept
    # Expire everything received before the newest report: senders lose their latest.
    newest = max(town.received.values())
    Feed(store, FeedSettings(retention_days=1)).expire(newest + 86_400 - 0.5)
    with store.transaction(write=False) as tx:
        left = {r.sender: r.id for r in tx.conn.execute(sa.select(reports.c.sender, reports.c.id))}
        q = sa.select(sender_latest.c.sender, sender_latest.c.report_id)
        latest = {r.sender: r.report_id for r in tx.conn.execute(q)}
    assert latest == left and len(left) >= 1

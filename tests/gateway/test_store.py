"""GatewayStore: idempotency, delivery order, retries, superseding, uplinks, stats, purge."""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from signalfire import wire
from signalfire.gateway import store_schema
from signalfire.gateway.records import StoredPacket, Verified
from signalfire.gateway.store import (
    GatewayStore,
    SchemaTooNew,
    StoreError,
    StoreShedding,
)
from signalfire.gateway.store_schema import SCHEMA_VERSION
from wirekit import Net

from .storekit import ELEVATED, LIFE, ROUTINE, T0, from_wire, packet

UPLINKS = ["https", "sat"]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[GatewayStore]:
    # min_free_bytes=0: these tests are about logic, not the disk of the machine running them.
    with GatewayStore(tmp_path / "gateway.db", min_free_bytes=0) as s:
        yield s


def ids(packets: list[StoredPacket]) -> list[bytes]:
    return [p.copy_id for p in packets]


# -- durability settings ---------------------------------------------------------


def test_opens_in_wal_with_full_sync_and_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "gateway.db"
    with GatewayStore(path, min_free_bytes=0) as s:
        conn = s._conn  # the settings are per connection: look at the store's own
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] > 0
        # Deleted rows zeroed on every SQLite build (Debian's default; not everyone's).
        assert conn.execute("PRAGMA secure_delete").fetchone()[0] == 1
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT max(version) FROM schema_version").fetchone()[0] == (
            SCHEMA_VERSION
        )


def test_status_write_leaves_the_connection_at_full_sync(store: GatewayStore) -> None:
    store.set_status("radio", '{"state": "connected"}')
    assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2


# -- idempotency -----------------------------------------------------------------


def test_same_bytes_thrice_is_one_row(store: GatewayStore) -> None:
    net = Net("idem")
    raw = net.seal(wire.Report(wire.Status.SOS, time=1_790_000_000, people=3))
    heard = [from_wire(raw, received_at=T0 + i) for i in range(3)]  # three relays
    assert [store.add(p, UPLINKS) for p in heard] == [True, False, False]
    assert store.stats(T0)["packets"]["total"] == 1
    assert ids(store.due("https", T0, 10)) == [heard[0].copy_id]
    stored = store.get(heard[0].copy_id)
    assert stored is not None and stored.raw == raw and stored.received_at == T0  # the first


def test_forged_copy_with_the_same_id_does_not_suppress_the_genuine_one(
    store: GatewayStore,
) -> None:
    net = Net("forged")
    genuine_raw = net.seal(wire.Report(wire.Status.MEDICAL, time=1_790_000_000, people=1))
    forged_raw = genuine_raw[:-64] + bytes(64)  # same header and body, bad signature
    forged = from_wire(forged_raw, received_at=T0, verified=Verified.UNKNOWN_SENDER)
    genuine = from_wire(genuine_raw, received_at=T0 + 1, verified=Verified.UNKNOWN_SENDER)
    assert forged.id == genuine.id and forged.copy_id != genuine.copy_id

    # The forgery arrives first; the gateway does not know the sender and cannot tell.
    assert store.add(forged, UPLINKS) is True
    assert store.add(genuine, UPLINKS) is True
    assert [p.raw for p in store.copies(genuine.id)] == [forged_raw, genuine_raw]
    for uplink in UPLINKS:  # both go to the coordinator, which keeps the valid one
        assert set(ids(store.due(uplink, T0 + 5, 10))) == {forged.copy_id, genuine.copy_id}


def test_readding_a_now_verified_copy_upgrades_it_and_never_downgrades(
    store: GatewayStore,
) -> None:
    p = packet(1, verified=Verified.UNKNOWN_SENDER)
    store.add(p, UPLINKS)
    store.mark_done("https", [p.copy_id], T0)
    again = replace(p, verified=Verified.VERIFIED)
    assert store.add(again, UPLINKS) is False
    stored = store.get(p.copy_id)
    assert stored is not None and stored.verified is Verified.VERIFIED
    assert store.add(p, UPLINKS) is False  # heard again, unverified: stays verified
    stored = store.get(p.copy_id)
    assert stored is not None and stored.verified is Verified.VERIFIED
    # Hearing it again never re-sends it where it is done.
    assert store.deliveries(p.copy_id)["https"].state == "done"


def test_stored_packet_round_trips_every_field(store: GatewayStore) -> None:
    p = replace(
        packet(7, kind="attested", priority=ELEVATED),
        radio_node=0xDEADBEEF,
        rx_snr=-7.25,
        rx_rssi=-113,
        hops=2,
        verified=Verified.NOT_CHECKED,
    )
    store.add(p, UPLINKS)
    assert store.get(p.copy_id) == p
    assert store.get(b"\0" * 16) is None


def test_copy_id_is_a_hash_of_the_exact_bytes() -> None:
    p = packet(1)
    assert p.copy_id == hashlib.sha256(p.raw).digest()[:16]


def test_add_many_is_one_transaction_with_duplicates(store: GatewayStore) -> None:
    batch = [packet(i) for i in range(5)]
    result = store.add_many([*batch, batch[0]], UPLINKS)
    assert result.new == ids(batch)
    assert result.duplicates == [batch[0].copy_id]
    assert result.shed == []
    assert store.add_many(batch, UPLINKS).duplicates == ids(batch)


def test_bad_packets_are_refused_with_a_clear_error(store: GatewayStore) -> None:
    with pytest.raises(ValueError, match="priority"):
        store.add(replace(packet(1), priority=3), UPLINKS)
    with pytest.raises(ValueError, match="kind"):
        store.add(replace(packet(1), kind="junk"), UPLINKS)


# -- order -----------------------------------------------------------------------


def test_due_sends_announcements_then_life_safety_first_then_oldest(
    store: GatewayStore,
) -> None:
    routine_old = packet(1, priority=ROUTINE)
    routine_ann = packet(2, priority=ROUTINE, kind="announcement", sender="bob")
    elevated = packet(3, priority=ELEVATED)
    life_report = packet(4, priority=LIFE, sender="bob")
    life_ann = packet(5, priority=LIFE, kind="announcement", sender="bob")  # after its report
    life_attested = packet(6, priority=LIFE, kind="attested", sender="gateway")
    routine_new = packet(7, priority=ROUTINE)
    for p in (routine_old, routine_ann, elevated, life_report, life_ann, life_attested):
        store.add(p, UPLINKS)
    store.add(routine_new, UPLINKS)

    expected = [
        life_ann,  # every key travels before the reports it opens: a routine
        routine_ann,  # announcement left behind would hold an SOS pending at the coordinator
        life_report,
        life_attested,
        elevated,
        routine_old,
        routine_new,
    ]
    assert ids(store.due("https", T0 + 100, 100)) == ids(expected)
    assert ids(store.due("https", T0 + 100, 3)) == ids(expected[:3])


def test_due_stops_before_the_byte_budget_but_always_gives_one(store: GatewayStore) -> None:
    small = [packet(i, size=100) for i in range(3)]
    for p in small:
        store.add(p, UPLINKS)
    assert ids(store.due("sat", T0 + 10, 10, max_total_bytes=250)) == ids(small[:2])
    big = packet(9, priority=LIFE, size=219)
    store.add(big, UPLINKS)
    assert ids(store.due("sat", T0 + 10, 10, max_total_bytes=140)) == [big.copy_id]
    assert store.due("sat", T0 + 10, 0) == []


# -- retries ---------------------------------------------------------------------


def test_backoff_rows_and_next_due_at(store: GatewayStore) -> None:
    a, b = packet(1), packet(2)
    assert store.next_due_at("https") is None
    store.add(a, UPLINKS)
    store.add(b, UPLINKS)
    assert store.next_due_at("https") == 0.0  # new packets are due at once

    now = T0 + 100
    store.mark_failed("https", [a.copy_id, b.copy_id], "timed out", now + 30, now)
    row = store.deliveries(a.copy_id)["https"]
    assert (row.state, row.attempts, row.next_attempt_at, row.last_error, row.updated_at) == (
        "pending",
        1,
        now + 30,
        "timed out",
        now,
    )
    assert store.deliveries(a.copy_id)["sat"].attempts == 0  # each uplink its own state
    assert store.due("https", now + 29, 10) == []
    assert store.next_due_at("https") == now + 30
    assert ids(store.due("https", now + 30, 10)) == ids([a, b])

    store.mark_failed("https", [a.copy_id], "503", now + 90, now + 30)
    assert store.deliveries(a.copy_id)["https"].attempts == 2
    store.mark_done("https", [b.copy_id], now + 31)
    assert store.next_due_at("https") == now + 90
    store.mark_done("https", [a.copy_id], now + 90)
    assert store.next_due_at("https") is None
    assert store.deliveries(a.copy_id)["https"].last_error is None
    assert store.due("https", now + 1000, 10) == []
    assert store.next_due_at("sat") == 0.0


def test_a_clock_that_jumped_back_does_not_strand_retries(store: GatewayStore) -> None:
    p = packet(1)
    store.add(p, UPLINKS)
    store.mark_failed("https", [p.copy_id], "down", T0 + 600, T0)
    # Reboot without a real-time clock: the clock now reads an hour earlier.
    assert ids(store.due("https", T0 - 3600, 10)) == [p.copy_id]


def test_rejected_copies_stop_and_are_logged(
    store: GatewayStore, caplog: pytest.LogCaptureFixture
) -> None:
    p, q = packet(1), packet(2)
    store.add(p, UPLINKS)
    store.add(q, UPLINKS)
    with caplog.at_level(logging.ERROR, logger="signalfire.gateway.store"):
        store.mark_rejected("https", [p.copy_id], "bad signature", T0 + 5)
    assert "bad signature" in caplog.text and "https" in caplog.text
    row = store.deliveries(p.copy_id)["https"]
    assert (row.state, row.last_error) == ("rejected", "bad signature")
    assert ids(store.due("https", T0 + 10, 10)) == [q.copy_id]
    assert store.deliveries(p.copy_id)["sat"].state == "pending"
    store.mark_done("https", [q.copy_id], T0 + 6)
    store.mark_rejected("https", [q.copy_id], "late", T0 + 7)  # done stays done
    assert store.deliveries(q.copy_id)["https"].state == "done"


# -- superseding -----------------------------------------------------------------


def test_supersede_keeps_life_safety_announcements_and_other_uplinks(
    store: GatewayStore,
) -> None:
    ann = packet(0, kind="announcement")
    r1 = packet(1, priority=ROUTINE)
    r2 = packet(2, priority=ELEVATED)
    r3 = packet(3, priority=LIFE)
    r4 = packet(4, priority=ROUTINE)  # the sender's newest
    other = packet(1, sender="bob")  # another sender, alone
    for p in (ann, r1, r2, r3, r4, other):
        store.add(p, UPLINKS)

    assert store.supersede_older("sat", T0 + 10) == 2
    assert store.deliveries(r1.copy_id)["sat"].state == "superseded"
    assert store.deliveries(r2.copy_id)["sat"].state == "superseded"
    assert ids(store.due("sat", T0 + 10, 10)) == ids([ann, r3, other, r4])
    assert len(store.due("https", T0 + 10, 10)) == 6  # only the costly link was touched
    assert store.get(r1.copy_id) is not None  # and the packets stay in the store
    assert store.supersede_older("sat", T0 + 11) == 0


def test_a_delivered_newer_report_supersedes_too(store: GatewayStore) -> None:
    r5, r6 = packet(5), packet(6)
    store.add(r6, UPLINKS)
    store.mark_done("sat", [r6.copy_id], T0)
    store.add(r5, UPLINKS)  # arrives late, by a longer path
    assert store.supersede_older("sat", T0 + 1) == 1


def test_unverified_or_attested_reports_supersede_nothing(store: GatewayStore) -> None:
    old = packet(1)
    forged_newer = packet(0xFFFFFFFF, verified=Verified.UNKNOWN_SENDER)
    store.add(old, UPLINKS)
    store.add(forged_newer, UPLINKS)
    assert store.supersede_older("sat", T0) == 0  # a forger cannot silence alice

    # Attested reports share the gateway's key id across every stock radio it wraps.
    stock_a = packet(10, kind="attested", sender="gw")
    stock_b = packet(11, kind="attested", sender="gw")
    store.add(stock_a, UPLINKS)
    store.add(stock_b, UPLINKS)
    assert store.supersede_older("sat", T0) == 0


def test_a_replayed_old_report_does_not_supersede_the_newer(store: GatewayStore) -> None:
    newer = packet(8, received_at=T0)
    replayed = packet(3, received_at=T0 + 500)  # heard later, but older by its number
    store.add(newer, UPLINKS)
    store.add(replayed, UPLINKS)
    assert store.supersede_older("sat", T0 + 600) == 1
    assert store.deliveries(replayed.copy_id)["sat"].state == "superseded"
    assert store.deliveries(newer.copy_id)["sat"].state == "pending"


def test_later_passes_look_at_new_senders_only_and_miss_nothing(tmp_path: Path) -> None:
    path = tmp_path / "gateway.db"
    with GatewayStore(path, min_free_bytes=0) as store:
        a1, a2, a5 = packet(1), packet(2), packet(5)
        store.add(a1, UPLINKS)
        store.add(a2, UPLINKS)
        assert store.supersede_older("sat", T0) == 1  # the first pass looks at everyone
        assert store.supersede_older("sat", T0) == 0  # nothing new: no work at all
        store.add(a5, UPLINKS)
        assert store.supersede_older("sat", T0) == 1  # a2, found through alice alone

        b1 = packet(1, sender="bob")
        b2 = packet(2, sender="bob", verified=Verified.UNKNOWN_SENDER)
        store.add(b1, UPLINKS)
        store.add(b2, UPLINKS)
        assert store.supersede_older("sat", T0) == 0  # b2 is not verified yet
        store.add(replace(b2, verified=Verified.VERIFIED), UPLINKS)
        assert store.supersede_older("sat", T0) == 1  # now it is: b1 goes

        with GatewayStore(path, min_free_bytes=0) as other:  # another process, say
            other.add(packet(7), UPLINKS)
        assert store.supersede_older("sat", T0) == 1  # a5: its write was noticed
        assert store.deliveries(a5.copy_id)["sat"].state == "superseded"

        store.ensure_uplinks([*UPLINKS, "iridium"], now=T0)
        assert store.supersede_older("iridium", T0) == 4  # a1, a2, a5, b1
        assert store.supersede_older("https", T0) == 4  # any uplink, when asked


# -- uplinks ---------------------------------------------------------------------


def test_ensure_uplinks_adds_rows_for_new_uplinks_and_orphans_removed_ones(
    store: GatewayStore,
) -> None:
    packets = [packet(i) for i in range(3)]
    for p in packets:
        store.add(p, ["https"])
    store.mark_done("https", [packets[0].copy_id], T0)

    assert store.ensure_uplinks(["https", "usb"], now=T0 + 5) == 3
    assert ids(store.due("usb", T0 + 5, 10)) == ids(packets)  # everything, own state
    assert store.deliveries(packets[0].copy_id)["https"].state == "done"
    assert store.ensure_uplinks(["https", "usb"], now=T0 + 6) == 0  # idempotent

    assert store.ensure_uplinks(["usb"], now=T0 + 7) == 0
    uplinks = store.stats(T0 + 7)["uplinks"]
    assert uplinks["https"]["orphaned"] and not uplinks["https"]["configured"]
    assert uplinks["https"]["pending_total"] == 2 and uplinks["https"]["done"] == 1
    assert not uplinks["usb"]["orphaned"]

    store.add(packet(9), ["usb"])
    assert "https" not in store.deliveries(packet(9).copy_id)  # removed: no new rows
    store.add(packet(10), ["https", "usb"])  # named again: configured again
    assert store.stats(T0)["uplinks"]["https"]["configured"]


# -- stats, status, announcements ------------------------------------------------


def test_stats_numbers(store: GatewayStore) -> None:
    now = T0 + 10 * 3600
    recent = [packet(i, received_at=now - 60 * i, priority=i % 3) for i in range(1, 4)]
    older = packet(20, received_at=now - 5.5 * 3600, kind="attested", priority=LIFE)
    stale = packet(30, received_at=now - 30 * 3600)  # beyond 24 h
    ann = packet(40, kind="announcement", received_at=now - 100)
    # A second copy of recent[0]: same id, other bytes.
    forged = packet(1, received_at=now - 60, priority=ELEVATED, signature=b"x" * 64)
    for p in (*recent, older, stale, ann, forged):
        store.add(p, UPLINKS)
    store.mark_done("https", [recent[0].copy_id, older.copy_id], now)
    store.mark_rejected("https", [forged.copy_id], "bad signature", now)
    store.mark_done("sat", [stale.copy_id], now)
    superseded = store.supersede_older("sat", now)

    stats = store.stats(now)
    assert stats["packets"]["total"] == 7
    assert stats["packets"]["by_kind"]["report"] == {"routine": 2, "elevated": 2, "life-safety": 1}
    assert stats["packets"]["by_kind"]["attested"]["life-safety"] == 1
    assert stats["packets"]["by_kind"]["announcement"]["routine"] == 1

    https = stats["uplinks"]["https"]
    assert https["done"] == 2 and https["rejected"] == 1 and https["superseded"] == 0
    assert https["pending"] == {"routine": 3, "elevated": 0, "life-safety": 1}
    assert https["pending_total"] == 4
    assert https["oldest_pending_received_at"] == stale.received_at
    sat = stats["uplinks"]["sat"]
    # Older than the delivered seq 30: both copies of seq 1 and seq 3 (life-safety seq 2 stays).
    assert sat["done"] == 1 and sat["superseded"] == superseded == 3
    assert sat["oldest_pending_received_at"] == older.received_at

    per_hour = stats["reports_per_hour"]
    assert len(per_hour) == 24
    assert per_hour[-1] == 3  # recent: 3 ids (the forged copy is not a 4th report)
    assert per_hour[-6] == 1  # 5.5 h ago
    assert sum(per_hour) == 4  # the announcement and the 30 h old report are not counted
    assert stats["shed"] == {"routine": 0, "elevated": 0} and stats["full"] == 0
    assert stats["schema_version"] == SCHEMA_VERSION
    assert stats["db_bytes"] > 0 and stats["free_bytes"] > 0


def test_status_round_trips_json(store: GatewayStore) -> None:
    store.set_status("radio", '{"state": "connected", "at": 1.5}')
    store.set_status("uplink:https", '{"last_success": null}')
    store.set_status("radio", '{"state": "lost"}')
    assert store.status() == {"radio": {"state": "lost"}, "uplink:https": {"last_success": None}}
    with pytest.raises(ValueError, match="Expecting"):
        store.set_status("radio", "{not json")


def test_undelivered_is_what_no_uplink_delivered_in_delivery_order(store: GatewayStore) -> None:
    routine, life, done, rejected = packet(1), packet(2, priority=LIFE), packet(3), packet(4)
    superseded_here = packet(5)
    for p in (routine, life, done, rejected, superseded_here, packet(6)):
        store.add(p, UPLINKS)
    store.mark_done("sat", [done.copy_id], T0)
    store.mark_rejected("https", [rejected.copy_id], "bad", T0)
    store.mark_rejected("sat", [rejected.copy_id], "bad", T0)
    assert store.supersede_older("sat", T0) > 0  # 5 is still pending on https
    assert ids(store.undelivered()) == ids([life, routine, superseded_here, packet(6)])
    assert ids(store.undelivered(limit=1)) == [life.copy_id]


def test_announcements_rebuild_a_keyring(store: GatewayStore) -> None:
    net = Net("ring")
    store.add(from_wire(net.announcement), UPLINKS)
    report = net.seal(wire.Report(wire.Status.SAFE, time=1_790_000_000))
    store.add(from_wire(report), UPLINKS)
    assert store.announcements() == [net.announcement]
    ring = wire.Keyring(net.public)
    for raw in store.announcements():
        ring.add(raw)
    sealed = wire.parse(report)
    assert isinstance(sealed, wire.SealedReport)
    ring.verify(sealed)


# -- shedding --------------------------------------------------------------------


def test_low_disk_sheds_routine_before_elevated_and_never_life_safety(tmp_path: Path) -> None:
    st = os.statvfs(tmp_path)
    free = st.f_bavail * st.f_frsize
    # Routine's floor just above what is free, elevated's (half of it) well below.
    path = tmp_path / "gateway.db"
    with GatewayStore(path, min_free_bytes=int(free * 1.5)) as s:
        with pytest.raises(StoreShedding, match="routine packet was NOT stored") as shed:
            s.add(packet(1, priority=ROUTINE), UPLINKS)
        assert shed.value.priority == ROUTINE and shed.value.free_bytes < shed.value.floor_bytes
        assert s.add(packet(2, priority=ELEVATED), UPLINKS) is True
        assert s.add(packet(3, priority=LIFE), UPLINKS) is True
        assert s.add(packet(2, priority=ELEVATED), UPLINKS) is False  # duplicates: no refusal
        result = s.add_many([packet(4), packet(5, priority=LIFE)], UPLINKS)
        assert len(result.new) == 1 and [e.priority for e in result.shed] == [ROUTINE]
    with GatewayStore(path, min_free_bytes=10**18) as s:
        with pytest.raises(StoreShedding, match="elevated"):
            s.add(packet(6, priority=ELEVATED), UPLINKS)
        assert s.add(packet(7, priority=LIFE), UPLINKS) is True
    with GatewayStore(path, min_free_bytes=0) as s:  # the counts survive a restart
        assert s.stats(T0)["shed"] == {"routine": 2, "elevated": 1}


# -- retention -------------------------------------------------------------------


def test_purge_deletes_only_what_every_uplink_finished(store: GatewayStore) -> None:
    cutoff = T0 + 1000
    both = packet(1)
    one = packet(2)
    young = packet(3, received_at=cutoff + 1)
    sup = packet(4)  # superseded on sat, done on https
    newest = packet(5)
    ann = packet(6, kind="announcement", sender="alice")
    lone_ann = packet(7, kind="announcement", sender="carol")
    everything = (both, one, young, sup, newest, ann, lone_ann)
    for p in everything:
        store.add(p, UPLINKS)
    store.mark_done("https", ids([both, one, young, sup, newest, ann, lone_ann]), T0)
    store.mark_done("sat", ids([both, young, ann, lone_ann]), T0)
    assert store.supersede_older("sat", T0) == 2  # one and sup: older than newest
    store.mark_done("sat", ids([newest]), T0)

    with pytest.raises(ValueError, match="at least one uplink"):
        store.purge_delivered(cutoff, [])
    # Alice's announcement stays while her young report does; carol's goes.
    deleted = store.purge_delivered(cutoff, ["https", "sat"])
    left = {p.copy_id for p in everything if store.get(p.copy_id) is not None}
    assert left == {young.copy_id, ann.copy_id}
    assert deleted == 5  # both, one (superseded on sat), sup, newest, carol's announcement
    assert store.deliveries(both.copy_id) == {}  # rows went with the packet
    assert store.purge_delivered(cutoff + 10, UPLINKS) == 2  # young, then alice's announcement
    assert store.stats(T0)["packets"]["total"] == 0


def test_purge_keeps_pending_packets(store: GatewayStore) -> None:
    p = packet(1)
    store.add(p, UPLINKS)
    store.mark_done("https", [p.copy_id], T0)
    assert store.purge_delivered(T0 + 10_000, UPLINKS) == 0
    assert store.purge_delivered(T0 + 10_000, ["https"]) == 1


def test_purged_packets_leave_no_bytes_in_the_store_files(tmp_path: Path) -> None:
    """A seized gateway: what was delivered and purged cannot be carved out of its files."""
    path = tmp_path / "gateway.db"
    gone, kept = packet(1, sender="mariam-at-the-mill"), packet(2, sender="still-pending")
    with GatewayStore(path, min_free_bytes=0) as s:
        s.add_many([gone, kept], ["https"])
        s.mark_done("https", [gone.copy_id], T0)
        assert s.purge_delivered(T0 + 10_000, ["https"]) == 1
        files = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
        assert b"mariam-at-the-mill" not in files  # the WAL was emptied too, while open
        assert b"still-pending" in files
    files = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert b"mariam-at-the-mill" not in files and b"still-pending" in files


def test_purge_works_through_many_batches(store: GatewayStore) -> None:
    packets = [packet(i) for i in range(1300)]
    store.add_many(packets, ["https"])
    finished = packets[::2]  # interleaved with packets still pending: skipped, not stuck
    store.mark_done("https", ids(finished), T0)
    assert store.purge_delivered(T0 + 10_000, ["https"]) == len(finished) == 650
    assert store.stats(T0)["packets"]["total"] == 650
    assert all(store.get(p.copy_id) is not None for p in packets[1::2])


# -- schema ----------------------------------------------------------------------


def test_a_newer_schema_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "gateway.db"
    with GatewayStore(path, min_free_bytes=0) as s:
        s.add(packet(1), UPLINKS)
    with sqlite3.connect(path) as raw:
        raw.execute("INSERT INTO schema_version VALUES (99, 0)")
    raw.close()
    before = hashlib.sha256(path.read_bytes()).digest()
    with pytest.raises(SchemaTooNew) as err:
        GatewayStore(path, min_free_bytes=0)
    message = str(err.value)
    assert "version 99" in message and f"up to {SCHEMA_VERSION}" in message
    assert "Upgrade signalfire" in message
    assert hashlib.sha256(path.read_bytes()).digest() == before


def test_a_forward_migration_runs_once_on_an_existing_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "gateway.db"
    with GatewayStore(path, min_free_bytes=0) as s:
        s.add(packet(1), UPLINKS)
    v2 = ("ALTER TABLE status ADD COLUMN note TEXT",)  # fails if it ever runs twice
    monkeypatch.setattr(store_schema, "MIGRATIONS", (*store_schema.MIGRATIONS, v2))
    monkeypatch.setattr(store_schema, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    for _ in range(2):
        with GatewayStore(path, min_free_bytes=0) as s:
            assert s.get(packet(1).copy_id) is not None
    with sqlite3.connect(path) as raw:
        versions = [v for (v,) in raw.execute("SELECT version FROM schema_version ORDER BY 1")]
        columns = [c[1] for c in raw.execute("PRAGMA table_info(status)")]
    raw.close()
    assert versions == [SCHEMA_VERSION, SCHEMA_VERSION + 1]
    assert "note" in columns


def test_other_files_are_refused_with_a_clear_error(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as raw:
        raw.execute("CREATE TABLE notes (x)")
    raw.close()
    with pytest.raises(StoreError, match="not a signalfire gateway store"):
        GatewayStore(other)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="cannot open the gateway store"):
        GatewayStore(junk)
    with pytest.raises(StoreError, match="does not exist"):
        GatewayStore(tmp_path / "missing" / "gateway.db")


def test_reopening_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "gateway.db"
    with GatewayStore(path, min_free_bytes=0) as s:
        s.add(packet(1), UPLINKS)
        s.mark_failed("https", [packet(1).copy_id], "down", T0 + 60, T0)
    with GatewayStore(path, min_free_bytes=0) as s:
        assert s.deliveries(packet(1).copy_id)["https"].attempts == 1
        assert s.next_due_at("https") == T0 + 60
        assert s.next_due_at("sat") == 0.0


# -- threads ---------------------------------------------------------------------


def test_two_radio_threads_add_while_an_uplink_thread_marks_done(store: GatewayStore) -> None:
    per_thread = 150
    errors: list[BaseException] = []
    adding = threading.Barrier(3)
    done: set[bytes] = set()

    def add(sender: str) -> None:
        try:
            adding.wait()
            for i in range(per_thread):
                store.add(packet(i, sender=sender, priority=i % 3), ["https"])
        except BaseException as exc:
            errors.append(exc)

    def drain(stop: threading.Event) -> None:
        try:
            adding.wait()
            while True:
                finished = stop.is_set()  # read before the last look: nothing added after
                batch = store.due("https", T0 + 10_000, 20)
                store.mark_done("https", ids(batch), T0)
                done.update(ids(batch))
                if finished and not batch:
                    return
        except BaseException as exc:
            errors.append(exc)

    stop = threading.Event()
    adders = [threading.Thread(target=add, args=(name,)) for name in ("r1", "r2")]
    drainer = threading.Thread(target=drain, args=(stop,))
    for t in (*adders, drainer):
        t.start()
    for t in adders:
        t.join(30)
    stop.set()
    drainer.join(30)
    assert not errors, errors
    assert len(done) == 2 * per_thread
    stats = store.stats(T0)
    assert stats["packets"]["total"] == 2 * per_thread
    assert stats["uplinks"]["https"]["done"] == 2 * per_thread
    assert stats["uplinks"]["https"]["pending_total"] == 0
    assert store.next_due_at("https") is None

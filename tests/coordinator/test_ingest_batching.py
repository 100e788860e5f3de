"""The set-based ingest: a batch costs a fixed number of statements, whatever it holds.

What a batch writes is decided report by report but written a few statements per
batch (one query for the ids already stored, one INSERT for the new reports, one
for their receipts, one query for reused sequence numbers). These tests pin what
that must not change: the answer, the receipts, the flags, under duplicates within
one batch, a race with another ingest process, and batches larger than one IN list.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa

from signalfire import wire
from signalfire.coordinator import store as store_module
from signalfire.coordinator.store import CoordinatorStore, StoreTx, flag_labels

from .kit import NOW, World, pid


@contextmanager
def _statements(store: CoordinatorStore) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement.split(None, 1)[0].upper())

    sa.event.listen(store.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", count)


def test_statements_per_batch_do_not_grow_with_its_reports(
    world: World, store: CoordinatorStore
) -> None:
    ing = world.ingestor(store)
    senders = [world.sender() for _ in range(5)]
    ing.ingest_batch(world.batch([s.announcement for s in senders]), "https", NOW)
    counts = []
    for size in (5, 40):
        packets = [senders[n % 5].report() for n in range(size)]
        with _statements(store) as seen:
            result = ing.ingest_batch(world.batch(packets), "https", NOW)
        assert len(result.stored) == size
        counts.append(len(seen))
    assert counts[0] == counts[1], counts
    assert counts[0] <= 14, counts  # BEGINs, gateway, memo, pending probe, 4 for the reports


def test_same_report_twice_in_one_batch_and_again_later(
    world: World, store: CoordinatorStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    ing = world.ingestor(store)
    alice = world.sender()
    first, second = alice.report(), alice.report(wire.Status.SAFE)
    result = ing.ingest_batch(world.batch([alice.announcement, first, second, first]), "https", NOW)
    assert result.stored == [pid(alice.announcement), pid(first), pid(second)]
    assert result.duplicates == [pid(first)]
    opened: list[bytes] = []
    real_open = ing.keyring.open

    def counting_open(packet: Any) -> wire.Opened:
        opened.append(packet.raw)
        return real_open(packet)

    monkeypatch.setattr(ing.keyring, "open", counting_open)
    again = ing.ingest_batch(world.batch([second, first], "gw2"), "mqtt", NOW)
    assert again.duplicates == [pid(second), pid(first)] and again.stored == []
    assert opened == []  # the same bytes as stored reports: no signature checked again
    with store.transaction(write=False) as tx:
        assert [(r.uplink) for r in tx.receipts(pid(first))] == ["https", "mqtt"]
        assert tx.counts()["reports"] == 2


def test_sequence_reuse_within_one_batch_flags_both(world: World, store: CoordinatorStore) -> None:
    ing = world.ingestor(store)
    alice = world.sender()
    one = alice.report(wire.Status.SOS, seq=7)
    other = alice.report(wire.Status.SAFE, seq=7)  # a restored backup sending seq 7 again
    fine = alice.report(seq=8)
    result = ing.ingest_batch(world.batch([alice.announcement, one, other, fine]), "https", NOW)
    assert result.stored[1:] == [pid(one), pid(other), pid(fine)]
    with store.transaction(write=False) as tx:
        flags = {p: flag_labels(tx.report(pid(p))["flags"]) for p in (one, other, fine)}  # type: ignore[index]
    assert flags == {one: ["seq-reused"], other: ["seq-reused"], fine: []}


def test_report_stored_by_another_process_meanwhile_is_a_duplicate(
    world: World, store: CoordinatorStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ids-already-stored query can be stale: the INSERT's RETURNING decides."""
    ing = world.ingestor(store)
    alice = world.sender()
    packet = alice.report()
    ing.ingest_batch(world.batch([alice.announcement, packet]), "https", NOW)
    monkeypatch.setattr(StoreTx, "reports_raw", lambda self, ids: {})
    result = ing.ingest_batch(world.batch([packet], "gw2"), "https", NOW)
    assert result.stored == [] and result.duplicates == [pid(packet)]
    with store.transaction(write=False) as tx:
        assert len(tx.receipts(pid(packet))) == 2
        assert tx.report(pid(packet))["flags"] == 0  # type: ignore[index]


def test_batch_larger_than_one_in_list(
    world: World, store: CoordinatorStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "_IN_CHUNK", 7)
    ing = world.ingestor(store)
    senders = [world.sender() for _ in range(3)]
    backup = senders[0].chain  # restored later: its seq 0 is sent twice
    packets = [senders[n % 3].report() for n in range(30)]
    senders[0].chain = backup
    reused = senders[0].seal(wire.Report(status=wire.Status.SAFE, time=int(NOW)), seq=0)
    result = ing.ingest_batch(
        world.batch([s.announcement for s in senders] + packets + [reused]), "https", NOW
    )
    assert len(result.stored) == 3 + 31
    again = ing.ingest_batch(world.batch(packets, "gw2"), "https", NOW)
    assert again.duplicates == [pid(p) for p in packets]
    with store.transaction(write=False) as tx:
        assert tx.counts()["receipts"] == 31 + 30
        flagged = [p for p in [*packets, reused] if tx.report(pid(p))["flags"]]  # type: ignore[index]
    assert flagged == [packets[0], reused]


def test_unknown_sender_beside_known_ones_then_released(
    world: World, store: CoordinatorStore
) -> None:
    ing = world.ingestor(store)
    alice, bob = world.sender(), world.sender()
    ing.ingest_batch(world.batch([alice.announcement]), "https", NOW)
    a, b = alice.report(), bob.report()
    result = ing.ingest_batch(world.batch([a, b]), "https", NOW)
    assert (result.stored, result.pending) == ([pid(a)], [pid(b)])
    later = ing.ingest_batch(world.batch([bob.announcement, b], "gw2"), "https", NOW + 5)
    assert later.released == [pid(b)]
    assert later.duplicates == [pid(b)]
    with store.transaction(write=False) as tx:
        assert tx.counts()["pending"] == 0
        assert len(tx.receipts(pid(b))) == 2

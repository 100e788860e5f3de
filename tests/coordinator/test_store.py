"""The coordinator store: schema, SQLite durability settings, idempotent writes."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from signalfire import wire
from signalfire.coordinator.store import (
    SCHEMA_VERSION,
    CoordinatorStore,
    Receipt,
    ReportFlag,
    StoreError,
    flag_labels,
    normalize_url,
    report_values,
    safe_url,
    schema_version,
)

from .kit import NOW, World


def _opened(world: World) -> wire.Opened:
    sender = world.sender()
    ring = world.keyring()
    ring.add(sender.announcement)
    return ring.open(sender.report(text="under the bridge"))


sqlite_only = pytest.mark.sqlite_only  # SQLite settings: conftest.py runs these on SQLite alone


@sqlite_only
def test_sqlite_runs_wal_with_full_sync(store: CoordinatorStore) -> None:
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL


def test_schema_version_is_recorded_once(world: World) -> None:
    world.store().close()
    reopened = world.store()  # opening again must not add a second row
    with reopened.transaction(write=False) as tx:
        rows = tx.conn.execute(sa.select(schema_version.c.version)).scalars().all()
    reopened.close()
    assert rows == [SCHEMA_VERSION]


def test_newer_schema_is_refused(world: World) -> None:
    store = world.store()
    with store.transaction() as tx:
        tx.conn.execute(sa.insert(schema_version).values(version=SCHEMA_VERSION + 1, applied_at=0))
    store.close()
    with pytest.raises(StoreError, match="newer"):
        world.store()


def test_report_and_receipt_inserts_are_idempotent(world: World, store: CoordinatorStore) -> None:
    opened = _opened(world)
    values = report_values(opened, NOW, 0)
    rid = opened.id.hex()
    receipts = [
        Receipt(rid, gw, uplink, "b1")
        for gw in ("aa" * 8, "bb" * 8)
        for uplink in ("https", "mqtt")
    ]
    for _ in range(2):  # everything twice: the second round changes nothing
        with store.transaction() as tx:
            tx.add_report(values)
            for r in receipts:
                tx.add_receipt(r, NOW)
    with store.transaction(write=False) as tx:
        assert tx.counts()["reports"] == 1
        assert len(tx.receipts(rid)) == 4
        row = tx.report(rid)
    assert row is not None
    assert row["status"] == "sos" and row["text"] == "under the bridge" and row["people"] == 3
    assert row["needs"] == int(wire.Need.WATER | wire.Need.MEDICINE)
    assert row["lat"] == pytest.approx(40.1776, abs=1e-4)
    assert row["sender_key"] == opened.identity_public.hex()


def test_insert_reports_whether_it_was_new(world: World, store: CoordinatorStore) -> None:
    values = report_values(_opened(world), NOW, 0)
    with store.transaction() as tx:
        assert tx.add_report(values) is True
        assert tx.add_report(values) is False


def test_flags_are_or_ed_in(world: World, store: CoordinatorStore) -> None:
    opened = _opened(world)
    with store.transaction() as tx:
        tx.add_report(report_values(opened, NOW, int(ReportFlag.FUTURE_TIME)))
        tx.add_flags([opened.id.hex()], ReportFlag.SEQ_REUSED)
        row = tx.report(opened.id.hex())
    assert row is not None
    assert flag_labels(row["flags"]) == ["future-time", "seq-reused"]


def test_rejections_count_all_and_keep_few_samples(store: CoordinatorStore) -> None:
    with store.transaction() as tx:
        for n in range(12):
            tx.count_rejection("aa" * 8, "bad-signature", f"{n:032x}", bytes([n]), "forged", NOW, 5)
        tx.count_rejection("aa" * 8, "truncated", "0" * 32, b"\x01", "short", NOW, 5)
    with store.transaction(write=False) as tx:
        assert tx.rejection_counts() == {
            ("aa" * 8, "bad-signature"): 12,
            ("aa" * 8, "truncated"): 1,
        }
        samples = tx.rejection_samples("aa" * 8, "bad-signature")
    assert [s["raw"] for s in samples] == [bytes([n]) for n in range(7, 12)]  # the newest five


def test_rejections_of_a_batch_count_in_one_call(store: CoordinatorStore) -> None:
    gw = "bb" * 8
    with store.transaction() as tx:
        tx.count_rejection(gw, "truncated", "f" * 32, b"old", "short", NOW, 3)
    junk = [("truncated", f"{n:032x}", bytes([n]), "short") for n in range(40)]
    junk += [("bad-signature", "e" * 32, b"forged", "forged")]
    with store.transaction() as tx:
        tx.count_rejections(gw, junk, NOW + 1, 3)
    with store.transaction(write=False) as tx:
        assert tx.rejection_counts() == {(gw, "truncated"): 41, (gw, "bad-signature"): 1}
        truncated = tx.rejection_samples(gw, "truncated")
        forged = tx.rejection_samples(gw, "bad-signature")
    assert [s["raw"] for s in truncated] == [bytes([n]) for n in range(37, 40)]
    assert [s["raw"] for s in forged] == [b"forged"]


def test_gateways_enrol_once_and_revoke(store: CoordinatorStore) -> None:
    public = wire.ed25519_public_bytes(Ed25519PrivateKey.generate())
    row, new = store.add_gateway(public, "hilltop", NOW, actor="test")
    again, new_again = store.add_gateway(public, "renamed", NOW + 1, actor="test")
    assert new and not new_again and again.name == "hilltop"
    assert store.revoke_gateway(row.key_id, NOW + 2, actor="test")
    assert not store.revoke_gateway(row.key_id, NOW + 3, actor="test")
    revoked = store.gateway(row.key_id)
    assert revoked is not None and revoked.revoked_at == NOW + 2
    # a revoked key stays revoked when it is added again
    assert store.add_gateway(public, "hilltop", NOW + 4, actor="test")[0].revoked_at == NOW + 2
    with store.transaction(write=False) as tx:
        actions = [e["action"] for e in tx.audit_entries()]
    assert actions == ["gateway.add", "gateway.revoke"]


def test_audit_log_is_append_only(store: CoordinatorStore) -> None:
    store.audit("tester", "export.csv", {"rows": 3}, NOW)
    for statement in ("UPDATE audit_log SET actor = 'someone else'", "DELETE FROM audit_log"):
        with (
            pytest.raises(sa.exc.DatabaseError, match="append-only"),
            store.transaction() as tx,
        ):
            tx.conn.exec_driver_sql(statement)
    with store.transaction(write=False) as tx:
        assert [(e["actor"], e["detail"]) for e in tx.audit_entries()] == [("tester", {"rows": 3})]


def test_database_urls() -> None:
    assert normalize_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("sqlite:///x.db").get_backend_name() == "sqlite"
    url = normalize_url("postgresql+psycopg://user:s3cret@host/db")
    assert "s3cret" not in safe_url(url)
    for bad in ("mysql://u@h/db", "postgresql+psycopg2://u@h/db", "not a url"):
        with pytest.raises(StoreError):
            normalize_url(bad)


@sqlite_only
def test_missing_directory_names_the_fix(tmp_path: object) -> None:
    with pytest.raises(StoreError, match="mkdir -p"):
        CoordinatorStore(f"sqlite:///{tmp_path}/no/such/dir/c.db")


@pytest.mark.sqlite_only
def test_a_new_sqlite_database_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    db = tmp_path / "coordinator.db"
    store = CoordinatorStore(f"sqlite:///{db}")
    store.close()
    for f in tmp_path.iterdir():
        assert f.stat().st_mode & 0o777 == 0o600, f

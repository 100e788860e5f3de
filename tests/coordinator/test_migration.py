"""Schema migrations: a database written by an older signalfire opens and is brought up to date.

``data/coordinator-schema1.db`` was written by signalfire at schema 1 (commit
a9a0772) through its real ingest path: two reports of one sender and a
stock-radio message attested by gateway gw1 for node 0xa1b2c3d4.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

from signalfire import wire
from signalfire.coordinator.store import (
    SCHEMA_VERSION,
    CoordinatorStore,
    StoreError,
    reports,
    schema_version,
)

from .kit import NOW, World

FIXTURE = Path(__file__).parent / "data" / "coordinator-schema1.db"


def _versions(store: CoordinatorStore) -> list[int]:
    with store.engine.connect() as conn:
        q = sa.select(schema_version.c.version).order_by(schema_version.c.version)
        return list(conn.execute(q).scalars())


def test_schema_1_database_is_migrated_with_senders_backfilled(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    shutil.copy(FIXTURE, db)
    store = CoordinatorStore(f"sqlite:///{db}", now=NOW)
    try:
        assert _versions(store) == [1, 2] and SCHEMA_VERSION == 2
        with store.engine.connect() as conn:
            rows = conn.execute(
                sa.select(reports.c.status, reports.c.key_id, reports.c.sender, reports.c.origin)
            )
            by_status = {r.status: (r.key_id, r.sender, r.origin) for r in rows}
            names = set(sa.inspect(conn).get_table_names())
            indexes = {i["name"] for i in sa.inspect(conn).get_indexes("reports")}
        assert set(by_status) == {"sos", "safe", "medical"}
        assert by_status["sos"][1] == by_status["sos"][0]  # a signalfire sender: its key id
        assert by_status["safe"][1] == by_status["sos"][0]
        assert by_status["medical"][1] == "node-a1b2c3d4"  # the stock radio, not the gateway
        assert by_status["medical"][2] == "a1b2c3d4-0000004d"  # node and Meshtastic packet id
        assert by_status["sos"][2] is None
        assert {"users", "sessions", "report_state", "report_marks"} <= names
        assert {
            "ix_reports_sender_created",
            "ix_reports_status_received",
            "ix_reports_received_cover",
            "ix_reports_origin",
        } <= indexes
    finally:
        store.close()
    # Opening again changes nothing.
    again = CoordinatorStore(f"sqlite:///{db}", now=NOW + 1)
    try:
        assert _versions(again) == [1, 2]
    finally:
        again.close()


def test_the_fixture_itself_is_untouched_schema_1() -> None:
    # The test above works on a copy; if the committed file were ever migrated in
    # place, the migration would no longer be tested.
    engine = sa.create_engine(f"sqlite:///{FIXTURE}")
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar_one() == 1
        cols = {c["name"] for c in sa.inspect(conn).get_columns("reports")}
    engine.dispose()
    assert "sender" not in cols


def test_migration_on_each_backend_from_a_downgraded_database(world: World) -> None:
    """The same migration on PostgreSQL: a current database taken back to schema 1 by hand."""
    store = world.store()
    sender = world.sender()
    gw = world.gateway_sender("gw1")
    att = wire.Attestation(node_num=0x0BADF00D, packet_id=5, rx_time=int(NOW) - 3)
    batch = world.batch(
        [sender.announcement, gw.announcement, sender.report(), gw.report(attestation=att)]
    )
    assert len(world.ingestor(store).ingest_batch(batch, "https", NOW).stored) == 4
    with store.engine.begin() as conn:
        for name in (
            "ix_reports_sender_created",
            "ix_reports_status_received",
            "ix_reports_received_cover",
            "ix_reports_origin",
        ):
            conn.exec_driver_sql(f"DROP INDEX {name}")
        conn.exec_driver_sql("ALTER TABLE reports DROP COLUMN sender")
        conn.exec_driver_sql("ALTER TABLE reports DROP COLUMN origin")
        conn.exec_driver_sql("ALTER TABLE receipts DROP COLUMN packet_id")
        for table in ("users", "sessions", "report_state", "report_marks"):
            conn.exec_driver_sql(f"DROP TABLE {table}")
        conn.execute(sa.delete(schema_version))
        conn.execute(sa.insert(schema_version).values(version=1, applied_at=NOW))
    store.close()

    migrated = world.store()
    try:
        assert _versions(migrated) == [1, 2]
        with migrated.engine.connect() as conn:
            senders = set(conn.execute(sa.select(reports.c.sender)).scalars())
        assert senders == {sender.key_id.hex(), "node-0badf00d"}
    finally:
        migrated.close()


def test_a_newer_schema_is_refused_with_advice(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    CoordinatorStore(f"sqlite:///{db}", now=NOW).close()
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(sa.insert(schema_version).values(version=SCHEMA_VERSION + 1, applied_at=NOW))
    engine.dispose()
    with pytest.raises(StoreError, match="upgrade signalfire"):
        CoordinatorStore(f"sqlite:///{db}", now=NOW)

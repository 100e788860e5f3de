"""The gateway store's SQLite schema and its forward-only migrations.

A migration is appended, never edited: a gateway that ran version N for weeks
must reach N+1 by running exactly the statements that follow N. Each one runs in
its own write transaction together with its row in ``schema_version``, so a
power cut mid-migration leaves the database at N, and the next start retries.
"""

from __future__ import annotations

import sqlite3

from ..errors import SignalfireError

# Version 1. Notes on choices that are not obvious from the statements:
# - packets.n is the arrival order at this gateway; it breaks ties in "oldest first"
#   and keeps deliveries' foreign key a small integer instead of a 16-byte blob.
# - deliveries repeats priority, announcement and received_at from its packet (they
#   never change: they are part of the packet's bytes or of its arrival), so that
#   one partial index yields due() rows already in delivery order, with no sort of
#   the whole backlog on every batch.
# - Partial indexes cover only pending rows: done rows (almost all of them after a
#   while) cost nothing to the queue.
_V1 = (
    """
    CREATE TABLE packets (
        n INTEGER PRIMARY KEY,
        copy_id BLOB NOT NULL UNIQUE CHECK (length(copy_id) = 16),
        packet_id BLOB NOT NULL,
        raw BLOB NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('report', 'attested', 'announcement')),
        priority INTEGER NOT NULL CHECK (priority BETWEEN 0 AND 2),
        key_id BLOB NOT NULL,
        seq INTEGER,
        received_at REAL NOT NULL,
        radio_node INTEGER,
        rx_snr REAL,
        rx_rssi INTEGER,
        hops INTEGER,
        verified TEXT NOT NULL
            CHECK (verified IN ('verified', 'unknown-sender', 'not-checked'))
    )
    """,
    "CREATE INDEX packets_by_id ON packets (packet_id)",
    "CREATE INDEX packets_by_sender ON packets (key_id, kind, seq)",
    "CREATE INDEX packets_by_time ON packets (received_at)",
    """
    CREATE TABLE uplinks (
        name TEXT PRIMARY KEY,
        configured INTEGER NOT NULL CHECK (configured IN (0, 1)),
        added_at REAL NOT NULL
    )
    """,
    """
    CREATE TABLE deliveries (
        packet INTEGER NOT NULL REFERENCES packets (n) ON DELETE CASCADE,
        uplink TEXT NOT NULL REFERENCES uplinks (name),
        state TEXT NOT NULL
            CHECK (state IN ('pending', 'done', 'rejected', 'superseded')),
        priority INTEGER NOT NULL,
        announcement INTEGER NOT NULL CHECK (announcement IN (0, 1)),
        received_at REAL NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL DEFAULT 0,
        last_error TEXT,
        updated_at REAL NOT NULL,
        PRIMARY KEY (packet, uplink)
    ) WITHOUT ROWID
    """,
    """
    CREATE INDEX deliveries_queue
        ON deliveries (uplink, announcement DESC, priority DESC, received_at, packet)
        WHERE state = 'pending'
    """,
    """
    CREATE INDEX deliveries_wake ON deliveries (uplink, next_attempt_at)
        WHERE state = 'pending'
    """,
    """
    CREATE TABLE status (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL CHECK (json_valid(value)),
        updated_at REAL NOT NULL
    )
    """,
    "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1,)  # MIGRATIONS[i] takes version i to i + 1
SCHEMA_VERSION = len(MIGRATIONS)


class StoreError(SignalfireError):
    """The gateway store cannot be used as it is; the message says what to do."""


class SchemaTooNew(StoreError):
    """The database was written by a newer signalfire than this one."""


def _tables(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {str(name) for (name,) in rows}


def schema_version(conn: sqlite3.Connection, path: str) -> int:
    """The version the database is at; 0 for a new, empty file. Writes nothing."""
    tables = _tables(conn)
    if "schema_version" in tables:
        (version,) = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
        return int(version)
    if tables:
        raise StoreError(
            f"{path} is an SQLite database but not a signalfire gateway store "
            f"(it has tables {', '.join(sorted(tables))} and no schema_version): "
            "point the gateway at a new file or at its own store"
        )
    return 0


def check_not_newer(version: int, path: str) -> None:
    if version > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"{path} is at gateway store schema version {version}, but this signalfire "
            f"only knows versions up to {SCHEMA_VERSION}: it was written by a newer "
            "signalfire. Upgrade signalfire on this machine (nothing was changed in the "
            "file), or point the gateway at another store."
        )


def migrate(conn: sqlite3.Connection, path: str, now: float) -> int:
    """Bring the database to SCHEMA_VERSION; returns the version it started at.

    ``conn`` must be in autocommit mode (isolation_level None). The version is read
    again inside each write transaction, so two processes opening one new file do
    not both run a migration.
    """
    start = schema_version(conn, path)
    check_not_newer(start, path)
    for target in range(start + 1, SCHEMA_VERSION + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            if "schema_version" not in _tables(conn):
                conn.execute(
                    "CREATE TABLE schema_version ("
                    " version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"
                )
            current = schema_version(conn, path)
            check_not_newer(current, path)
            if current < target:
                for statement in MIGRATIONS[target - 1]:
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_version VALUES (?, ?)", (target, now))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return start

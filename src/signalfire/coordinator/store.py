"""The coordinator's database: SQLAlchemy Core, one code path for SQLite and PostgreSQL.

Every write is idempotent on a natural key (report id, announcement id,
receipt = report x gateway x uplink, batch digest): at-least-once delivery on
every uplink becomes exactly-once in effect here. Report and key ids are
stored as lower-case hex so that SQL, logs and the JSON API all spell them
the same way.

SQLite (the default) runs in WAL mode with synchronous=FULL, so a 200 answer
to a gateway is on disk. Write transactions take SQLite's write lock at BEGIN
(BEGIN IMMEDIATE): several processes sharing one file then queue on the busy
timeout instead of failing when a read lock cannot be upgraded.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import logging
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError

from signalfire import wire
from signalfire.errors import SignalfireError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
DEFAULT_URL = "sqlite:///signalfire-coordinator.db"
SQLITE_BUSY_TIMEOUT_MS = 10_000
# pg_advisory_xact_lock key serialising schema creation: "sfire" in ASCII
_SCHEMA_LOCK_ID = 0x7366697265


class StoreError(SignalfireError):
    """The database cannot be opened or used as configured."""


class ReportFlag(enum.IntFlag):
    """Why a stored report deserves a second look; flagged reports are kept and shown."""

    FUTURE_TIME = 1  # created more than the allowed skew after it reached us
    TOO_OLD = 2  # created longer ago than the configured maximum age
    SEQ_REUSED = 4  # another report of the same sender carries the same sequence number
    REVOKED_SENDER = 8  # created after its sender was revoked (a seized device, schema 2)


def flag_labels(flags: int) -> list[str]:
    return [f.name.lower().replace("_", "-") for f in ReportFlag if f.name and flags & f]


metadata = sa.MetaData()

_KEY_ID = sa.String(16)  # 8-byte key ids
_PACKET_ID = sa.String(32)  # 16-byte packet ids
_PUBLIC_KEY = sa.String(64)
_DIGEST = sa.String(64)  # SHA-256
# SQLite only auto-numbers a column declared exactly INTEGER PRIMARY KEY.
_SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("applied_at", sa.Float, nullable=False),
)

gateways = sa.Table(
    "gateways",
    metadata,
    sa.Column("key_id", _KEY_ID, primary_key=True),
    sa.Column("public_key", _PUBLIC_KEY, nullable=False, unique=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("enrolled_at", sa.Float, nullable=False),
    sa.Column("revoked_at", sa.Float, nullable=True),
)

senders = sa.Table(
    "senders",
    metadata,
    # An 8-byte key id can (rarely) be shared by two identities: key on both.
    sa.Column("key_id", _KEY_ID, primary_key=True),
    sa.Column("identity_public", _PUBLIC_KEY, primary_key=True),
    sa.Column("first_seen", sa.Float, nullable=False),
)

announcements = sa.Table(
    "announcements",
    metadata,
    sa.Column("id", _PACKET_ID, primary_key=True),
    sa.Column("raw", sa.LargeBinary, nullable=False),
    sa.Column("key_id", _KEY_ID, nullable=False, index=True),
    sa.Column("received_at", sa.Float, nullable=False),
)

reports = sa.Table(
    "reports",
    metadata,
    sa.Column("id", _PACKET_ID, primary_key=True),
    sa.Column("raw", sa.LargeBinary, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("priority", sa.String(16), nullable=False),
    sa.Column("key_id", _KEY_ID, nullable=False),
    sa.Column("sender_key", _PUBLIC_KEY, nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),  # uint32 does not fit PostgreSQL's int
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("people", sa.Integer, nullable=False),
    sa.Column("needs", sa.Integer, nullable=False),  # wire.Need bits
    sa.Column("lat", sa.Float, nullable=True),
    sa.Column("lon", sa.Float, nullable=True),
    sa.Column("accuracy_class", sa.Integer, nullable=True),
    sa.Column("text", sa.Text, nullable=True),
    sa.Column("attestation", sa.Text, nullable=True),  # JSON, attested reports only
    sa.Column("created_at", sa.BigInteger, nullable=False),  # the sender's clock
    sa.Column("first_received_at", sa.Float, nullable=False),  # ours
    sa.Column("flags", sa.Integer, nullable=False, server_default="0"),
    # Who the feed groups by: the key id, or "node-<8 hex>" for a stock radio's
    # message that a gateway attested (all of those share the gateway's key).
    sa.Column("sender", sa.String(40), nullable=False, server_default=""),
    # Attested reports only: "<node>-<Meshtastic packet id>" (8 hex each). Two gateways
    # that hear one stock-radio text each sign their own report of it; this finds the
    # second one so the feed shows one report with two receipts.
    sa.Column("origin", sa.String(17), nullable=True),
)
sa.Index("ix_reports_sender_seq", reports.c.sender_key, reports.c.seq)
sa.Index("ix_reports_created_at", reports.c.created_at)
sa.Index("ix_reports_first_received_at", reports.c.first_received_at)
# Schema 2: the feed's queries (latest per sender, filters by status).
_FEED_INDEXES: tuple[sa.Index, ...] = (
    sa.Index("ix_reports_sender_created", reports.c.sender, reports.c.created_at),
    sa.Index("ix_reports_status_received", reports.c.status, reports.c.first_received_at),
    sa.Index("ix_reports_origin", reports.c.origin),
    # Counts over a time window read only this index (bench/coordinator.py: the
    # distinct-senders count over 24 h of a 1M-report database, 586 -> 78 ms).
    sa.Index(
        "ix_reports_received_cover",
        reports.c.first_received_at,
        reports.c.status,
        reports.c.needs,
        reports.c.sender,
    ),
)

receipts = sa.Table(
    "receipts",
    metadata,
    sa.Column("id", _SERIAL, primary_key=True, autoincrement=True),
    # No foreign key: receipts of a report still pending (sender unknown) are
    # kept from the start, so the report has all of them once it opens.
    sa.Column("report_id", _PACKET_ID, nullable=False),
    sa.Column("gateway_key_id", _KEY_ID, nullable=False),
    sa.Column("uplink", sa.String(16), nullable=False),
    sa.Column("batch_id", sa.Text, nullable=False),
    sa.Column("radio_node", sa.BigInteger, nullable=True),
    sa.Column("received_at", sa.Float, nullable=True),  # at the gateway
    sa.Column("snr", sa.Float, nullable=True),
    sa.Column("rssi", sa.Integer, nullable=True),
    sa.Column("hops", sa.Integer, nullable=True),
    sa.Column("ingested_at", sa.Float, nullable=False),
    # The packet the gateway delivered, when it is not the report itself: another
    # gateway's attested report of the same stock-radio text (schema 2).
    sa.Column("packet_id", _PACKET_ID, nullable=True),
    sa.UniqueConstraint("report_id", "gateway_key_id", "uplink", name="uq_receipts_once"),
)
_FEED_INDEXES += (sa.Index("ix_receipts_gateway", receipts.c.gateway_key_id, receipts.c.report_id),)

pending = sa.Table(
    "pending",
    metadata,
    # Keyed by the bytes, not the id: the id covers everything but the signature,
    # so a copy with a broken signature must not shadow the genuine packet.
    sa.Column("digest", _DIGEST, primary_key=True),
    sa.Column("id", _PACKET_ID, nullable=False, index=True),
    sa.Column("raw", sa.LargeBinary, nullable=False),
    sa.Column("key_id", _KEY_ID, nullable=False, index=True),
    sa.Column("gateway_key_id", _KEY_ID, nullable=False),  # first to deliver it
    sa.Column("first_received_at", sa.Float, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="1"),
    sa.Column("last_attempt_at", sa.Float, nullable=False),
)

rejections = sa.Table(
    "rejections",
    metadata,
    sa.Column("gateway_key_id", _KEY_ID, primary_key=True),
    sa.Column("code", sa.String(32), primary_key=True),
    sa.Column("count", sa.BigInteger, nullable=False),
    sa.Column("first_at", sa.Float, nullable=False),
    sa.Column("last_at", sa.Float, nullable=False),
)

rejection_samples = sa.Table(
    "rejection_samples",
    metadata,
    sa.Column("id", _SERIAL, primary_key=True, autoincrement=True),
    sa.Column("gateway_key_id", _KEY_ID, nullable=False),
    sa.Column("code", sa.String(32), nullable=False),
    sa.Column("packet_id", _PACKET_ID, nullable=False),
    sa.Column("raw", sa.LargeBinary, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("at", sa.Float, nullable=False),
)
sa.Index(
    "ix_rejection_samples_gateway_code",
    rejection_samples.c.gateway_key_id,
    rejection_samples.c.code,
)

batches = sa.Table(
    "batches",
    metadata,
    # The same signed bytes posted again get the first answer back and change nothing.
    sa.Column("digest", _DIGEST, primary_key=True),
    sa.Column("gateway_key_id", _KEY_ID, nullable=False),
    sa.Column("batch_id", sa.Text, nullable=False),
    sa.Column("uplink", sa.String(16), nullable=False),
    sa.Column("sent_at", sa.BigInteger, nullable=False),
    sa.Column("ingested_at", sa.Float, nullable=False),
    sa.Column("result", sa.Text, nullable=False),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", _SERIAL, primary_key=True, autoincrement=True),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("actor", sa.String(100), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),  # JSON
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", _SERIAL, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("password_hash", sa.Text, nullable=False),  # argon2id, PHC string
    sa.Column("role", sa.String(16), nullable=False),  # viewer, responder, admin
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("disabled_at", sa.Float, nullable=True),
    sa.Column("last_login_at", sa.Float, nullable=True),
)

sessions = sa.Table(
    "sessions",
    metadata,
    # Only a hash of the secret is kept: a copy of the database logs nobody in.
    sa.Column("token_hash", _DIGEST, primary_key=True),
    sa.Column("user_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("kind", sa.String(8), nullable=False),  # "session" (browser) or "token" (API)
    sa.Column("label", sa.String(64), nullable=False, server_default=""),
    sa.Column("csrf_hash", _DIGEST, nullable=True),  # browser sessions only
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("last_used_at", sa.Float, nullable=False),
)

sender_latest = sa.Table(
    "sender_latest",
    metadata,
    # Each sender's latest report (its own clock, then sequence number, then id),
    # kept by every insert into reports: "latest status per sender" reads this
    # instead of ranking every sender's reports (bench/coordinator.py: 2.6 s on
    # PostgreSQL for a status filter over 1M reports without it).
    sa.Column("sender", sa.String(40), primary_key=True),
    sa.Column("report_id", _PACKET_ID, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("first_received_at", sa.Float, nullable=False, index=True),
)

revoked_senders = sa.Table(
    "revoked_senders",
    metadata,
    # A sender (key id, or node-<hex> for a stock radio) whose reports created at or
    # after `since` are flagged: its device was seized, lost or is being misused.
    # Reports are kept and shown, flagged; nothing is deleted.
    sa.Column("sender", sa.String(40), primary_key=True),
    sa.Column("since", sa.Float, nullable=False),
    sa.Column("revoked_at", sa.Float, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("by", sa.String(100), nullable=False),
)

report_state = sa.Table(
    "report_state",
    metadata,
    # The latest handling of a report; every change is also a report_marks row
    # and an audit entry.
    sa.Column("report_id", _PACKET_ID, primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("by", sa.String(64), nullable=False),
    sa.Column("at", sa.Float, nullable=False),
)

report_marks = sa.Table(
    "report_marks",
    metadata,
    sa.Column("id", _SERIAL, primary_key=True, autoincrement=True),
    sa.Column("report_id", _PACKET_ID, nullable=False, index=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("by", sa.String(64), nullable=False),
    sa.Column("at", sa.Float, nullable=False),
)

# The audit log is append-only in the database itself, not just by convention
# in this code: a later module (or a person at the SQL prompt) cannot quietly
# rewrite who looked at exact positions. Idempotent: run at every start.
_APPEND_ONLY_DDL = {
    "sqlite": [
        f"CREATE TRIGGER IF NOT EXISTS audit_log_no_{op.lower()} BEFORE {op} ON audit_log "
        "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
        for op in ("UPDATE", "DELETE")
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION signalfire_append_only() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$",
        "CREATE OR REPLACE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION signalfire_append_only()",
    ],
}


# -- rows ---------------------------------------------------------------------


@dataclass(frozen=True)
class GatewayRow:
    key_id: str
    public_key: bytes
    name: str
    enrolled_at: float
    revoked_at: float | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def to_json(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "public_key": self.public_key.hex(),
            "name": self.name,
            "enrolled_at": self.enrolled_at,
            "revoked_at": self.revoked_at,
        }


@dataclass(frozen=True)
class PendingRow:
    digest: str
    id: str
    raw: bytes
    key_id: str
    gateway_key_id: str
    attempts: int


@dataclass(frozen=True)
class Receipt:
    report_id: str
    gateway_key_id: str
    uplink: str
    batch_id: str
    radio_node: int | None = None
    received_at: float | None = None
    snr: float | None = None
    rssi: int | None = None
    hops: int | None = None
    packet_id: str | None = None  # set when the delivered packet is another copy (an alias)


def report_values(opened: wire.Opened, received_at: float, flags: int) -> dict[str, Any]:
    """The reports row for a verified, decrypted report."""
    report = opened.report
    loc = report.location
    att = report.attestation
    attestation = None
    if att is not None:
        attestation = json.dumps(
            {
                "node_num": att.node_num,
                "packet_id": att.packet_id,
                "rx_time": att.rx_time,
                "pki_authenticated": att.pki_authenticated,
                "direct_message": att.direct_message,
                "hops": None if att.hops == 0xFF else att.hops,
                "position_age": att.position_age,
            },
            sort_keys=True,
        )
    return {
        "id": opened.id.hex(),
        "raw": opened.raw,
        "kind": opened.kind.label,
        "priority": opened.priority.label,
        "key_id": opened.key_id.hex(),
        "sender_key": opened.identity_public.hex(),
        "seq": opened.seq,
        "status": report.status.label,
        "people": report.people,
        "needs": int(report.needs),
        "lat": round(loc.lat, 7) if loc else None,
        "lon": round(loc.lon, 7) if loc else None,
        "accuracy_class": loc.accuracy_class if loc else None,
        "text": report.text,
        "attestation": attestation,
        "created_at": report.time,
        "first_received_at": received_at,
        "flags": flags,
        "sender": sender_of(opened.key_id.hex(), att.node_num if att is not None else None),
        "origin": None if att is None else origin_of(att.node_num, att.packet_id),
    }


def origin_of(node_num: int, packet_id: int) -> str:
    """Which stock-radio transmission an attested report is about."""
    return f"{node_num:08x}-{packet_id:08x}"


_RECEIPT_FIELDS = tuple(f.name for f in dataclasses.fields(Receipt))


def receipt_values(receipt: Receipt, now: float) -> dict[str, Any]:
    """The receipts row; field by field, as dataclasses.asdict's deep copy costs more here."""
    values = {name: getattr(receipt, name) for name in _RECEIPT_FIELDS}
    values["ingested_at"] = now
    return values


def sender_of(key_id: str, node_num: int | None) -> str:
    """The feed's sender: a signalfire identity, or the stock radio a gateway vouched for."""
    return key_id if node_num is None else f"node-{node_num:08x}"


# -- engine -------------------------------------------------------------------


def normalize_url(url: str | URL) -> URL:
    """Parse a database URL; plain postgresql:// means psycopg 3 (the driver we ship)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(
            f"database URL {url!r} is not a URL; use sqlite:///PATH or "
            "postgresql+psycopg://USER@HOST/DBNAME"
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise StoreError(
            f"database {parsed.get_backend_name()!r} is not supported; use sqlite:///PATH or "
            "postgresql+psycopg://USER@HOST/DBNAME"
        )
    if parsed.get_backend_name() == "postgresql" and parsed.drivername != "postgresql+psycopg":
        raise StoreError(
            f"PostgreSQL driver {parsed.drivername!r} is not installed with signalfire; "
            "write the URL as postgresql+psycopg://..."
        )
    return parsed


def safe_url(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def _engine(url: URL) -> Engine:
    if url.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_pre_ping=True)
    if url.database and url.database != ":memory:":
        path = Path(url.database).expanduser().resolve()
        parent = path.parent
        if not parent.is_dir():
            raise StoreError(
                f"database directory {parent} does not exist; create it (mkdir -p {parent})"
            )
        if not path.exists():
            # Every opened report is in here in the clear: owner-only from the first
            # byte (SQLite gives its -wal and -shm files the same mode).
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    # Ingest runs in a worker thread of the web server: pooled connections may
    # move between threads (each is used by one at a time).
    engine = sa.create_engine(url, connect_args={"check_same_thread": False})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # SQLAlchemy's "begin" below issues BEGIN
        cur = dbapi_conn.cursor()
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        finally:
            cur.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("signalfire_write", True)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _insert(conn: Connection, table: sa.Table) -> Any:
    # ON CONFLICT is spelled the same by both dialects, but lives in each one's module.
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


# (dialect, table, conflict keys) -> INSERT ... ON CONFLICT DO NOTHING RETURNING
_INSERT_IGNORE: dict[tuple[str, str, tuple[str, ...]], Any] = {}

# Queries on every ingested packet, built once with bound parameters: building a
# statement around a literal value costs more than running it.
_SELECT_GATEWAY = sa.select(gateways).where(gateways.c.key_id == sa.bindparam("key_id"))
_SELECT_REPORT_RAW = sa.select(reports.c.raw).where(reports.c.id == sa.bindparam("id"))
_SELECT_SAME_SEQ = sa.select(reports.c.id).where(
    reports.c.sender_key == sa.bindparam("sender_key"), reports.c.seq == sa.bindparam("seq")
)
_SELECT_PENDING_COUNT = sa.select(sa.func.count()).select_from(pending)
_SELECT_HAS_PENDING = sa.select(pending.c.digest).where(pending.c.digest == sa.bindparam("digest"))
_SELECT_BATCH_RESULT = sa.select(batches.c.result).where(batches.c.digest == sa.bindparam("digest"))
_SELECT_ANY_PENDING = sa.select(pending.c.digest).limit(1)
# The set-based forms a batch's ingest runs once per batch instead of once per report.
_SELECT_REPORTS_RAW = sa.select(reports.c.id, reports.c.raw).where(
    reports.c.id.in_(sa.bindparam("ids", expanding=True))
)
# Two IN lists rather than a row-value IN: SQLite answers (a, b) IN (VALUES ...) with a
# full scan, but both lists together with a seek on ix_reports_sender_seq. The result is
# a superset of the pairs asked for; the caller keeps the pairs it asked about.
_SELECT_SAME_SEQ_MANY = sa.select(reports.c.id, reports.c.sender_key, reports.c.seq).where(
    reports.c.sender_key.in_(sa.bindparam("sender_keys", expanding=True)),
    reports.c.seq.in_(sa.bindparam("seqs", expanding=True)),
)
_DELETE_PENDING_MANY = sa.delete(pending).where(
    pending.c.digest.in_(sa.bindparam("digests", expanding=True))
)
# Bound parameters per statement stay well below SQLite's limit (32,766) and
# PostgreSQL's (65,535) even for a 20,000-packet bundle batch.
_IN_CHUNK = 500


def _chunks(items: Sequence[Any], size: int = _IN_CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# -- transactions -------------------------------------------------------------


class StoreTx:
    """Queries and idempotent writes inside one transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._latest: dict[str, dict[str, Any]] = {}  # see flush_latest

    def _insert_ignore(self, table: sa.Table, values: dict[str, Any], keys: Sequence[str]) -> bool:
        # The values go in as execution parameters of a statement built once: building
        # a new statement around literal values costs ten times the INSERT itself,
        # several times per ingested packet.
        return self.conn.execute(self._ignore_stmt(table, keys), values).first() is not None

    def _ignore_stmt(self, table: sa.Table, keys: Sequence[str]) -> Any:
        key = (self.conn.dialect.name, table.name, tuple(keys))
        stmt = _INSERT_IGNORE.get(key)
        if stmt is None:
            # RETURNING, not rowcount: drivers need not report rowcount for an INSERT
            # (psycopg under SQLAlchemy 2.1 answers -1).
            stmt = (
                _insert(self.conn, table)
                .on_conflict_do_nothing(index_elements=list(keys))
                .returning(table.c[keys[0]])
            )
            _INSERT_IGNORE[key] = stmt
        return stmt

    # gateways

    def gateway(self, key_id: str) -> GatewayRow | None:
        row = self.conn.execute(_SELECT_GATEWAY, {"key_id": key_id}).first()
        return None if row is None else _gateway(row)

    def gateways(self) -> list[GatewayRow]:
        rows = self.conn.execute(sa.select(gateways).order_by(gateways.c.enrolled_at))
        return [_gateway(r) for r in rows]

    def add_gateway(self, public_key: bytes, name: str, now: float) -> tuple[GatewayRow, bool]:
        """Enrol a gateway key; an existing enrolment (revoked or not) is left as it is."""
        key_id = wire.key_id(public_key).hex()
        existing = self.gateway(key_id)
        if existing is not None:
            if existing.public_key != public_key:
                raise StoreError(
                    f"another gateway key with key id {key_id} is already enrolled "
                    f"({existing.name}); generate a new gateway key"
                )
            return existing, False
        values = {
            "key_id": key_id,
            "public_key": public_key.hex(),
            "name": name,
            "enrolled_at": now,
            "revoked_at": None,
        }
        self._insert_ignore(gateways, values, ["key_id"])
        row = self.gateway(key_id)
        assert row is not None
        return row, True

    def revoke_gateway(self, key_id: str, now: float) -> bool:
        result = self.conn.execute(
            sa.update(gateways)
            .where(gateways.c.key_id == key_id, gateways.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return bool(result.rowcount)

    # senders and announcements

    def has_announcement(self, ann_id: str) -> bool:
        q = sa.select(announcements.c.id).where(announcements.c.id == ann_id)
        return self.conn.execute(q).first() is not None

    def add_announcement(
        self, ann_id: str, raw: bytes, key_id: str, identity_public: bytes, now: float
    ) -> bool:
        new = self._insert_ignore(
            announcements,
            {"id": ann_id, "raw": raw, "key_id": key_id, "received_at": now},
            ["id"],
        )
        self._insert_ignore(
            senders,
            {"key_id": key_id, "identity_public": identity_public.hex(), "first_seen": now},
            ["key_id", "identity_public"],
        )
        return new

    def announcements(self, key_id: str | None = None) -> list[tuple[str, bytes]]:
        q = sa.select(announcements.c.id, announcements.c.raw).order_by(announcements.c.received_at)
        if key_id is not None:
            q = q.where(announcements.c.key_id == key_id)
        return [(r.id, bytes(r.raw)) for r in self.conn.execute(q)]

    # reports and receipts

    def report_raw(self, report_id: str) -> bytes | None:
        row = self.conn.execute(_SELECT_REPORT_RAW, {"id": report_id}).first()
        return None if row is None else bytes(row.raw)

    def report(self, report_id: str) -> dict[str, Any] | None:
        row = self.conn.execute(sa.select(reports).where(reports.c.id == report_id)).first()
        return None if row is None else dict(row._mapping)

    def add_report(self, values: dict[str, Any]) -> bool:
        new = self._insert_ignore(reports, values, ["id"])
        if new:
            self.note_latest([values])
        return new

    def note_latest(self, rows: Sequence[dict[str, Any]]) -> None:
        """Remember newly stored report rows for sender_latest (written at commit)."""
        for r in rows:
            key = (r["created_at"], r["seq"], r["id"])
            held = self._latest.get(r["sender"])
            if held is None or key > (held["created_at"], held["seq"], held["report_id"]):
                self._latest[r["sender"]] = {
                    "sender": r["sender"],
                    "report_id": r["id"],
                    "created_at": r["created_at"],
                    "seq": r["seq"],
                    "first_received_at": r["first_received_at"],
                }

    def flush_latest(self) -> None:
        """Move sender_latest forward for the reports this transaction stored.

        Once per transaction and in sender order: two ingest workers whose
        transactions touch overlapping senders (several batches each) then take
        those row locks in the same order and cannot deadlock (PostgreSQL).
        """
        if not self._latest:
            return
        stmt = _insert(self.conn, sender_latest)
        newer = sa.tuple_(
            sender_latest.c.created_at, sender_latest.c.seq, sender_latest.c.report_id
        ) < sa.tuple_(stmt.excluded.created_at, stmt.excluded.seq, stmt.excluded.report_id)
        stmt = stmt.on_conflict_do_update(
            index_elements=["sender"],
            set_={
                "report_id": stmt.excluded.report_id,
                "created_at": stmt.excluded.created_at,
                "seq": stmt.excluded.seq,
                "first_received_at": stmt.excluded.first_received_at,
            },
            where=newer,
        )
        self.conn.execute(stmt, [self._latest[k] for k in sorted(self._latest)])
        self._latest = {}

    def same_seq(self, sender_key: str, seq: int) -> list[str]:
        params = {"sender_key": sender_key, "seq": seq}
        return [r.id for r in self.conn.execute(_SELECT_SAME_SEQ, params)]

    def add_flags(self, report_ids: Iterable[str], flag: ReportFlag) -> None:
        self.conn.execute(
            sa.update(reports)
            .where(reports.c.id.in_(list(report_ids)))
            .values(flags=reports.c.flags.op("|")(int(flag)))
        )

    def add_receipt(self, receipt: Receipt, now: float) -> bool:
        return self._insert_ignore(
            receipts, receipt_values(receipt, now), ["report_id", "gateway_key_id", "uplink"]
        )

    # reports and receipts, a batch at a time: one statement for many rows

    def reports_raw(self, report_ids: Sequence[str]) -> dict[str, bytes]:
        """The raw packets of those of ``report_ids`` already stored, by id."""
        found: dict[str, bytes] = {}
        for chunk in _chunks(sorted(set(report_ids))):
            for row in self.conn.execute(_SELECT_REPORTS_RAW, {"ids": list(chunk)}):
                found[row.id] = bytes(row.raw)
        return found

    def add_reports(self, rows: Sequence[dict[str, Any]]) -> set[str]:
        """Insert report rows (``report_values``) that are not stored yet; returns the new ids.

        One multi-row INSERT ... ON CONFLICT DO NOTHING RETURNING id (SQLAlchemy's
        "insertmanyvalues"): a row another process stored first is simply not returned.
        """
        if not rows:
            return set()
        stmt = self._ignore_stmt(reports, ("id",))
        inserted = {r.id for r in self.conn.execute(stmt, list(rows))}
        self.note_latest([r for r in rows if r["id"] in inserted])
        return inserted

    # revoked senders

    def revoked_senders(self) -> dict[str, float]:
        """sender -> the creation time from which its reports are flagged."""
        rows = self.conn.execute(sa.select(revoked_senders.c.sender, revoked_senders.c.since))
        return {r.sender: float(r.since) for r in rows}

    def revoke_sender(self, sender: str, since: float, reason: str, actor: str, now: float) -> int:
        """Record the revocation and flag the sender's stored reports created since; count."""
        stmt = _insert(self.conn, revoked_senders).values(
            sender=sender, since=since, revoked_at=now, reason=reason, by=actor
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["sender"],
            set_={"since": since, "revoked_at": now, "reason": reason, "by": actor},
        )
        self.conn.execute(stmt)
        flagged = self.conn.execute(
            sa.update(reports)
            .where(reports.c.sender == sender, reports.c.created_at >= since)
            .values(flags=reports.c.flags.op("|")(int(ReportFlag.REVOKED_SENDER)))
        ).rowcount
        self.audit(
            actor,
            "sender.revoke",
            {"sender": sender, "since": since, "reason": reason, "flagged": flagged},
            now,
        )
        return int(flagged or 0)

    def same_origin(self, origins: Sequence[str]) -> dict[str, tuple[str, int]]:
        """Stored attested reports by origin: origin -> (report id, the gateway's rx_time)."""
        found: dict[str, tuple[str, int]] = {}
        for chunk in _chunks(sorted(set(origins))):
            q = (
                sa.select(reports.c.origin, reports.c.id, reports.c.attestation)
                .where(reports.c.origin.in_(list(chunk)))
                .order_by(reports.c.first_received_at)
            )
            for row in self.conn.execute(q):
                if row.origin not in found:
                    found[row.origin] = (row.id, int(json.loads(row.attestation)["rx_time"]))
        return found

    def same_seq_many(self, pairs: Iterable[tuple[str, int]]) -> dict[tuple[str, int], list[str]]:
        """The report ids stored under each (sender_key, seq) pair asked for."""
        wanted = sorted(set(pairs))
        found: dict[tuple[str, int], list[str]] = {pair: [] for pair in wanted}
        for chunk in _chunks(wanted):
            params = {
                "sender_keys": sorted({k for k, _ in chunk}),
                "seqs": sorted({s for _, s in chunk}),
            }
            for row in self.conn.execute(_SELECT_SAME_SEQ_MANY, params):
                ids = found.get((row.sender_key, int(row.seq)))
                if ids is not None:
                    ids.append(row.id)
        return found

    def add_receipts(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert receipt rows (``receipt_values``); those already there are left alone."""
        if not rows:
            return
        stmt = _insert(self.conn, receipts).on_conflict_do_nothing(
            index_elements=["report_id", "gateway_key_id", "uplink"]
        )
        self.conn.execute(stmt, list(rows))

    def receipts(self, report_id: str) -> list[Receipt]:
        q = sa.select(receipts).where(receipts.c.report_id == report_id).order_by(receipts.c.id)
        return [
            Receipt(
                report_id=r.report_id,
                gateway_key_id=r.gateway_key_id,
                uplink=r.uplink,
                batch_id=r.batch_id,
                radio_node=r.radio_node,
                received_at=r.received_at,
                snr=r.snr,
                rssi=r.rssi,
                hops=r.hops,
                packet_id=r.packet_id,
            )
            for r in self.conn.execute(q)
        ]

    def drop_orphan_receipts(self, report_id: str) -> None:
        """Forget receipts of a packet that turned out bad, unless a good copy shares its id."""
        if self.report_raw(report_id) is not None:
            return
        q = sa.select(pending.c.digest).where(pending.c.id == report_id)
        if self.conn.execute(q).first() is not None:
            return
        self.conn.execute(sa.delete(receipts).where(receipts.c.report_id == report_id))

    # pending (sender not known yet)

    def pending_count(self) -> int:
        return int(self.conn.execute(_SELECT_PENDING_COUNT).scalar_one())

    def has_pending(self, digest: str) -> bool:
        return self.conn.execute(_SELECT_HAS_PENDING, {"digest": digest}).first() is not None

    def add_pending(
        self, digest: str, packet_id: str, raw: bytes, key_id: str, gateway: str, now: float
    ) -> bool:
        values = {
            "digest": digest,
            "id": packet_id,
            "raw": raw,
            "key_id": key_id,
            "gateway_key_id": gateway,
            "first_received_at": now,
            "attempts": 1,
            "last_attempt_at": now,
        }
        return self._insert_ignore(pending, values, ["digest"])

    def pending_for(self, key_id: str) -> list[PendingRow]:
        q = (
            sa.select(pending)
            .where(pending.c.key_id == key_id)
            .order_by(pending.c.first_received_at)
        )
        return [_pending(r) for r in self.conn.execute(q)]

    def pending_key_ids(self) -> list[str]:
        return [r.key_id for r in self.conn.execute(sa.select(pending.c.key_id).distinct())]

    def touch_pending(self, digest: str, now: float) -> None:
        self.conn.execute(
            sa.update(pending)
            .where(pending.c.digest == digest)
            .values(attempts=pending.c.attempts + 1, last_attempt_at=now)
        )

    def drop_pending(self, digest: str) -> None:
        self.conn.execute(sa.delete(pending).where(pending.c.digest == digest))

    def drop_pending_many(self, digests: Sequence[str]) -> None:
        for chunk in _chunks(sorted(set(digests))):
            self.conn.execute(_DELETE_PENDING_MANY, {"digests": list(chunk)})

    def has_any_pending(self) -> bool:
        """Whether pending holds any row: unlike a count, one index probe however many."""
        return self.conn.execute(_SELECT_ANY_PENDING).first() is not None

    # rejections

    def count_rejection(
        self,
        gateway: str,
        code: str,
        packet_id: str,
        raw: bytes,
        message: str,
        now: float,
        keep_samples: int,
    ) -> None:
        self.count_rejections(gateway, [(code, packet_id, raw, message)], now, keep_samples)

    def count_rejections(
        self,
        gateway: str,
        rejected: Sequence[tuple[str, str, bytes, str]],
        now: float,
        keep_samples: int,
    ) -> None:
        """Count (code, packet id, raw, message) rejections of one gateway; keep a few samples.

        A few statements per code whatever the number: a batch of junk must cost about
        what a batch of reports costs, not three statements per packet.
        """
        by_code: dict[str, list[tuple[str, str, bytes, str]]] = {}
        for item in rejected:
            by_code.setdefault(item[0], []).append(item)
        for code in sorted(by_code):  # one order for every writer (PostgreSQL row locks)
            items = by_code[code]
            stmt = _insert(self.conn, rejections).values(
                gateway_key_id=gateway, code=code, count=len(items), first_at=now, last_at=now
            )
            stmt = stmt.on_conflict_do_update(
                index_elements=["gateway_key_id", "code"],
                set_={"count": rejections.c.count + len(items), "last_at": now},
            )
            self.conn.execute(stmt)
            if keep_samples <= 0:
                continue
            self.conn.execute(
                sa.insert(rejection_samples),
                [
                    {
                        "gateway_key_id": gateway,
                        "code": code,
                        "packet_id": packet_id,
                        "raw": raw,
                        "message": message[:500],
                        "at": now,
                    }
                    for _, packet_id, raw, message in items[-keep_samples:]
                ],
            )
            # Keep only the newest few: samples help an operator see what is being
            # sent, and a flood of junk must not grow the database.
            same = sa.and_(
                rejection_samples.c.gateway_key_id == gateway, rejection_samples.c.code == code
            )
            newest = (
                sa.select(rejection_samples.c.id)
                .where(same)
                .order_by(rejection_samples.c.id.desc())
                .limit(keep_samples)
            )
            self.conn.execute(
                sa.delete(rejection_samples).where(same, rejection_samples.c.id.not_in(newest))
            )

    def rejection_counts(self) -> dict[tuple[str, str], int]:
        rows = self.conn.execute(sa.select(rejections))
        return {(r.gateway_key_id, r.code): int(r._mapping["count"]) for r in rows}

    def rejection_samples(self, gateway: str, code: str) -> list[dict[str, Any]]:
        q = (
            sa.select(rejection_samples)
            .where(rejection_samples.c.gateway_key_id == gateway, rejection_samples.c.code == code)
            .order_by(rejection_samples.c.id)
        )
        return [dict(r._mapping) for r in self.conn.execute(q)]

    # batches

    def batch_result(self, digest: str) -> str | None:
        row = self.conn.execute(_SELECT_BATCH_RESULT, {"digest": digest}).first()
        return None if row is None else str(row.result)

    def record_batch(
        self,
        digest: str,
        gateway: str,
        batch_id: str,
        uplink: str,
        sent_at: int,
        now: float,
        result: str,
    ) -> None:
        values = {
            "digest": digest,
            "gateway_key_id": gateway,
            "batch_id": batch_id,
            "uplink": uplink,
            "sent_at": sent_at,
            "ingested_at": now,
            "result": result,
        }
        self._insert_ignore(batches, values, ["digest"])

    # audit log

    def audit(self, actor: str, action: str, detail: dict[str, Any], now: float) -> None:
        self.conn.execute(
            sa.insert(audit_log).values(
                ts=now, actor=actor, action=action, detail=json.dumps(detail, sort_keys=True)
            )
        )

    def audit_entries(self, limit: int = 100) -> list[dict[str, Any]]:
        q = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        out = []
        for r in self.conn.execute(q):
            entry = dict(r._mapping)
            entry["detail"] = json.loads(entry["detail"])
            out.append(entry)
        return out[::-1]

    def counts(self) -> dict[str, int]:
        """Row counts of the main tables (for status output and tests)."""
        tables = (announcements, reports, receipts, pending, rejection_samples, batches)
        return {
            t.name: int(self.conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one())
            for t in tables
        }


def _gateway(row: Any) -> GatewayRow:
    return GatewayRow(
        key_id=row.key_id,
        public_key=bytes.fromhex(row.public_key),
        name=row.name,
        enrolled_at=row.enrolled_at,
        revoked_at=row.revoked_at,
    )


def _pending(row: Any) -> PendingRow:
    return PendingRow(
        digest=row.digest,
        id=row.id,
        raw=bytes(row.raw),
        key_id=row.key_id,
        gateway_key_id=row.gateway_key_id,
        attempts=int(row.attempts),
    )


# -- migrations ---------------------------------------------------------------


def _migrate_1_to_2(conn: Connection) -> None:
    """Schema 2: the feed (users, sessions, report handling) and reports.sender.

    create_all has already made the new tables; what it cannot do is change
    an existing table.
    """
    conn.exec_driver_sql("ALTER TABLE reports ADD COLUMN sender VARCHAR(40) NOT NULL DEFAULT ''")
    conn.exec_driver_sql("ALTER TABLE reports ADD COLUMN origin VARCHAR(17)")
    conn.exec_driver_sql("ALTER TABLE receipts ADD COLUMN packet_id VARCHAR(32)")
    conn.execute(sa.update(reports).values(sender=reports.c.key_id))
    rows = conn.execute(
        sa.select(reports.c.id, reports.c.key_id, reports.c.attestation).where(
            reports.c.attestation.is_not(None)
        )
    )
    for r in rows.all():
        att = json.loads(r.attestation)
        conn.execute(
            sa.update(reports)
            .where(reports.c.id == r.id)
            .values(
                sender=sender_of(r.key_id, att["node_num"]),
                origin=origin_of(att["node_num"], att["packet_id"]),
            )
        )
    for index in _FEED_INDEXES:
        index.create(conn, checkfirst=True)
    rebuild_sender_latest(conn)


_MIGRATIONS = {1: _migrate_1_to_2}


def rebuild_sender_latest(conn: Connection, senders: Sequence[str] | None = None) -> None:
    """Recompute sender_latest from reports, for ``senders`` (None: every sender).

    For reports written around the normal path (migrations, retention deleting a
    sender's latest report, a benchmark's bulk fill).
    """
    if senders is not None and not senders:
        return
    delete = sa.delete(sender_latest)
    ranked_q = sa.select(
        reports.c.sender,
        reports.c.id,
        reports.c.created_at,
        reports.c.seq,
        reports.c.first_received_at,
        sa.func.row_number()
        .over(
            partition_by=reports.c.sender,
            order_by=(reports.c.created_at.desc(), reports.c.seq.desc(), reports.c.id.desc()),
        )
        .label("rank"),
    )
    if senders is not None:
        delete = delete.where(sender_latest.c.sender.in_(list(senders)))
        ranked_q = ranked_q.where(reports.c.sender.in_(list(senders)))
    ranked = ranked_q.subquery()
    conn.execute(delete)
    conn.execute(
        sa.insert(sender_latest).from_select(
            ["sender", "report_id", "created_at", "seq", "first_received_at"],
            sa.select(
                ranked.c.sender,
                ranked.c.id,
                ranked.c.created_at,
                ranked.c.seq,
                ranked.c.first_received_at,
            ).where(ranked.c.rank == 1),
        )
    )


def _migrate(conn: Connection, version: int, now: float) -> None:
    """Bring an older database up to SCHEMA_VERSION, one step at a time, in one transaction."""
    while version < SCHEMA_VERSION:
        _MIGRATIONS[version](conn)
        version += 1
        conn.execute(sa.insert(schema_version).values(version=version, applied_at=now))


# -- the store ----------------------------------------------------------------


class CoordinatorStore:
    """The coordinator's database at ``url`` (sqlite:///PATH or postgresql+psycopg://...)."""

    def __init__(self, url: str | URL = DEFAULT_URL, *, now: float | None = None) -> None:
        self.url = normalize_url(url)
        self.engine = _engine(self.url)
        try:
            self._create_schema(now)
        except sa.exc.OperationalError as exc:
            self.engine.dispose()
            raise StoreError(
                f"cannot open database {safe_url(self.url)}: {exc.orig}; "
                "check the URL, that the server runs and that the user may create tables"
            ) from None

    def _create_schema(self, now: float | None) -> None:
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Several processes (the MQTT ingest workers, `serve`) may open the
                # database at the same moment; PostgreSQL fails concurrent CREATE TABLE
                # and CREATE OR REPLACE of one object instead of queueing them. SQLite
                # queues on BEGIN IMMEDIATE already.
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK_ID})")
            metadata.create_all(conn)
            for ddl in _APPEND_ONLY_DDL[conn.dialect.name]:
                conn.exec_driver_sql(ddl)
            row = conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar_one()
            if row is None:
                applied = time.time() if now is None else now
                conn.execute(
                    sa.insert(schema_version).values(version=SCHEMA_VERSION, applied_at=applied)
                )
            elif row > SCHEMA_VERSION:
                raise StoreError(
                    f"database {safe_url(self.url)} has schema version {row}, newer than this "
                    f"signalfire ({SCHEMA_VERSION}); upgrade signalfire"
                )
            elif row < SCHEMA_VERSION:
                _migrate(conn, int(row), time.time() if now is None else now)
                log.info(
                    "database migrated url=%s from=%d to=%d",
                    safe_url(self.url),
                    row,
                    SCHEMA_VERSION,
                )
        log.debug("store opened url=%s schema=%d", safe_url(self.url), SCHEMA_VERSION)

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[StoreTx]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        with self.engine.connect() as conn:
            conn.execution_options(signalfire_write=write)
            with conn.begin():
                tx = StoreTx(conn)
                yield tx
                tx.flush_latest()

    def close(self) -> None:
        self.engine.dispose()

    # conveniences: one transaction each

    def gateway(self, key_id: str) -> GatewayRow | None:
        with self.transaction(write=False) as tx:
            return tx.gateway(key_id)

    def gateways(self) -> list[GatewayRow]:
        with self.transaction(write=False) as tx:
            return tx.gateways()

    def add_gateway(
        self, public_key: bytes, name: str, now: float, *, actor: str
    ) -> tuple[GatewayRow, bool]:
        with self.transaction() as tx:
            row, new = tx.add_gateway(public_key, name, now)
            if new:
                tx.audit(actor, "gateway.add", {"key_id": row.key_id, "name": name}, now)
            return row, new

    def revoke_gateway(self, key_id: str, now: float, *, actor: str) -> bool:
        with self.transaction() as tx:
            done = tx.revoke_gateway(key_id, now)
            if done:
                tx.audit(actor, "gateway.revoke", {"key_id": key_id}, now)
            return done

    def audit(self, actor: str, action: str, detail: dict[str, Any], now: float) -> None:
        with self.transaction() as tx:
            tx.audit(actor, action, detail, now)

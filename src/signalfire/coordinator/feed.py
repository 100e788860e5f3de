"""The feed people read: stored reports as FeedReports, filtered, coarsened by role, audited.

The API and the exports go through here, so the two rules that protect
civilians live in one place: a viewer never receives an exact position, and
every answer that carries exact positions (and every export) leaves an
entry in the append-only audit log naming who saw which reports.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from signalfire import wire

from . import feed_queries
from .accounts import User
from .feed_model import STATES, FeedReceipt, FeedReport, Mark, accuracy_bound_m
from .store import (
    CoordinatorStore,
    ReportFlag,
    StoreTx,
    flag_labels,
    gateways,
    pending,
    rebuild_sender_latest,
    receipts,
    report_marks,
    report_state,
    reports,
)

DEFAULT_VIEWER_PRECISION_M = 1000.0
MAX_NOTE_CHARS = 2000
MAX_LIMIT = 1000
_AUDIT_IDS = 200  # an audit entry names at most this many report ids (and the total)
_CHANGE_OVERLAP_S = 30.0  # see Feed.changes


class FeedError(Exception):
    """A request the feed cannot answer as asked; the message says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class FeedSettings:
    network: str = "signalfire"
    viewer_precision_m: float = DEFAULT_VIEWER_PRECISION_M
    tile_url: str | None = None  # e.g. a local tile server; None: coordinate grid only
    tile_attribution: str = ""
    retention_days: float | None = None  # None: keep reports for ever


@dataclass(frozen=True)
class Filters:
    statuses: tuple[str, ...] | None = None
    since: float | None = None  # first received at or after (Unix seconds)
    until: float | None = None
    bbox: tuple[float, float, float, float] | None = None  # min lon, min lat, max lon, max lat
    gateway: str | None = None  # key id
    states: tuple[str, ...] | None = None
    limit: int = 200
    before: float | None = None  # paging: received strictly before this

    def query_args(self) -> dict[str, Any]:
        return {
            "statuses": self.statuses,
            "since": self.since,
            "until": self.until,
            "bbox": self.bbox,
            "gateway": self.gateway,
            "states": self.states,
        }

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.query_args().items() if v is not None}


def parse_filters(
    *,
    status: str | None = None,
    since: float | None = None,
    until: float | None = None,
    bbox: str | None = None,
    gateway: str | None = None,
    state: str | None = None,
    limit: int = 200,
    before: float | None = None,
) -> Filters:
    """Filters from query-string values; FeedError names the bad one."""
    statuses = None
    if status:
        statuses = tuple(s.strip().lower() for s in status.split(",") if s.strip())
        known = {s.label for s in wire.Status}
        bad = [s for s in statuses if s not in known]
        if bad:
            raise FeedError(
                "bad-filter", f"unknown status {bad[0]!r}; use: {', '.join(sorted(known))}"
            )
    states = None
    if state:
        states = tuple(s.strip().lower() for s in state.split(",") if s.strip())
        bad = [s for s in states if s not in STATES]
        if bad:
            raise FeedError("bad-filter", f"unknown state {bad[0]!r}; use: {', '.join(STATES)}")
    box = None
    if bbox:
        try:
            parts = [float(p) for p in bbox.split(",")]
        except ValueError:
            parts = []
        if len(parts) != 4 or not all(math.isfinite(p) for p in parts):
            raise FeedError(
                "bad-filter", "bbox is min_lon,min_lat,max_lon,max_lat in degrees, west to east"
            )
        # Corners in either order, and a box beyond the world is the world.
        lon1, lon2 = sorted(max(-180.0, min(180.0, p)) for p in parts[0::2])
        lat1, lat2 = sorted(max(-90.0, min(90.0, p)) for p in parts[1::2])
        box = (lon1, lat1, lon2, lat2)
    if gateway is not None and not (len(gateway) == 16 and _is_hex(gateway)):
        raise FeedError("bad-filter", "gateway is a gateway's 16-hex-digit key id")
    if not 1 <= limit <= MAX_LIMIT:
        raise FeedError("bad-filter", f"limit is 1 to {MAX_LIMIT}")
    for name, value in (("since", since), ("until", until), ("before", before)):
        if value is not None and not 0 <= value < 1e11:
            raise FeedError("bad-filter", f"{name} is a Unix time in seconds")
    return Filters(statuses, since, until, box, gateway, states, limit, before)


def _is_hex(text: str) -> bool:
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return text == text.lower()


@dataclass
class Changes:
    """What changed since a poll: new or updated reports, new marks."""

    reports: list[FeedReport] = field(default_factory=list)
    marks: list[tuple[str, Mark]] = field(default_factory=list)


class Feed:
    def __init__(self, store: CoordinatorStore, settings: FeedSettings | None = None) -> None:
        self.store = store
        self.settings = settings or FeedSettings()

    # -- reading -------------------------------------------------------------

    def _hydrate(self, tx: StoreTx, rows: Sequence[Mapping[Any, Any]]) -> list[FeedReport]:
        ids = [str(r["id"]) for r in rows]
        if not ids:
            return []
        names = {
            g.key_id: g.name for g in tx.conn.execute(sa.select(gateways.c.key_id, gateways.c.name))
        }
        by_report: dict[str, list[FeedReceipt]] = {}
        q = (
            sa.select(receipts)
            .where(receipts.c.report_id.in_(ids))
            .order_by(receipts.c.report_id, receipts.c.id)
        )
        for rc in tx.conn.execute(q):
            by_report.setdefault(rc.report_id, []).append(
                FeedReceipt(
                    gateway_key_id=rc.gateway_key_id,
                    gateway_name=names.get(rc.gateway_key_id),
                    uplink=rc.uplink,
                    received_at=rc.received_at,
                    snr=rc.snr,
                    rssi=rc.rssi,
                    hops=rc.hops,
                )
            )
        marks = {
            m.report_id: Mark(m.state, m.note, m.by, m.at)
            for m in tx.conn.execute(
                sa.select(report_state).where(report_state.c.report_id.in_(ids))
            )
        }
        return [
            _feed_report(r, tuple(by_report.get(str(r["id"]), ())), marks.get(str(r["id"])))
            for r in rows
        ]

    def _shown(
        self, user: User, found: list[FeedReport], now: float, what: str, extra: dict[str, Any]
    ) -> list[FeedReport]:
        """Coarsen for viewers; audit exact positions shown to anyone else."""
        if not user.at_least("responder"):
            cell = self.settings.viewer_precision_m
            return [r.coarsened(cell) for r in found]
        exact = [r.id for r in found if r.has_position]
        if exact:
            self.store.audit(
                f"user:{user.username}",
                "view.exact",
                {"what": what, "count": len(exact), "ids": exact[:_AUDIT_IDS], **extra},
                now,
            )
        return found

    def reports(self, user: User, filters: Filters, now: float) -> list[FeedReport]:
        with self.store.transaction(write=False) as tx:
            rows = feed_queries.newest_reports(
                tx.conn, **filters.query_args(), limit=filters.limit, before=filters.before
            )
            found = self._hydrate(tx, rows)
        return self._shown(user, found, now, "reports", {"filters": filters.to_json()})

    def report(self, user: User, report_id: str, now: float) -> tuple[FeedReport, list[Mark]]:
        if len(report_id) != 32 or not _is_hex(report_id):
            raise FeedError("not-found", "no such report")
        with self.store.transaction(write=False) as tx:
            row = tx.conn.execute(sa.select(reports).where(reports.c.id == report_id)).first()
            if row is None:
                raise FeedError("not-found", "no such report")
            found = self._hydrate(tx, [row._mapping])
            history = [
                Mark(m.state, m.note, m.by, m.at)
                for m in tx.conn.execute(
                    sa.select(report_marks)
                    .where(report_marks.c.report_id == report_id)
                    .order_by(report_marks.c.id)
                )
            ]
        return self._shown(user, found, now, "report", {})[0], history

    def senders(
        self, user: User, filters: Filters, now: float
    ) -> list[tuple[str, FeedReport, int]]:
        """The latest report of each sender (newest first) and how many reports each sent."""
        with self.store.transaction(write=False) as tx:
            rows = feed_queries.latest_per_sender(
                tx.conn, **filters.query_args(), limit=filters.limit
            )
            found = self._hydrate(tx, rows)
            totals = _sender_totals(tx, [r.sender for r in found])
        shown = self._shown(user, found, now, "senders", {"filters": filters.to_json()})
        return [(r.sender, r, totals.get(r.sender, 1)) for r in shown]

    def sender_reports(self, user: User, sender: str, limit: int, now: float) -> list[FeedReport]:
        if not 1 <= limit <= MAX_LIMIT or len(sender) > 40:
            raise FeedError("bad-filter", f"limit is 1 to {MAX_LIMIT}")
        with self.store.transaction(write=False) as tx:
            rows = feed_queries.sender_history(tx.conn, sender, limit=limit)
            found = self._hydrate(tx, rows)
        return self._shown(user, found, now, "sender", {"sender": sender})

    def counts(self, filters: Filters) -> dict[str, Any]:
        with self.store.transaction(write=False) as tx:
            result: dict[str, Any] = feed_queries.counts(tx.conn, **filters.query_args())
            return result

    def gateways(self) -> list[dict[str, Any]]:
        with self.store.transaction(write=False) as tx:
            return [g.to_json() | {"active": g.active} for g in tx.gateways()]

    def export(self, user: User, fmt: str, filters: Filters, now: float) -> list[FeedReport]:
        """The reports an export holds; every export is audited, coarse or exact."""
        with self.store.transaction(write=False) as tx:
            rows = feed_queries.newest_reports(
                tx.conn, **filters.query_args(), limit=filters.limit, before=filters.before
            )
            found = self._hydrate(tx, rows)
        exact = user.at_least("responder")
        if not exact:
            found = [r.coarsened(self.settings.viewer_precision_m) for r in found]
        self.store.audit(
            f"user:{user.username}",
            "export",
            {
                "format": fmt,
                "exact": exact,
                "count": len(found),
                "ids": [r.id for r in found][:_AUDIT_IDS],
                "filters": filters.to_json(),
            },
            now,
        )
        return found

    # -- acting --------------------------------------------------------------

    def mark(self, user: User, report_id: str, state: str, note: str, now: float) -> FeedReport:
        if state not in STATES[1:]:
            raise FeedError("bad-state", f"state is one of: {', '.join(STATES[1:])}")
        if len(note) > MAX_NOTE_CHARS:
            raise FeedError("bad-note", f"a note is at most {MAX_NOTE_CHARS} characters")
        if len(report_id) != 32 or not _is_hex(report_id):
            raise FeedError("not-found", "no such report")
        by = user.username
        with self.store.transaction() as tx:
            if tx.report_raw(report_id) is None:
                raise FeedError("not-found", "no such report")
            values = {"report_id": report_id, "state": state, "note": note, "by": by, "at": now}
            tx.conn.execute(sa.insert(report_marks).values(**values))
            updated = tx.conn.execute(
                sa.update(report_state)
                .where(report_state.c.report_id == report_id)
                .values(state=state, note=note, by=by, at=now)
            )
            if not updated.rowcount:
                tx.conn.execute(sa.insert(report_state).values(**values))
            tx.audit(
                f"user:{by}", "report.mark", {"id": report_id, "state": state, "note": note}, now
            )
        found, _ = self.report(user, report_id, now)
        return found

    # -- live updates ----------------------------------------------------------

    def changes(self, since: float, limit: int = 500) -> Changes:
        """Reports stored and marks made at or after ``since`` (coordinator clock).

        Ingest workers in other processes commit a report some time after
        stamping it, so a poll looks back _CHANGE_OVERLAP_S further; the caller
        drops what it has already sent, by id.
        """
        start = since - _CHANGE_OVERLAP_S
        with self.store.transaction(write=False) as tx:
            rows = tx.conn.execute(
                sa.select(reports)
                .where(reports.c.first_received_at >= start)
                .order_by(reports.c.first_received_at.desc())
                .limit(limit)
            ).all()
            found = self._hydrate(tx, [r._mapping for r in rows])
            marks = [
                (m.report_id, Mark(m.state, m.note, m.by, m.at))
                for m in tx.conn.execute(
                    sa.select(report_marks)
                    .where(report_marks.c.at >= start)
                    .order_by(report_marks.c.id)
                    .limit(limit)
                )
            ]
        return Changes(found[::-1], marks)

    def visible(self, user: User, found: Iterable[FeedReport], now: float) -> list[FeedReport]:
        return self._shown(user, list(found), now, "live", {})

    # -- retention -------------------------------------------------------------

    def expire(self, now: float, *, actor: str = "retention") -> int:
        """Delete reports first received longer ago than the retention period."""
        days = self.settings.retention_days
        if days is None:
            return 0
        cutoff = now - days * 86_400.0
        with self.store.transaction() as tx:
            old = sa.select(reports.c.id).where(reports.c.first_received_at < cutoff)
            for table, column in (
                (receipts, receipts.c.report_id),
                (report_state, report_state.c.report_id),
                (report_marks, report_marks.c.report_id),
            ):
                tx.conn.execute(sa.delete(table).where(column.in_(old)))
            touched = list(
                tx.conn.execute(
                    sa.select(reports.c.sender)
                    .where(reports.c.first_received_at < cutoff)
                    .distinct()
                ).scalars()
            )
            deleted = tx.conn.execute(
                sa.delete(reports).where(reports.c.first_received_at < cutoff)
            ).rowcount
            # A sender whose latest report expired has an older one, or none, now.
            for start in range(0, len(touched), 500):
                rebuild_sender_latest(tx.conn, touched[start : start + 500])
            # Packets whose sender never announced itself expire with the same clock.
            stale = tx.conn.execute(
                sa.delete(pending).where(pending.c.first_received_at < cutoff)
            ).rowcount
            if deleted or stale:
                tx.audit(
                    actor,
                    "retention.expire",
                    {"reports": deleted, "pending": stale, "before": cutoff, "days": days},
                    now,
                )
        return int(deleted or 0)


def _sender_totals(tx: StoreTx, senders: list[str]) -> dict[str, int]:
    if not senders:
        return {}
    q = (
        sa.select(reports.c.sender, sa.func.count())
        .where(reports.c.sender.in_(senders))
        .group_by(reports.c.sender)
    )
    return {str(s): int(n) for s, n in tx.conn.execute(q)}


def _feed_report(
    row: Mapping[Any, Any], rcpts: tuple[FeedReceipt, ...], mark: Mark | None
) -> FeedReport:
    attestation = json.loads(row["attestation"]) if row["attestation"] else None
    needs = wire.Need(int(row["needs"]))
    return FeedReport(
        id=str(row["id"]),
        kind=str(row["kind"]),
        priority=str(row["priority"]),
        status=str(row["status"]),
        people=int(row["people"]),
        needs=tuple(wire.need_labels(needs)),
        lat=row["lat"],
        lon=row["lon"],
        accuracy_m=accuracy_bound_m(row["accuracy_class"]),
        coarse=False,
        precision_m=accuracy_bound_m(row["accuracy_class"]),
        text=row["text"],
        sender=str(row["sender"]) or str(row["key_id"]),
        key_id=str(row["key_id"]),
        seq=int(row["seq"]),
        created_at=int(row["created_at"]),
        received_at=float(row["first_received_at"]),
        flags=tuple(flag_labels(int(row["flags"]))),
        node_num=None if attestation is None else attestation.get("node_num"),
        receipts=rcpts,
        mark=mark,
    )


__all__ = ["Feed", "FeedError", "FeedSettings", "Filters", "ReportFlag", "parse_filters"]

"""The feed's read queries: SQLAlchemy Core selects over the coordinator's tables.

Pure query builders and executors: each function takes an open Connection
(inside the caller's transaction) and returns plain dicts, for feed.py (the
JSON API, the web page, exports) and bench/coordinator.py, which times them
over a million stored reports. Nothing here writes.

Conventions shared by every function:

- Rows are ``reports`` columns without ``raw`` (the feed never shows packets),
  plus ``state`` (the coordinator's handling: "new" when ``report_state`` has
  no row) and ``state_note``, ``state_by``, ``state_at`` (None for "new").
- Time filters are on ``first_received_at``, the coordinator's own clock: a
  sender's clock may be wrong by hours and must not hide or pin a report.
  ``since`` is inclusive, ``until`` and ``before`` exclusive.
- ``bbox`` is (min lon, min lat, max lon, max lat) in degrees, inclusive;
  reports without a position never match a box.
- ``statuses`` are status labels ("sos", "need-supplies"), ``states`` are
  handling states ("new", "seen", "assigned", "resolved"), ``gateway`` a
  gateway key id: reports at least one of whose receipts came through it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from signalfire import wire

from .store import gateways, receipts, report_marks, report_state, reports, sender_latest

__all__ = [
    "counts",
    "latest_per_sender",
    "newest_reports",
    "report_with_receipts",
    "sender_history",
]

BBox = tuple[float, float, float, float]  # min lon, min lat, max lon, max lat

_STATE = sa.func.coalesce(report_state.c.state, "new").label("state")
_COLUMNS: tuple[Any, ...] = (
    *(c for c in reports.c if c.name != "raw"),
    _STATE,
    report_state.c.note.label("state_note"),
    report_state.c.by.label("state_by"),
    report_state.c.at.label("state_at"),
)
# Every report row goes with its handling, if any: one row per report (report_id is
# report_state's primary key), so the outer join never multiplies rows.
_FROM = reports.outerjoin(report_state, report_state.c.report_id == reports.c.id)


def _filters(
    *,
    statuses: Iterable[str] | None = None,
    since: float | None = None,
    until: float | None = None,
    bbox: BBox | None = None,
    gateway: str | None = None,
    states: Iterable[str] | None = None,
    before: float | None = None,
) -> list[sa.ColumnElement[bool]]:
    """WHERE terms over ``_FROM``; None (or an empty list) means no filter of that kind."""
    where: list[sa.ColumnElement[bool]] = []
    if statuses:
        where.append(reports.c.status.in_(sorted(set(statuses))))
    if since is not None:
        where.append(reports.c.first_received_at >= since)
    if until is not None:
        where.append(reports.c.first_received_at < until)
    if before is not None:
        where.append(reports.c.first_received_at < before)
    if bbox is not None:
        min_lon, min_lat, max_lon, max_lat = bbox
        where.append(reports.c.lon.between(min_lon, max_lon))
        where.append(reports.c.lat.between(min_lat, max_lat))
    if gateway is not None:
        # EXISTS, not a join: a report heard by that gateway over two uplinks is one row.
        heard = (
            sa.select(receipts.c.id)
            .where(receipts.c.gateway_key_id == gateway, receipts.c.report_id == reports.c.id)
            .exists()
        )
        where.append(heard)
    if states:
        wanted = set(states)
        handled = sorted(wanted - {"new"})
        terms: list[sa.ColumnElement[bool]] = []
        if "new" in wanted:
            terms.append(report_state.c.report_id.is_(None))
        if handled:
            terms.append(report_state.c.state.in_(handled))
        where.append(sa.or_(*terms))
    return where


def _rows(conn: Connection, query: sa.Select[Any]) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(query)]


def newest_reports(
    conn: Connection,
    *,
    statuses: Iterable[str] | None = None,
    since: float | None = None,
    until: float | None = None,
    bbox: BBox | None = None,
    gateway: str | None = None,
    states: Iterable[str] | None = None,
    limit: int = 200,
    before: float | None = None,
) -> list[dict[str, Any]]:
    """The newest reports by first receipt that match every filter given, newest first.

    Page on with ``before`` = the last row's ``first_received_at``.
    """
    where = _filters(
        statuses=statuses,
        since=since,
        until=until,
        bbox=bbox,
        gateway=gateway,
        states=states,
        before=before,
    )
    query = (
        sa.select(*_COLUMNS)
        .select_from(_FROM)
        .where(*where)
        .order_by(reports.c.first_received_at.desc(), reports.c.id.desc())
        .limit(limit)
    )
    return _rows(conn, query)


def latest_per_sender(
    conn: Connection,
    *,
    statuses: Iterable[str] | None = None,
    since: float | None = None,
    until: float | None = None,
    bbox: BBox | None = None,
    gateway: str | None = None,
    states: Iterable[str] | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    """Each sender's latest report, newest first: the ``limit`` senders whose word is newest.

    A sender's latest report is the one it created last (its own clock, then its
    sequence number): what it says now, even if an older report arrived later by a
    slower path. The filters apply to that latest report, so ``statuses=["sos"]``
    lists senders whose latest word is an SOS, not everyone who ever sent one. Senders
    are ordered by when that latest report first reached us, newest first (an old
    report arriving late does not move its sender up: it says nothing new).
    """
    where = _filters(
        statuses=statuses, since=since, until=until, bbox=bbox, gateway=gateway, states=states
    )
    # sender_latest holds each sender's latest report (kept at every insert): walk it
    # newest-received first (an index) and stop at `limit` matches.
    query = (
        sa.select(*_COLUMNS)
        .select_from(sender_latest.join(_FROM, reports.c.id == sender_latest.c.report_id))
        .where(*where)
        .order_by(sender_latest.c.first_received_at.desc(), sender_latest.c.report_id.desc())
        .limit(limit)
    )
    return _rows(conn, query)


def sender_history(conn: Connection, sender: str, limit: int = 200) -> list[dict[str, Any]]:
    """One sender's reports (``reports.sender``), the last created first."""
    query = (
        sa.select(*_COLUMNS)
        .select_from(_FROM)
        .where(reports.c.sender == sender)
        .order_by(reports.c.created_at.desc(), reports.c.seq.desc(), reports.c.id.desc())
        .limit(limit)
    )
    return _rows(conn, query)


_NEEDS = tuple((need.name.lower(), int(need)) for need in wire.Need if need.name)


def counts(
    conn: Connection,
    *,
    statuses: Iterable[str] | None = None,
    since: float | None = None,
    until: float | None = None,
    bbox: BBox | None = None,
    gateway: str | None = None,
    states: Iterable[str] | None = None,
) -> dict[str, Any]:
    """How many reports match, from how many senders, by status, by need and by state.

    ``{"total": int, "senders": int, "by_status": {label: n}, "by_need": {need: n},
    "by_state": {state: n}}``; a status, need or state no report has is 0, so the
    keys are always the same. A report asking for water and food counts once under each.
    """
    where = _filters(
        statuses=statuses, since=since, until=until, bbox=bbox, gateway=gateway, states=states
    )
    # One pass grouped by (status, state) gives total, by_status and by_state; the need
    # bits are summed in the same pass.
    need_sums = [
        sa.func.sum(sa.case((reports.c.needs.op("&")(bit) != 0, 1), else_=0)).label(name)
        for name, bit in _NEEDS
    ]
    grouped = (
        sa.select(reports.c.status, _STATE, sa.func.count().label("n"), *need_sums)
        .select_from(_FROM)
        .where(*where)
        .group_by(reports.c.status, _STATE)
    )
    by_status = {s.label: 0 for s in wire.Status}
    by_state = {s: 0 for s in ("new", "seen", "assigned", "resolved")}
    by_need = {name: 0 for name, _ in _NEEDS}
    total = 0
    for row in conn.execute(grouped):
        n = int(row.n)
        total += n
        by_status[row.status] = by_status.get(row.status, 0) + n
        by_state[row.state] = by_state.get(row.state, 0) + n
        for name, _ in _NEEDS:
            by_need[name] += int(row._mapping[name] or 0)
    # The handling join only when a state filter needs it: it costs a probe per row.
    source = _FROM if states else reports
    senders = (
        sa.select(sa.func.count(sa.distinct(reports.c.sender))).select_from(source).where(*where)
    )
    return {
        "total": total,
        "senders": int(conn.execute(senders).scalar_one()),
        "by_status": by_status,
        "by_need": by_need,
        "by_state": by_state,
    }


def report_with_receipts(conn: Connection, report_id: str) -> dict[str, Any] | None:
    """One report with its receipts (oldest first, with the gateway's name) and handling history.

    None when no report has that id. ``receipts`` are dicts of the receipts columns
    plus ``gateway_name`` (None for a gateway no longer enrolled); ``marks`` are the
    report_marks rows, oldest first.
    """
    query = sa.select(*_COLUMNS).select_from(_FROM).where(reports.c.id == report_id)
    row = conn.execute(query).first()
    if row is None:
        return None
    out = dict(row._mapping)
    heard = (
        sa.select(receipts, gateways.c.name.label("gateway_name"))
        .select_from(receipts.outerjoin(gateways, gateways.c.key_id == receipts.c.gateway_key_id))
        .where(receipts.c.report_id == report_id)
        .order_by(receipts.c.id)
    )
    out["receipts"] = _rows(conn, heard)
    marks = (
        sa.select(report_marks)
        .where(report_marks.c.report_id == report_id)
        .order_by(report_marks.c.id)
    )
    out["marks"] = _rows(conn, marks)
    return out


def receipts_for(conn: Connection, report_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """The receipts of several reports at once (a page of the feed), by report id."""
    out: dict[str, list[dict[str, Any]]] = {rid: [] for rid in report_ids}
    if not report_ids:
        return out
    query = (
        sa.select(receipts, gateways.c.name.label("gateway_name"))
        .select_from(receipts.outerjoin(gateways, gateways.c.key_id == receipts.c.gateway_key_id))
        .where(receipts.c.report_id.in_(list(report_ids)))
        .order_by(receipts.c.report_id, receipts.c.id)
    )
    for row in conn.execute(query):
        out.setdefault(row.report_id, []).append(dict(row._mapping))
    return out

"""What the demo counts, read straight from the stores the services write (read-only).

The summary's promise, "nothing a gateway acknowledged was lost", is
checked against the real files: a report counts as acknowledged once it
is committed to a gateway's store, and as delivered once it is in the
coordinator's database (opened, or kept until its sender's key arrives).
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path


def _connect(path: Path) -> sqlite3.Connection | None:
    if not path.exists():
        return None
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


def gateway_report_ids(store: Path) -> set[str]:
    """Ids of the reports (signed or attested) committed to a gateway's store."""
    conn = _connect(store)
    if conn is None:
        return set()
    try:
        rows = conn.execute(
            "SELECT DISTINCT packet_id FROM packets WHERE kind IN ('report', 'attested')"
        )
        return {bytes(r[0]).hex() for r in rows}
    except sqlite3.OperationalError:
        return set()  # not created yet: the gateway is starting
    finally:
        conn.close()


def gateway_backlog(store: Path) -> int:
    """Deliveries still pending on any uplink of a gateway."""
    conn = _connect(store)
    if conn is None:
        return 0
    try:
        row = conn.execute("SELECT count(*) FROM deliveries WHERE state = 'pending'").fetchone()
        return int(row[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


@dataclass
class CoordinatorView:
    reports: set[str] = field(default_factory=set)
    pending: set[str] = field(default_factory=set)  # kept until the sender's key arrives
    # Copies merged into a report: another gateway's attested report of the same text.
    aliases: set[str] = field(default_factory=set)
    receipts: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    by_kind: Counter[str] = field(default_factory=Counter)
    rejected: int = 0

    @property
    def delivered(self) -> set[str]:
        return self.reports | self.pending | self.aliases


def coordinator_view(db: Path) -> CoordinatorView:
    view = CoordinatorView()
    conn = _connect(db)
    if conn is None:
        return view
    try:
        for rid, status, kind in conn.execute("SELECT id, status, kind FROM reports"):
            view.reports.add(rid)
            view.by_status[status] += 1
            view.by_kind[kind] += 1
        view.pending = {r[0] for r in conn.execute("SELECT id FROM pending")}
        view.aliases = {
            r[0] for r in conn.execute("SELECT packet_id FROM receipts WHERE packet_id IS NOT NULL")
        }
        view.receipts = int(
            conn.execute(
                "SELECT count(*) FROM receipts WHERE report_id IN (SELECT id FROM reports)"
            ).fetchone()[0]
        )
        view.rejected = int(
            conn.execute("SELECT coalesce(sum(count), 0) FROM rejections").fetchone()[0]
        )
    except sqlite3.OperationalError:
        pass  # the schema is being created
    finally:
        conn.close()
    return view

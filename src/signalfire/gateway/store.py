"""The gateway's durable store: every accepted packet and its delivery state per uplink.

The daemon acknowledges a packet only after :meth:`GatewayStore.add` returns, and
``add`` returns only after the row is committed and fsync'd (SQLite WAL,
``synchronous=FULL``). From then on the packet survives crashes and power cuts
and stays pending on every configured uplink until that uplink's far side
acknowledges it.

Rows are unique on the exact bytes (``StoredPacket.copy_id``), not on the packet
id: see ``StoredPacket.copy_id`` for why a forged copy must not suppress the
genuine one.

Threads: one connection shared by every thread, guarded by a lock. SQLite lets
only one writer in at a time anyway; with our own lock a thread that has to wait
blocks in the kernel until the other is done, where SQLite's busy handler would
sleep and retry on a timer. The busy timeout still applies to other processes
that open the same file (``signalfire gateway status``, a bundle export).

Disk space: before storing a new packet the store looks at the free space of its
filesystem and refuses ROUTINE packets below ``min_free_bytes``, ELEVATED below
half of it, and always tries LIFE_SAFETY ones (``StoreShedding``). If SQLite
still runs out of room, the store gives back the WAL's copy of recent pages
(checkpoint and truncate) and tries once more; only then :class:`StoreFull` says
so. What was committed before is untouched, and the store takes new packets again
as soon as space is freed.

Clocks: all times are Unix seconds passed in by the caller (a gateway often has
no real-time clock and no NTP in a blackout). Retry times a clock that later
jumped backwards would push far into the future are treated as due (see ``due``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..wire.vocab import Priority
from .records import StoredPacket, Verified
from .store_schema import SCHEMA_VERSION, SchemaTooNew, StoreError, check_not_newer, migrate
from .store_schema import schema_version as read_schema_version

__all__ = [
    "DEFAULT_MIN_FREE_BYTES",
    "AddResult",
    "DeliveryRow",
    "GatewayStore",
    "SchemaTooNew",
    "StoreError",
    "StoreFull",
    "StoreShedding",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_MIN_FREE_BYTES = 64 * 1024 * 1024
DEFAULT_BUSY_TIMEOUT_S = 10.0
# After a checkpoint SQLite truncates the WAL back to this, so a burst does not keep
# disk space that the floor for routine packets would then miss.
WAL_SIZE_LIMIT = 4 * 1024 * 1024
# Purge deletes this many packets per transaction, letting the radio thread in between.
PURGE_BATCH = 500
# Spending on costly links is kept this long (a daily budget).
SPEND_WINDOW_S = 86_400.0

KINDS = ("report", "attested", "announcement")


def _priority_name(priority: int) -> str:
    return Priority(priority).label  # "routine", "elevated", "life-safety"


class StoreShedding(StoreError):
    """A new packet was refused because disk space is low (never a life-safety one)."""

    def __init__(self, message: str, *, priority: int, free_bytes: int, floor_bytes: int) -> None:
        super().__init__(message)
        self.priority = priority
        self.free_bytes = free_bytes
        self.floor_bytes = floor_bytes


class StoreFull(StoreError):
    """SQLite found the disk full: the packet (or batch) was not stored."""


@dataclass(frozen=True, slots=True)
class AddResult:
    """What :meth:`GatewayStore.add_many` did with each packet."""

    new: list[bytes]  # copy ids stored by this call
    duplicates: list[bytes]  # copy ids that were already stored
    shed: list[StoreShedding]  # one per packet refused for lack of space, in order


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    uplink: str
    state: str
    attempts: int
    next_attempt_at: float
    last_error: str | None
    updated_at: float


_PACKET_COLUMNS = (
    "p.packet_id, p.raw, p.kind, p.priority, p.key_id, p.seq, p.received_at,"
    " p.radio_node, p.rx_snr, p.rx_rssi, p.hops, p.verified"
)


# supersede_older's rule (see there), for every sender of an uplink's pending rows...
_SUPERSEDE_ALL = (
    "UPDATE deliveries SET state = 'superseded', updated_at = :now"
    " WHERE uplink = :uplink AND state = 'pending' AND priority < :life AND announcement = 0"
    " AND EXISTS (SELECT 1 FROM packets AS old, packets AS new, deliveries AS nd"
    "   WHERE old.n = deliveries.packet AND old.kind = 'report'"
    "   AND new.key_id = old.key_id AND new.kind = 'report' AND new.seq > old.seq"
    "   AND new.verified = :verified"
    "   AND nd.packet = new.n AND nd.uplink = :uplink AND nd.state IN ('pending', 'done'))"
)
# ...and for one sender: its reports found through packets_by_sender, their delivery
# rows by primary key (the unary + keeps SQLite from scanning the uplink's whole
# queue instead), so a pass after one new report costs microseconds, not a scan.
_SUPERSEDE_SENDER = (
    "UPDATE deliveries SET state = 'superseded', updated_at = :now"
    " WHERE packet IN (SELECT old.n FROM packets AS old"
    "   WHERE old.key_id = :key AND old.kind = 'report' AND old.seq < ("
    "     SELECT max(new.seq) FROM packets AS new JOIN deliveries AS nd ON nd.packet = new.n"
    "     WHERE new.key_id = :key AND new.kind = 'report' AND new.verified = :verified"
    "     AND nd.uplink = :uplink AND nd.state IN ('pending', 'done')))"
    " AND +uplink = :uplink AND state = 'pending' AND +priority < :life"
)


def _packet_from_row(row: Sequence[Any]) -> StoredPacket:
    return StoredPacket(
        id=bytes(row[0]),
        raw=bytes(row[1]),
        kind=str(row[2]),
        priority=int(row[3]),
        key_id=bytes(row[4]),
        seq=row[5],
        received_at=float(row[6]),
        radio_node=row[7],
        rx_snr=row[8],
        rx_rssi=row[9],
        hops=row[10],
        verified=Verified(row[11]),
    )


def _is_disk_full(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF == sqlite3.SQLITE_FULL:
        return True
    return "database or disk is full" in str(exc)


def _spend_entries(row: Sequence[Any] | None) -> list[tuple[float, int]]:
    if row is None:
        return []
    try:
        return [(float(at), int(units)) for at, units in json.loads(row[0])]
    except (ValueError, TypeError):
        log.warning("gateway store: unreadable spending record, starting it again")
        return []


def _check_packet(packet: StoredPacket) -> None:
    # The schema's CHECKs would catch these too, but as an IntegrityError that names
    # a constraint instead of the caller's mistake.
    if packet.kind not in KINDS:
        raise ValueError(f"packet kind must be one of {', '.join(KINDS)}, not {packet.kind!r}")
    if packet.priority not in tuple(Priority):
        raise ValueError(f"packet priority must be 0, 1 or 2, not {packet.priority!r}")
    if not packet.raw:
        raise ValueError("packet has no bytes")


def _footprint(packet: StoredPacket) -> int:
    """Rough disk cost of storing a packet (row, indexes, one delivery row; WAL and
    database copies), to keep counting free space down through a batch."""
    return 2 * (len(packet.raw) + 300)


class GatewayStore:
    """SQLite store of accepted packets and their per-uplink delivery state."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        min_free_bytes: int = DEFAULT_MIN_FREE_BYTES,
        busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
    ) -> None:
        if min_free_bytes < 0:
            raise ValueError("min_free_bytes must be >= 0")
        self.path = Path(path)
        self.min_free_bytes = min_free_bytes
        self._busy_timeout_s = busy_timeout_s
        self._lock = threading.Lock()
        # Shed and full events not yet written: when the disk is full even a counter
        # cannot be committed, so they wait here and ride along with the next commit.
        self._unflushed: Counter[str] = Counter()
        self._configured: set[str] = set()  # uplinks known to be in the uplinks table
        # supersede_older runs before every batch on a costly link; after one full pass
        # it only needs to look at senders with new verified reports since. Per uplink:
        # those senders, and PRAGMA data_version at the pass (it changes when another
        # process writes, and then a full pass is due again).
        self._supersede_senders: dict[str, set[bytes]] = {}
        self._supersede_data_version: dict[str, int] = {}
        self._conn = self._open()
        self._page_size = int(self._conn.execute("PRAGMA page_size").fetchone()[0])

    # -- opening -------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        where = str(self.path)
        if not self.path.parent.is_dir():
            raise StoreError(
                f"cannot open the gateway store {where}: directory {self.path.parent} "
                "does not exist (create it, owned by the user the gateway runs as)"
            )
        conn = sqlite3.connect(
            where,
            timeout=self._busy_timeout_s,
            isolation_level=None,  # we issue BEGIN IMMEDIATE / COMMIT ourselves
            check_same_thread=False,  # shared across threads under self._lock
        )
        try:
            # Read the version before anything writes to the file: a store from a newer
            # signalfire, or some other database, must be left exactly as it was.
            version = read_schema_version(conn, where)
            check_not_newer(version, where)
            conn.execute("PRAGMA foreign_keys = ON")
            mode = str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
            if mode.lower() != "wal":
                raise StoreError(
                    f"{where}: SQLite could not switch to WAL mode (got {mode!r}); the "
                    "filesystem may not support it (network filesystems often do not): "
                    "put the store on a local disk"
                )
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA fullfsync = ON")  # macOS: fsync alone does not reach the disk
            conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
            # Sorts and temporary indexes in memory: stats and purge keep working on a
            # full disk, which is exactly when the operator needs them.
            conn.execute("PRAGMA temp_store = MEMORY")
            # Purged packets are zeroed in the file, not left in free pages: a seized
            # gateway must not give back what it delivered and deleted (security.md §5.5).
            conn.execute("PRAGMA secure_delete = ON")
            migrate(conn, where, time.time())
            if version == 0:
                self._fsync_directory()
        except sqlite3.DatabaseError as exc:
            conn.close()
            if _is_disk_full(exc):
                raise StoreFull(self._full_message("the store could not be opened")) from exc
            raise StoreError(
                f"cannot open the gateway store {where}: {exc} (if the file is not a "
                "signalfire store, point the gateway at another path)"
            ) from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def _fsync_directory(self) -> None:
        # A new file's directory entry is only durable once the directory is synced;
        # SQLite does this for the WAL but not for the database file it creates.
        fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def close(self) -> None:
        with self._lock:
            # On a full disk optimize may fail: not worth failing a clean shutdown for.
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("PRAGMA optimize")
            self._conn.close()

    def __enter__(self) -> GatewayStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transactions --------------------------------------------------------

    @contextlib.contextmanager
    def _write(self, counts: Counter[str]) -> Iterator[sqlite3.Connection]:
        """One write transaction, committed (fsync'd) on leaving; the caller holds the lock.

        ``counts`` (shed packets...) may be added to by the body: they are written in
        the same transaction, with any events that earlier commits could not save.
        """
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            yield conn
            for name, amount in (self._unflushed + counts).items():
                conn.execute(
                    "INSERT INTO counters VALUES (?, ?)"
                    " ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
                    (name, amount),
                )
            conn.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        self._unflushed.clear()

    def _transact(self, what: str, body: Callable[[sqlite3.Connection, Counter[str]], T]) -> T:
        """Run ``body`` in a committed write transaction; the caller holds the lock.

        On a full disk the WAL is checkpointed and truncated first and the body tried
        once more: the WAL holds a copy of recent pages, and on a nearly full disk
        that copy is often what fills it. ``what`` names, for the StoreFull message,
        what was not saved.
        """
        for attempt in range(2):
            counts: Counter[str] = Counter()
            try:
                with self._write(counts) as conn:
                    result = body(conn, counts)
                return result
            except sqlite3.Error as exc:
                full = _is_disk_full(exc)
                if full and attempt == 0 and self._reclaim_wal():
                    continue  # the retry counts its own events again
                self._unflushed.update(counts)  # they happened, saved or not
                if not full:
                    raise
                self._unflushed["full"] += 1
                raise StoreFull(self._full_message(what)) from exc
        raise AssertionError("unreachable")

    def _rollback(self) -> None:
        # After SQLITE_FULL SQLite may already have rolled back by itself.
        if self._conn.in_transaction:
            try:
                self._conn.execute("ROLLBACK")
            except sqlite3.Error:
                log.exception("gateway store: rollback failed")

    def _reclaim_wal(self) -> bool:
        """Copy the WAL into the database and truncate it; True if it was emptied."""
        try:
            (busy, _, _) = self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.Error:
            return False  # e.g. the database file itself cannot grow
        return int(busy) == 0

    def _full_message(self, what: str) -> str:
        return (
            f"the disk holding the gateway store {self.path} is full: {what}. Nothing "
            "already stored is lost. Free space on that filesystem (delete old logs or "
            "other files, or purge delivered packets) and the gateway stores new packets "
            "again."
        )

    def _room(self) -> int:
        """Free bytes for new packets, after giving back the WAL's room if that is low."""
        free = self._free_bytes()
        if free < self.min_free_bytes and self._reclaim_wal():
            free = self._free_bytes()
        return free

    def _free_bytes(self) -> int:
        st = os.statvfs(self.path.parent)
        # Pages freed by a purge are reused before the file grows, so they count as room.
        free_pages = int(self._conn.execute("PRAGMA freelist_count").fetchone()[0])
        return st.f_bavail * st.f_frsize + free_pages * self._page_size

    # -- intake --------------------------------------------------------------

    def add(self, packet: StoredPacket, uplinks: Sequence[str]) -> bool:
        """Store ``packet``, pending on each of ``uplinks``; True if these bytes are new.

        Returns only after the commit reached the disk. Raises StoreShedding (not
        stored: disk space low, routine or elevated) or StoreFull (not stored: disk
        full); in both cases do not acknowledge the packet.
        """
        result = self.add_many([packet], uplinks)
        if result.shed:
            raise result.shed[0]
        return bool(result.new)

    def add_many(self, packets: Sequence[StoredPacket], uplinks: Sequence[str]) -> AddResult:
        """Store several packets in one transaction (one fsync): a bundle import.

        Shed packets are reported in the result, not raised. On StoreFull nothing of
        this call is stored.
        """
        for packet in packets:
            _check_packet(packet)
        names = list(dict.fromkeys(uplinks))
        with self._lock:
            room = self._room() if self.min_free_bytes else 0
            what = "the packet was NOT stored (do not acknowledge it)"
            if len(packets) != 1:
                what = f"none of the {len(packets)} packets of this batch was stored"

            def body(conn: sqlite3.Connection, counts: Counter[str]) -> AddResult:
                result = AddResult([], [], [])
                budget = room
                self._register_uplinks(conn, names)
                for packet in packets:
                    outcome = self._add_one(conn, packet, names, budget)
                    if isinstance(outcome, StoreShedding):
                        counts[f"shed_{_priority_name(packet.priority)}"] += 1
                        result.shed.append(outcome)
                    elif outcome:
                        result.new.append(packet.copy_id)
                        budget -= _footprint(packet)
                    else:
                        result.duplicates.append(packet.copy_id)
                return result

            result = self._transact(what, body)
            self._configured.update(names)
            senders = {
                p.key_id for p in packets if p.kind == "report" and p.verified is Verified.VERIFIED
            }
            for pending in self._supersede_senders.values():
                pending.update(senders)
        return result

    def _register_uplinks(self, conn: sqlite3.Connection, names: Sequence[str]) -> None:
        now = time.time()
        for name in names:
            if name not in self._configured:
                conn.execute(
                    "INSERT INTO uplinks VALUES (?, 1, ?)"
                    " ON CONFLICT (name) DO UPDATE SET configured = 1",
                    (name, now),
                )

    def _add_one(
        self, conn: sqlite3.Connection, packet: StoredPacket, uplinks: Sequence[str], room: int
    ) -> bool | StoreShedding:
        copy_id = packet.copy_id
        row = conn.execute(
            "SELECT n, verified FROM packets WHERE copy_id = ?", (copy_id,)
        ).fetchone()
        if row is not None:
            n, verified = int(row[0]), str(row[1])
            if packet.verified is Verified.VERIFIED and verified != Verified.VERIFIED:
                conn.execute("UPDATE packets SET verified = ? WHERE n = ?", (Verified.VERIFIED, n))
            # A copy stored before an uplink was configured gets its row now; rows that
            # exist keep their state (hearing a packet again never re-sends it).
            self._insert_deliveries(conn, n, packet, uplinks)
            return False
        refusal = self._shedding(packet.priority, room)
        if refusal is not None:
            return refusal
        cursor = conn.execute(
            "INSERT INTO packets (copy_id, packet_id, raw, kind, priority, key_id, seq,"
            " received_at, radio_node, rx_snr, rx_rssi, hops, verified)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                copy_id,
                packet.id,
                packet.raw,
                packet.kind,
                int(packet.priority),
                packet.key_id,
                packet.seq,
                packet.received_at,
                packet.radio_node,
                packet.rx_snr,
                packet.rx_rssi,
                packet.hops,
                str(packet.verified),
            ),
        )
        assert cursor.lastrowid is not None
        self._insert_deliveries(conn, cursor.lastrowid, packet, uplinks)
        return True

    def _insert_deliveries(
        self, conn: sqlite3.Connection, n: int, packet: StoredPacket, uplinks: Sequence[str]
    ) -> None:
        # next_attempt_at 0: due at once, whatever the clock says.
        conn.executemany(
            "INSERT OR IGNORE INTO deliveries (packet, uplink, state, priority, announcement,"
            " received_at, updated_at) VALUES (?, ?, 'pending', ?, ?, ?, ?)",
            [
                (
                    n,
                    name,
                    int(packet.priority),
                    int(packet.kind == "announcement"),
                    packet.received_at,
                    packet.received_at,
                )
                for name in uplinks
            ],
        )

    def _shedding(self, priority: int, room: int) -> StoreShedding | None:
        if priority >= Priority.LIFE_SAFETY:
            return None  # always attempted: only a truly full disk stops these
        floor = self.min_free_bytes if priority == Priority.ROUTINE else self.min_free_bytes // 2
        if floor == 0 or room >= floor:
            return None
        name = _priority_name(priority)
        return StoreShedding(
            f"disk space is low where the gateway store {self.path} lives: "
            f"{room / 1e6:.2f} MB free, below the {floor / 1e6:.2f} MB kept back for more "
            f"urgent reports, so this {name} packet was NOT stored (do not acknowledge it). "
            "Life-safety packets are still stored. Free space on that filesystem, or purge "
            "delivered packets, to store routine packets again.",
            priority=priority,
            free_bytes=room,
            floor_bytes=floor,
        )

    def ensure_uplinks(self, names: Sequence[str], now: float | None = None) -> int:
        """Make ``names`` the configured uplinks; returns delivery rows added.

        A newly configured uplink gets a pending row for every stored packet (each
        uplink has its own state, whatever other uplinks delivered). Uplinks no
        longer configured keep their rows, untouched, and show as orphaned in stats.
        """
        when = time.time() if now is None else now
        unique = list(dict.fromkeys(names))

        def body(conn: sqlite3.Connection, _: Counter[str]) -> int:
            conn.execute(
                "UPDATE uplinks SET configured = 0"
                " WHERE name NOT IN (SELECT value FROM json_each(?))",
                (json.dumps(unique),),
            )
            self._register_uplinks(conn, unique)
            added = 0
            for name in unique:
                cursor = conn.execute(
                    "INSERT OR IGNORE INTO deliveries (packet, uplink, state, priority,"
                    " announcement, received_at, updated_at)"
                    " SELECT n, ?, 'pending', priority, kind = 'announcement', received_at, ?"
                    " FROM packets",
                    (name, when),
                )
                added += max(0, cursor.rowcount)
            return added

        with self._lock:
            self._configured.clear()  # re-registered below, configured = 1 again
            self._supersede_senders.clear()  # new rows: the next passes look at everything
            added = self._transact("the uplink configuration was not saved", body)
            self._configured = set(unique)
        return added

    # -- delivery ------------------------------------------------------------

    def due(
        self, uplink: str, now: float, limit: int, max_total_bytes: int | None = None
    ) -> list[StoredPacket]:
        """Pending packets whose retry time has come, in the order to send them.

        Announcements first, whatever their priority (a sender's key must reach
        the coordinator before the reports it opens, or an SOS waits there behind
        the routine backlog for its key; there is one small announcement per
        sender); then life-safety, elevated, routine; then oldest first.

        With ``max_total_bytes`` the list stops before the packet that would exceed
        it, except that the first packet always comes (a link that carries less than
        one packet must split it; the store cannot shrink it).

        A row last touched at a time later than ``now`` is due whatever its retry
        time: the clock went backwards (a Raspberry Pi without RTC rebooting), and
        the retry time computed before is meaningless.
        """
        if limit <= 0:
            return []
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_PACKET_COLUMNS} FROM deliveries AS d JOIN packets AS p"  # noqa: S608 - constant columns
                " ON p.n = d.packet"
                " WHERE d.uplink = ? AND d.state = 'pending'"
                " AND (d.next_attempt_at <= ? OR d.updated_at > ?)"
                " ORDER BY d.announcement DESC, d.priority DESC, d.received_at, d.packet"
                " LIMIT ?",
                (uplink, now, now, limit),
            )
            packets: list[StoredPacket] = []
            total = 0
            for row in rows:
                size = len(row[1])
                if max_total_bytes is not None and packets and total + size > max_total_bytes:
                    break
                packets.append(_packet_from_row(row))
                total += size
            rows.close()
        return packets

    def next_due_at(self, uplink: str) -> float | None:
        """The earliest retry time of a pending packet on ``uplink``; None if none pending.

        A time in the past means something is due now. New packets are due at once
        (time 0): the daemon wakes the scheduler itself when it adds one.
        """
        with self._lock:
            (when,) = self._conn.execute(
                "SELECT min(next_attempt_at) FROM deliveries"
                " WHERE uplink = ? AND state = 'pending'",
                (uplink,),
            ).fetchone()
        return None if when is None else float(when)

    def _set_state(self, sql: str, params: list[tuple[Any, ...]]) -> int:
        if not params:
            return 0
        with self._lock:
            return self._transact(
                "this delivery state was not saved (the packets will be sent again)",
                lambda conn, _: max(0, conn.executemany(sql, params).rowcount),
            )

    def mark_done(self, uplink: str, copy_ids: Sequence[bytes], now: float) -> None:
        """The far side acknowledged these copies: never send them on ``uplink`` again."""
        self._set_state(
            "UPDATE deliveries SET state = 'done', updated_at = ?, last_error = NULL"
            " WHERE uplink = ? AND packet = (SELECT n FROM packets WHERE copy_id = ?)",
            [(now, uplink, copy_id) for copy_id in copy_ids],
        )

    def mark_rejected(
        self, uplink: str, copy_ids: Sequence[bytes], reason: str, now: float
    ) -> None:
        """The far side refused these copies for good (e.g. a forged signature): stop."""
        changed = self._set_state(
            "UPDATE deliveries SET state = 'rejected', updated_at = ?, last_error = ?"
            " WHERE uplink = ? AND state != 'done'"
            " AND packet = (SELECT n FROM packets WHERE copy_id = ?)",
            [(now, reason, uplink, copy_id) for copy_id in copy_ids],
        )
        if changed:
            log.error(
                "uplink %s rejected %d packet copies for good, they will not be retried "
                "on it: %s (copies %s)",
                uplink,
                changed,
                reason,
                ", ".join(c.hex() for c in copy_ids[:10]) + (" ..." if len(copy_ids) > 10 else ""),
            )

    def mark_failed(
        self, uplink: str, copy_ids: Sequence[bytes], error: str, next_attempt_at: float, now: float
    ) -> None:
        """Delivery failed or was not acknowledged: retry at ``next_attempt_at``."""
        self._set_state(
            "UPDATE deliveries SET attempts = attempts + 1, last_error = ?,"
            " next_attempt_at = ?, updated_at = ?"
            " WHERE uplink = ? AND state = 'pending'"
            " AND packet = (SELECT n FROM packets WHERE copy_id = ?)",
            [(error, next_attempt_at, now, uplink, copy_id) for copy_id in copy_ids],
        )

    def supersede_older(self, uplink: str, now: float) -> int:
        """On a costly link, drop pending routine/elevated reports a newer one replaces.

        A pending ROUTINE or ELEVATED civilian report becomes ``superseded`` on this
        uplink (only) when the same sender has a report with a higher sequence
        number that is pending or done on it. Returns how many rows changed.

        What never supersedes or is superseded, and why:
        - life-safety reports (any one may be the one that matters) and announcements
          (the sender's later reports cannot be opened without them);
        - attested reports: they carry the attesting gateway's key id, shared by every
          stock radio it wrapped, so "same sender" does not hold;
        - the newer report must have VERIFIED here: an unchecked copy could be a
          forgery with a huge sequence number, made to silence someone;
        - newer means a higher sequence number, not a later arrival: a replayed old
          report arrives late but carries its old number.
        The packets stay in the store and pending on every other uplink.
        """
        params: dict[str, Any] = {
            "now": now,
            "uplink": uplink,
            "life": int(Priority.LIFE_SAFETY),
            "verified": str(Verified.VERIFIED),
        }

        def everyone(conn: sqlite3.Connection, _: Counter[str]) -> int:
            return max(0, conn.execute(_SUPERSEDE_ALL, params).rowcount)

        def only(senders: set[bytes]) -> Callable[[sqlite3.Connection, Counter[str]], int]:
            def body(conn: sqlite3.Connection, _: Counter[str]) -> int:
                rows = [{**params, "key": key} for key in senders]
                return max(0, conn.executemany(_SUPERSEDE_SENDER, rows).rowcount)

            return body

        with self._lock:
            version = int(self._conn.execute("PRAGMA data_version").fetchone()[0])
            senders = self._supersede_senders.get(uplink)
            if senders is None or self._supersede_data_version.get(uplink) != version:
                changed = self._transact("superseded reports were not marked", everyone)
            elif senders:
                changed = self._transact("superseded reports were not marked", only(senders))
            else:
                return 0
            self._supersede_senders[uplink] = set()
            self._supersede_data_version[uplink] = version
        if changed:
            log.info("uplink %s: %d older reports superseded by newer ones", uplink, changed)
        return changed

    # -- spending on costly links ---------------------------------------------

    def record_spend(self, uplink: str, units: int, now: float) -> None:
        """Remember that ``uplink`` spent ``units`` (SBD credits, SMS) at ``now``.

        Kept for a day (SPEND_WINDOW_S) in the status table, committed durably: a
        gateway that restarts must not start its daily budget again from nothing.
        """
        if units <= 0:
            return
        key = f"spend:{uplink}"

        def body(conn: sqlite3.Connection, _: Counter[str]) -> None:
            row = conn.execute("SELECT value FROM status WHERE key = ?", (key,)).fetchone()
            entries = _spend_entries(row)
            # Entries "from the future" stay: the clock went back, and forgetting what
            # was spent would let the link spend it again.
            kept = [e for e in entries if e[0] > now - SPEND_WINDOW_S or e[0] > now]
            kept.append((now, units))
            conn.execute(
                "INSERT INTO status VALUES (?, ?, ?) ON CONFLICT (key)"
                " DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                (key, json.dumps(kept), now),
            )

        with self._lock:
            self._transact("the spending was not recorded", body)

    def spent(self, uplink: str, since: float) -> tuple[int, float | None]:
        """Units ``uplink`` spent after ``since``, and when the oldest of them was spent."""
        with self._lock:
            row = self._conn.execute(
                "SELECT value FROM status WHERE key = ?", (f"spend:{uplink}",)
            ).fetchone()
        inside = [e for e in _spend_entries(row) if e[0] > since]
        if not inside:
            return 0, None
        return sum(units for _, units in inside), min(at for at, _ in inside)

    # -- reading -------------------------------------------------------------

    def get(self, copy_id: bytes) -> StoredPacket | None:
        with self._lock:
            row = self._conn.execute(
                f"SELECT {_PACKET_COLUMNS} FROM packets AS p WHERE p.copy_id = ?",  # noqa: S608 - constant columns
                (copy_id,),
            ).fetchone()
        return None if row is None else _packet_from_row(row)

    def copies(self, packet_id: bytes) -> list[StoredPacket]:
        """Every stored copy (distinct bytes) of one packet id, in arrival order."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_PACKET_COLUMNS} FROM packets AS p WHERE p.packet_id = ?"  # noqa: S608 - constant columns
                " ORDER BY p.n",
                (packet_id,),
            ).fetchall()
        return [_packet_from_row(row) for row in rows]

    def deliveries(self, copy_id: bytes) -> dict[str, DeliveryRow]:
        """The delivery state of one copy on each uplink that has a row for it."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT d.uplink, d.state, d.attempts, d.next_attempt_at, d.last_error,"
                " d.updated_at FROM deliveries AS d JOIN packets AS p ON p.n = d.packet"
                " WHERE p.copy_id = ?",
                (copy_id,),
            ).fetchall()
        return {
            str(r[0]): DeliveryRow(str(r[0]), str(r[1]), int(r[2]), float(r[3]), r[4], float(r[5]))
            for r in rows
        }

    def undelivered(self, limit: int | None = None) -> list[StoredPacket]:
        """Packets no uplink has delivered yet (still pending somewhere, done nowhere).

        For a bundle export: in delivery order, as ``due`` gives them, so a USB stick
        that fills up carries the life-safety packets.
        """
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_PACKET_COLUMNS} FROM packets AS p"  # noqa: S608 - constant columns
                " WHERE EXISTS (SELECT 1 FROM deliveries AS d"
                "   WHERE d.packet = p.n AND d.state = 'pending')"
                " AND NOT EXISTS (SELECT 1 FROM deliveries AS d"
                "   WHERE d.packet = p.n AND d.state = 'done')"
                " ORDER BY p.kind = 'announcement' DESC, p.priority DESC, p.received_at, p.n"
                " LIMIT ?",
                (-1 if limit is None else limit,),
            ).fetchall()
        return [_packet_from_row(row) for row in rows]

    def announcements(self) -> list[bytes]:
        """Every stored announcement, as heard and in arrival order, to rebuild a Keyring.

        Unverified as stored: a forged one is here too. Feed each to Keyring.add and
        skip those it refuses.
        """
        with self._lock:
            rows = self._conn.execute(
                "SELECT raw FROM packets WHERE kind = 'announcement' ORDER BY n"
            ).fetchall()
        return [bytes(raw) for (raw,) in rows]

    # -- retention -----------------------------------------------------------

    def purge_delivered(self, older_than: float, uplinks: Sequence[str]) -> int:
        """Delete packets received before ``older_than`` and finished on every uplink given.

        Finished means done, superseded or rejected: none of them will be sent on that
        uplink again, and keeping them forever would slowly eat the room kept for new
        packets. An uplink given that has no row for a packet counts as not finished.
        Announcements are kept while any report of their key id is. Returns packets
        deleted. Works in small transactions so the radio thread is never held up long.
        """
        unique = list(dict.fromkeys(uplinks))
        if not unique:
            raise ValueError("purge_delivered needs at least one uplink: none would delete all")
        params = {
            "older_than": older_than,
            "uplinks": json.dumps(unique),
            "count": len(unique),
            "batch": PURGE_BATCH,
        }
        finished = (
            "(SELECT count(*) FROM deliveries AS d WHERE d.packet = p.n"
            " AND d.uplink IN (SELECT value FROM json_each(:uplinks))"
            " AND d.state IN ('done', 'rejected', 'superseded')) = :count"
        )
        # Walked in rowid order from where the last batch stopped, so old packets that
        # must stay (pending somewhere) are looked at once per purge, not once per batch.
        reports = (
            "SELECT p.n FROM packets AS p WHERE p.n > :after AND p.received_at < :older_than"  # noqa: S608 - constant SQL
            f" AND p.kind != 'announcement' AND {finished} ORDER BY p.n LIMIT :batch"
        )
        announcements = (
            "SELECT p.n FROM packets AS p WHERE p.n > :after AND p.received_at < :older_than"  # noqa: S608 - constant SQL
            f" AND p.kind = 'announcement' AND {finished}"
            " AND NOT EXISTS (SELECT 1 FROM packets AS r"
            "   WHERE r.key_id = p.key_id AND r.kind != 'announcement')"
            " ORDER BY p.n LIMIT :batch"
        )
        deleted = 0
        for select in (reports, announcements):
            after = 0
            while True:

                def body(
                    conn: sqlite3.Connection, _: Counter[str], sql: str = select, start: int = after
                ) -> list[int]:
                    found = [int(n) for (n,) in conn.execute(sql, {**params, "after": start})]
                    conn.executemany("DELETE FROM packets WHERE n = ?", [(n,) for n in found])
                    return found

                with self._lock:
                    batch = self._transact("the purge stopped", body)
                deleted += len(batch)
                if len(batch) < PURGE_BATCH:
                    break
                after = batch[-1]
        if deleted:
            # The WAL still holds the pages as they were before the deletes: copy it back
            # and truncate it, so the deleted bytes are nowhere in the store's files.
            with self._lock:
                emptied = self._reclaim_wal()
            log.info(
                "gateway store: purged %d delivered packets%s",
                deleted, "" if emptied else " (the WAL is busy; it is emptied at a later pass)",
            )  # fmt: skip
        return deleted

    # -- operator view -------------------------------------------------------

    def set_status(self, key: str, value_json: str) -> None:
        """Record one piece of daemon status (radio state, an uplink's last success...)."""
        json.loads(value_json)  # raise here, in the caller, not as a CHECK failure
        with self._lock:
            # Status is rewritten often and a power cut losing the last value costs
            # nothing, while an fsync per update wears an SD card: this one commit
            # waits for the disk only at the next durable commit.
            self._conn.execute("PRAGMA synchronous = NORMAL")
            try:
                self._transact(
                    "the status was not saved",
                    lambda conn, _: conn.execute(
                        "INSERT INTO status VALUES (?, ?, ?) ON CONFLICT (key)"
                        " DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                        (key, value_json, time.time()),
                    ),
                )
            finally:
                self._conn.execute("PRAGMA synchronous = FULL")

    def status(self) -> dict[str, Any]:
        with self._lock:
            rows = self._conn.execute("SELECT key, value FROM status ORDER BY key").fetchall()
        return {str(key): json.loads(value) for key, value in rows}

    def stats(self, now: float) -> dict[str, Any]:
        """Counts for the operator: packets, per-uplink queues, reports per hour, shedding."""
        names = [p.label for p in Priority]
        with self._lock:
            conn = self._conn
            by_kind: dict[str, dict[str, int]] = {k: dict.fromkeys(names, 0) for k in KINDS}
            for kind, priority, count in conn.execute(
                "SELECT kind, priority, count(*) FROM packets GROUP BY kind, priority"
            ):
                by_kind[kind][_priority_name(priority)] = int(count)

            uplinks: dict[str, dict[str, Any]] = {}
            for name, configured in conn.execute("SELECT name, configured FROM uplinks"):
                uplinks[name] = {
                    "configured": bool(configured),
                    "orphaned": not configured,
                    "pending": dict.fromkeys(names, 0),
                    "pending_total": 0,
                    "done": 0,
                    "rejected": 0,
                    "superseded": 0,
                    "oldest_pending_received_at": None,
                    "next_due_at": None,
                }
            for name, state, priority, count, oldest, next_due in conn.execute(
                "SELECT uplink, state, priority, count(*), min(received_at),"
                " min(next_attempt_at) FROM deliveries GROUP BY uplink, state, priority"
            ):
                entry = uplinks[name]
                if state == "pending":
                    entry["pending"][_priority_name(priority)] = int(count)
                    entry["pending_total"] += int(count)
                    for key, value in (
                        ("oldest_pending_received_at", oldest),
                        ("next_due_at", next_due),
                    ):
                        if entry[key] is None or value < entry[key]:
                            entry[key] = float(value)
                else:
                    entry[state] += int(count)

            hourly = [0] * 24
            for hours_ago, count in conn.execute(
                "SELECT CAST((:now - received_at) / 3600 AS INTEGER), count(DISTINCT packet_id)"
                " FROM packets WHERE kind != 'announcement'"
                " AND received_at > :now - 86400 AND received_at <= :now GROUP BY 1",
                {"now": now},
            ):
                if 0 <= hours_ago < 24:
                    hourly[23 - int(hours_ago)] = int(count)

            counters: Counter[str] = Counter(
                {str(k): int(v) for k, v in conn.execute("SELECT name, value FROM counters")}
            )
            counters.update(self._unflushed)
            page_count = int(conn.execute("PRAGMA page_count").fetchone()[0])
            free = self._free_bytes()
        return {
            "schema_version": SCHEMA_VERSION,
            "packets": {
                "total": sum(sum(v.values()) for v in by_kind.values()),
                "by_kind": by_kind,
            },
            "uplinks": uplinks,
            # Distinct packet ids (a forged copy is not a second report), oldest hour
            # first; the last entry is the hour ending at ``now``.
            "reports_per_hour": hourly,
            "shed": {
                "routine": counters["shed_routine"],
                "elevated": counters["shed_elevated"],
            },
            "full": counters["full"],
            "db_bytes": page_count * self._page_size,
            "free_bytes": free,
        }

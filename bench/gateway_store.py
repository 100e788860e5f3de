"""Gateway store benchmark: durable intake and backlog drain of signalfire.gateway.store.

Usage::

    python bench/gateway_store.py [--quick] [--markdown] [--dir DIR]

Prints, to stdout, the machine it ran on (CPU, Python, SQLite, and the filesystem
the database lives on, which decides what an fsync costs) and a table of

- durable intake: ``add`` of one report at a time, each committed and fsync'd
  before it returns (what the daemon does before acknowledging), single thread,
  with the median and 99th-percentile time of one ``add``;
- the same report heard again (a duplicate through another relay: nothing to write);
- batched intake: ``add_many`` of 100 reports per transaction (a USB bundle import);
- the drain of a 10,000-packet backlog through ``due(limit=100)`` + ``mark_done``,
  as an uplink worker does when its link comes back, checking on the way that the
  announcements came out first and then every life-safety packet before any other;
- ``supersede_older`` and ``stats`` over that backlog (a costly link calls the first
  before every batch; ``signalfire gateway status`` calls the second).

Packets are synthetic (random bytes of realistic sizes: 107-166-byte reports, 142-byte
announcements): the store never looks inside them. ``--quick`` shortens the intake
runs and drains a 2,000-packet backlog (for tests). ``--dir`` puts the database on
another filesystem (say an SD card) instead of a temporary directory.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import benchkit
from signalfire.gateway.records import StoredPacket, Verified
from signalfire.gateway.store import GatewayStore

T0 = 1_790_000_000.0
UPLINKS = ["https", "mqtt"]

# Row labels; tests/test_bench_gateway_store.py finds its rows by these.
ROW_INTAKE = "durable intake, add() one at a time"
ROW_DUPLICATE = "same bytes heard again (duplicate add)"
ROW_BATCH = "batched intake, add_many() of 100"
ROW_DRAIN = "backlog drain, due(100) + mark_done"
ROW_SUPERSEDE = "supersede_older(), first pass over the backlog"
ROW_SUPERSEDE_AGAIN = "supersede_older() after one new report"
ROW_STATS = "stats() over the backlog"
ORDER_CHECK = "order check"


@dataclass(frozen=True)
class Row:
    label: str
    count: int
    seconds: float
    note: str = ""

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else float("inf")


class Packets:
    """Synthetic packets with unique bytes; priorities as a busy night might bring them.

    Reports come from a pool of senders, each numbering its own reports upwards, so
    that superseding has work to do.
    """

    def __init__(self, seed: int, senders: int = 2000) -> None:
        self.rng = random.Random(seed)
        self.n = 0
        self.senders = [self.rng.randbytes(8) for _ in range(senders)]
        self.seqs = dict.fromkeys(self.senders, 0)

    def next(self, *, priority: int | None = None, kind: str | None = None) -> StoredPacket:
        rng = self.rng
        self.n += 1
        if kind is None:
            kind = "announcement" if rng.random() < 0.03 else "report"
        if priority is None:
            roll = rng.random()
            priority = 2 if roll < 0.1 else 1 if roll < 0.3 else 0
        size = 142 if kind == "announcement" else rng.randint(107, 166)
        raw = rng.randbytes(size)
        sender = rng.choice(self.senders)
        self.seqs[sender] += 1
        return StoredPacket(
            id=raw[:16],
            raw=raw,
            kind=kind,
            priority=priority,
            key_id=sender,
            seq=None if kind == "announcement" else self.seqs[sender],
            received_at=T0 + self.n * 0.01,
            radio_node=rng.getrandbits(32),
            rx_snr=round(rng.uniform(-15, 10), 2),
            rx_rssi=rng.randint(-125, -60),
            hops=rng.randint(0, 3),
            verified=Verified.VERIFIED,
        )


def intake(directory: Path, count: int) -> tuple[Row, Row, list[float]]:
    packets = Packets(1)
    batch = [packets.next(kind="report") for _ in range(count)]
    with GatewayStore(directory / "intake.db", min_free_bytes=0) as store:
        times: list[float] = []
        start = time.perf_counter()
        for p in batch:
            t = time.perf_counter()
            store.add(p, UPLINKS)
            times.append(time.perf_counter() - t)
        elapsed = time.perf_counter() - start
        dup_start = time.perf_counter()
        for p in batch:
            store.add(p, UPLINKS)
        dup_elapsed = time.perf_counter() - dup_start
    return Row(ROW_INTAKE, count, elapsed), Row(ROW_DUPLICATE, count, dup_elapsed), times


def batched(directory: Path, count: int) -> Row:
    packets = Packets(2)
    chunks = [[packets.next() for _ in range(100)] for _ in range(max(1, count // 100))]
    with GatewayStore(directory / "batched.db", min_free_bytes=0) as store:
        start = time.perf_counter()
        for chunk in chunks:
            store.add_many(chunk, UPLINKS)
        elapsed = time.perf_counter() - start
    return Row(ROW_BATCH, 100 * len(chunks), elapsed)


def order_problems(drained: Sequence[StoredPacket]) -> list[str]:
    """Everything drained at once: announcements first, then by priority."""
    problems = []
    for i, (a, b) in enumerate(itertools.pairwise(drained)):
        key_a = (a.kind != "announcement", -a.priority)
        key_b = (b.kind != "announcement", -b.priority)
        if key_b < key_a:
            problems.append(f"#{i + 1}: {b.kind} priority {b.priority} after {a.kind} {a.priority}")
    return problems


def drain(directory: Path, backlog: int) -> tuple[list[Row], str]:
    packets = Packets(3)
    with GatewayStore(directory / "drain.db", min_free_bytes=0) as store:
        queued = backlog - 1  # the last one comes after the first superseding pass
        for _ in range(queued // 500):
            store.add_many([packets.next() for _ in range(500)], UPLINKS)
        store.add_many([packets.next() for _ in range(queued % 500)], UPLINKS)

        sup_start = time.perf_counter()
        superseded = store.supersede_older("mqtt", T0 + 10**6)
        sup_elapsed = time.perf_counter() - sup_start
        # What a costly link's worker then pays before each batch: new reports since.
        store.add(packets.next(kind="report"), UPLINKS)
        again_start = time.perf_counter()
        store.supersede_older("mqtt", T0 + 10**6)
        again_elapsed = time.perf_counter() - again_start
        life = store.stats(T0)["uplinks"]["https"]["pending"]["life-safety"]
        stats_start = time.perf_counter()
        store.stats(T0 + 10**6)
        stats_elapsed = time.perf_counter() - stats_start

        drained: list[StoredPacket] = []
        now = T0 + 10**6
        start = time.perf_counter()
        while batch := store.due("https", now, 100):
            store.mark_done("https", [p.copy_id for p in batch], now)
            drained.extend(batch)
        elapsed = time.perf_counter() - start
        left = store.stats(now)["uplinks"]["https"]["pending_total"]

    problems = order_problems(drained)
    if len(drained) != backlog or left:
        problems.insert(0, f"drained {len(drained)} of {backlog}, {left} left pending")
    if problems:
        verdict = f"{ORDER_CHECK}: MISMATCH ({'; '.join(problems[:3])})"
    else:
        verdict = (
            f"{ORDER_CHECK}: ok (all {life:,} life-safety packets came out before the first "
            f"elevated one, after every sender's announcement; "
            f"{len(drained):,} of {backlog:,} drained, none left)"
        )
    rows = [
        Row(ROW_DRAIN, len(drained), elapsed, f"{backlog:,} queued, {life:,} life-safety"),
        Row(ROW_SUPERSEDE, 1, sup_elapsed, f"one call, {superseded:,} superseded"),
        Row(ROW_SUPERSEDE_AGAIN, 1, again_elapsed, "one call"),
        Row(ROW_STATS, 1, stats_elapsed, "one call"),
    ]
    return rows, verdict


# -- output ----------------------------------------------------------------------


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    right = [False] + [True] * (len(header) - 2) + [False]
    return benchkit.table(header, rows, right)


def filesystem(path: Path) -> str:
    """Type and device of the mount holding ``path`` (from /proc/mounts)."""
    best, found = "", "unknown"
    target = str(path.resolve())
    try:
        with open("/proc/mounts", encoding="utf-8") as f:
            for line in f:
                device, mount_point, fstype, *_ = line.split()
                inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
                if inside and len(mount_point) >= len(best):
                    best, found = mount_point, f"{fstype} ({device} on {mount_point})"
    except OSError:
        pass
    return found


def machine(directory: Path) -> list[tuple[str, str]]:
    return [
        ("date", dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ("platform", platform.platform()),
        ("cpu", f"{benchkit.cpu_model()} ({os.cpu_count()} logical CPUs; the benchmark uses one)"),
        ("python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("sqlite", sqlite3.sqlite_version),
        ("database filesystem", filesystem(directory)),
    ]


def _num(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def run(quick: bool, markdown: bool, directory: Path) -> tuple[str, bool]:
    out: list[str] = []

    def heading(text: str) -> None:
        out.append("")
        out.append(f"### {text}" if markdown else f"== {text} ==")
        out.append("")

    heading("Machine")
    for key, value in machine(directory):
        out.append(f"- {key}: {value}" if markdown else f"{key}: {value}")

    single, duplicate, times = intake(directory, 300 if quick else 3000)
    rows = [single, duplicate, batched(directory, 2000 if quick else 20_000)]
    drain_rows, verdict = drain(directory, 2000 if quick else 10_000)
    rows += drain_rows

    times.sort()
    median_ms = statistics.median(times) * 1000
    p99_ms = times[min(len(times) - 1, int(len(times) * 0.99))] * 1000
    single_note = f"median {median_ms:.2f} ms, p99 {p99_ms:.2f} ms per add"
    rows[0] = Row(single.label, single.count, single.seconds, single_note)

    heading("Throughput (one thread, WAL, synchronous=FULL, two uplinks per packet)")
    body = [
        [
            r.label,
            _num(r.count),
            _num(r.seconds, 3),
            _num(r.rate) if r.count > 1 else "",
            _num(1000 * r.seconds / r.count, 3),
            r.note,
        ]
        for r in rows
    ]
    out.append(table(["operation", "count", "seconds", "per second", "ms each", "note"], body))
    out.append("")
    out.append(verdict)
    return "\n".join(out) + "\n", "MISMATCH" not in verdict


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="short runs, 2,000-packet backlog")
    parser.add_argument("--markdown", action="store_true", help="Markdown headings and lists")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the databases")
    args = parser.parse_args(argv)
    if args.dir is not None and not args.dir.is_dir():
        parser.error(f"--dir {args.dir} is not a directory")
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="signalfire-bench-") as tmp:
        text, ok = run(args.quick, args.markdown, Path(tmp))
    sys.stdout.write(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Coordinator benchmark: ingest rate beside the raw Ed25519 verify rate, and feed query latency.

Usage::

    python bench/coordinator.py [--quick] [--reports N] [--feed-rows N] [--no-postgres]
                                [--dir DIR]

Prints, to stdout, the machine it ran on and Markdown tables of

1. **Ingest against crypto, one core, one run.** Real traffic made with signalfire's
   own API (``wire.enrol``, ``wire.seal_report``, ``batch.encode``): reports from many
   senders, statuses weighted as on a bad night, 20 % with text, 2 % stock-radio
   messages attested by a gateway; batches of 50 packets, each with 45 new reports and
   5 copies (10 %) of reports the *other* gateway delivered before. The senders'
   key announcements are ingested before the clock starts (a coordinator knows its
   senders from their first report on). Timed: ``Ingestor.ingest_batch`` on the
   envelope bytes, everything in (envelope signature, opening each new report:
   Ed25519 verify + 32-step key-tree walk + AES-GCM-SIV + decode, deduplication,
   the SQL, and the commit) into SQLite (WAL, synchronous=FULL: on disk before the
   answer) and into PostgreSQL when Debian's server binaries are installed (a
   throw-away cluster with fsync and synchronous_commit on). In the same rounds, taken
   in turn with the ingest so that every figure sees the same machine: raw Ed25519
   verify of 100 bytes (``cryptography``, a loaded public key) and ``Keyring.open`` of
   one report. The ratio the project's goal is about is **ingest reports/s divided
   by raw Ed25519 verifies/s**, where ingest reports/s counts every report packet in
   the timed batches (new ones and duplicates alike) over the wall time of the
   ``ingest_batch`` calls; the goal is at least 60 %.
2. **Feed query latency over N stored reports** (1,000,000 by default): the database
   is filled by inserting rows directly with ``executemany`` (not through the crypto:
   sealing a million reports would take longer than the rest of the run; the rows
   are random bytes where the raw packet goes), with 50,000 senders, statuses weighted,
   positions around a town, times over 7 days, 1-3 receipts per report and a handling
   state for some. Then each query of ``signalfire.coordinator.feed_queries`` runs
   repeatedly against it; the table gives p50 and p95.

``--quick`` (for the test suite) makes a few hundred reports and a 20,000-report feed
database and takes seconds. ``--reports`` sets how many reports the ingest run
seals; ``--feed-rows`` the size of the feed database (0 skips part 2).
``--no-postgres`` skips PostgreSQL. ``--dir`` puts the databases on another filesystem
than the temporary directory.
"""

from __future__ import annotations

import argparse
import contextlib
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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

import benchkit
from signalfire import batch as batchfmt
from signalfire import wire
from signalfire.coordinator import feed_queries as fq
from signalfire.coordinator import store as st
from signalfire.coordinator.ingest import Ingestor

ROOT = Path(__file__).resolve().parent.parent
T0 = 1_790_000_000.0  # the coordinator's clock at the start of the ingest traffic
SEED = 5
BATCH_SIZE = 50
DUPLICATES_PER_BATCH = 5  # 10 % of each batch: copies the other gateway delivered before
ATTESTED_SHARE = 0.02  # stock-radio messages a gateway wrapped and vouched for
TEXT_SHARE = 0.20
GOAL_RATIO = 0.60
TOWN = (40.1792, 44.4991)  # Yerevan: positions scatter around it
STATUS_WEIGHTS = (
    (wire.Status.SAFE, 45),
    (wire.Status.SOS, 8),
    (wire.Status.MEDICAL, 7),
    (wire.Status.TRAPPED, 4),
    (wire.Status.EVACUATE, 8),
    (wire.Status.NEED_SUPPLIES, 20),
    (wire.Status.MISSING_PERSON, 5),
    (wire.Status.CANCEL, 3),
)
NEEDS = (wire.Need.WATER, wire.Need.FOOD, wire.Need.SHELTER, wire.Need.MEDICINE, wire.Need.POWER)

# Row labels; tests/test_bench_coordinator.py finds its rows by these.
ROW_VERIFY = "raw Ed25519 verify, 100 B"
ROW_OPEN = "Keyring.open of a report"
ROW_INGEST = "ingest_batch, {backend}"
ROW_RATIO = "ingest / raw verify, {backend}"


# -- 1. ingest traffic ----------------------------------------------------------------------


class Sender:
    """A civilian (or a gateway's own identity, for attested reports) with its key chain."""

    def __init__(self, network_public: bytes, key: Ed25519PrivateKey | None = None) -> None:
        self.key = key or Ed25519PrivateKey.generate()
        self.announcement, self.chain = wire.enrol(
            self.key, network_public, X25519PrivateKey.generate()
        )
        self.seq = 0

    def seal(self, report: wire.Report) -> bytes:
        packet, self.chain = wire.seal_report(report, self.key, self.chain, self.seq)
        self.seq += 1
        return packet


@dataclass
class Traffic:
    network_public: bytes
    network_private: X25519PrivateKey
    gateways: dict[str, Ed25519PrivateKey]
    announcements: list[bytes]  # ingested before the clock starts
    batches: list[bytes]  # envelopes in delivery order, the two gateways taking turns
    reports: int  # report packets in the batches, duplicates included
    unique: int
    duplicates: int
    attested: int
    senders: int
    seconds: float  # making all this (not timed as ingest)

    def keyring(self) -> wire.Keyring:
        return wire.Keyring(self.network_public, self.network_private)

    def enrolled(self) -> list[tuple[str, bytes]]:
        return [(n, wire.ed25519_public_bytes(k)) for n, k in self.gateways.items()]


def _report(rng: random.Random, created: int, attestation: wire.Attestation | None) -> wire.Report:
    statuses, weights = zip(*STATUS_WEIGHTS, strict=True)
    status = rng.choices(statuses, weights)[0]
    needs = wire.Need(0)
    if status is wire.Status.NEED_SUPPLIES or rng.random() < 0.2:
        for need in rng.sample(NEEDS, rng.randint(1, 3)):
            needs |= need
    location = None
    if rng.random() < 0.9:
        location = wire.Location.from_degrees(
            TOWN[0] + rng.gauss(0, 0.03), TOWN[1] + rng.gauss(0, 0.04), accuracy_m=20
        )
    text = None
    if rng.random() < TEXT_SHARE:
        text = rng.choice(("two hurt", "water please", "road blocked", "need insulin", "ok"))
    return wire.Report(
        status=status,
        time=created,
        people=rng.randint(1, 6),
        needs=needs,
        location=location,
        text=text,
        attestation=attestation,
    )


def make_traffic(reports: int, senders: int, seed: int = SEED) -> Traffic:
    """``reports`` new reports from ``senders`` civilians, in batches of BATCH_SIZE."""
    start = time.perf_counter()
    rng = random.Random(seed)
    network_private = X25519PrivateKey.generate()
    network_public = wire.x25519_public_bytes(network_private)
    network_id = wire.network_id(network_public)
    gateways = {name: Ed25519PrivateKey.generate() for name in ("gw-north", "gw-south")}
    civilians = [Sender(network_public) for _ in range(senders)]
    # A gateway wraps a stock radio's text into a report signed with its own identity.
    wrappers = {name: Sender(network_public, key) for name, key in gateways.items()}
    announcements = [s.announcement for s in civilians + list(wrappers.values())]
    names = list(gateways)
    heard: dict[str, list[bytes]] = {name: [] for name in names}  # delivered by each gateway
    batch_ids = itertools.count(1)
    batches: list[bytes] = []
    fresh = BATCH_SIZE - DUPLICATES_PER_BATCH
    made = duplicates = attested = 0
    while made < reports:
        name = names[len(batches) % 2]
        other = heard[names[(len(batches) + 1) % 2]]
        packets: list[bytes] = []
        for _ in range(min(fresh, reports - made)):
            created = int(T0 - rng.uniform(0, 1800))
            if rng.random() < ATTESTED_SHARE:
                att = wire.Attestation(
                    node_num=rng.randrange(0x10000000, 0x10000400),
                    packet_id=rng.getrandbits(32),
                    rx_time=created,
                    direct_message=True,
                    hops=rng.randint(0, 3),
                )
                packets.append(wrappers[name].seal(_report(rng, created, att)))
                attested += 1
            else:
                packets.append(rng.choice(civilians).seal(_report(rng, created, None)))
            made += 1
        heard[name].extend(packets)
        # Copies of what the other gateway delivered recently: both heard the same radio.
        copies = rng.sample(other[-4 * BATCH_SIZE :], min(DUPLICATES_PER_BATCH, len(other)))
        duplicates += len(copies)
        packets += copies
        rng.shuffle(packets)
        items = [
            batchfmt.BatchItem(
                p,
                received_at=T0,
                radio_node=rng.getrandbits(32),
                snr=round(rng.uniform(-15, 10), 1),
                rssi=rng.randint(-125, -60),
                hops=rng.randint(0, 3),
            )
            for p in packets
        ]
        batches.append(
            batchfmt.encode(
                items,
                gateway=gateways[name],
                network_id=network_id,
                batch_id=f"{name}-{next(batch_ids)}",
                sent_at=int(T0),
            )
        )
    return Traffic(
        network_public=network_public,
        network_private=network_private,
        gateways=gateways,
        announcements=announcements,
        batches=batches,
        reports=made + duplicates,
        unique=made,
        duplicates=duplicates,
        attested=attested,
        senders=senders,
        seconds=time.perf_counter() - start,
    )


def ingestor_for(url: str, traffic: Traffic) -> Ingestor:
    """A fresh coordinator database that knows the gateways and every sender's announcement."""
    store = st.CoordinatorStore(url, now=T0 - 3600)
    ingestor = Ingestor(
        store, traffic.keyring(), enrolled_gateways=traffic.enrolled(), now=T0 - 3600
    )
    key = next(iter(traffic.gateways.values()))
    network_id = wire.network_id(traffic.network_public)
    for n in range(0, len(traffic.announcements), batchfmt.MAX_PACKETS):
        chunk = traffic.announcements[n : n + batchfmt.MAX_PACKETS]
        data = batchfmt.encode(
            [batchfmt.BatchItem(a) for a in chunk],
            gateway=key,
            network_id=network_id,
            batch_id=f"announcements-{n}",
            sent_at=int(T0 - 3600),
        )
        result = ingestor.ingest_batch(data, "https", T0 - 3600)
        assert len(result.stored) == len(chunk), result.response()
    return ingestor


@dataclass
class IngestRun:
    backend: str
    reports: int = 0  # report packets ingested, duplicates included
    stored: int = 0
    duplicates: int = 0
    other: int = 0  # pending, rejected or deferred: must stay 0
    seconds: float = 0.0
    round_rates: list[float] = field(default_factory=list)
    round_ratios: list[float] = field(default_factory=list)
    batch_ms: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.reports / self.seconds if self.seconds else 0.0


@dataclass
class CryptoRate:
    label: str
    count: int = 0
    seconds: float = 0.0
    round_rates: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0


def _timed(fn: Callable[[int], object], seconds: float) -> tuple[int, float]:
    n = 0
    start = now = time.perf_counter()
    deadline = start + seconds
    while now < deadline:
        for _ in range(16):
            fn(n)
            n += 1
        now = time.perf_counter()
    return n, now - start


def ingest_rounds(
    traffic: Traffic, targets: dict[str, str], rounds: int
) -> tuple[dict[str, IngestRun], CryptoRate, CryptoRate]:
    """Ingest the traffic into every backend in ``rounds`` slices, crypto timed in between.

    Each round ingests the next slice of batches into each backend and then times raw
    verifies and opens for as long as that slice took on average, so the ratios of a
    round compare work done under the same conditions.
    """
    key = Ed25519PrivateKey.generate()
    public = key.public_key()
    message = bytes(100)
    signature = key.sign(message)
    opener = traffic.keyring()
    for raw in traffic.announcements:
        opener.add(raw)
    sealed: list[wire.SealedReport] = []
    for data in traffic.batches[:20]:
        for item in batchfmt.decode(data).items:
            packet = wire.parse(item.packet)
            if isinstance(packet, wire.SealedReport):
                sealed.append(packet)

    def verify(_: int) -> None:
        public.verify(signature, message)

    def open_one(n: int) -> object:
        return opener.open(sealed[n % len(sealed)])

    verify_rate = CryptoRate(ROW_VERIFY)
    open_rate = CryptoRate(ROW_OPEN)
    ingestors = {name: ingestor_for(url, traffic) for name, url in targets.items()}
    runs = {name: IngestRun(name) for name in targets}
    per_round = -(-len(traffic.batches) // rounds)
    clock = T0
    try:
        for r in range(rounds):
            chunk = traffic.batches[r * per_round : (r + 1) * per_round]
            if not chunk:
                break
            spent: dict[str, tuple[int, float]] = {}
            for name, ingestor in ingestors.items():
                run = runs[name]
                reports = 0
                start = time.perf_counter()
                for data in chunk:
                    t = time.perf_counter()
                    result = ingestor.ingest_batch(data, "https", clock)
                    run.batch_ms.append((time.perf_counter() - t) * 1000)
                    run.stored += len(result.stored)
                    run.duplicates += len(result.duplicates)
                    run.other += len(result.pending) + len(result.rejected) + len(result.deferred)
                    reports += len(result.stored) + len(result.duplicates)
                elapsed = time.perf_counter() - start
                run.reports += reports
                run.seconds += elapsed
                run.round_rates.append(reports / elapsed)
                spent[name] = (reports, elapsed)
            clock += 1.0
            window = statistics.mean(s for _, s in spent.values())
            for rate, fn in ((verify_rate, verify), (open_rate, open_one)):
                count, elapsed = _timed(fn, window)
                rate.count += count
                rate.seconds += elapsed
                rate.round_rates.append(count / elapsed)
            for name, (reports, elapsed) in spent.items():
                runs[name].round_ratios.append((reports / elapsed) / verify_rate.round_rates[-1])
    finally:
        for ingestor in ingestors.values():
            ingestor.store.close()
    return runs, verify_rate, open_rate


# -- PostgreSQL -----------------------------------------------------------------------------


@contextmanager
def postgres_cluster() -> Iterator[str | None]:
    """A throw-away cluster (tests/postgres.py) made durable again, or None with the reason.

    The test suite's cluster runs with fsync off; a benchmark of durable ingest must not.
    """
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        from postgres import HOST as pg_host
        from postgres import PostgresCluster, find_bindir
    except ImportError as exc:  # psycopg or pytest missing
        print(f"note: PostgreSQL skipped: {exc}", file=sys.stderr)
        yield None
        return
    finally:
        sys.path.pop(0)
    if find_bindir() is None:
        print(
            "note: PostgreSQL skipped: no server binaries (initdb, pg_ctl) in "
            "/usr/lib/postgresql/*/bin or on PATH",
            file=sys.stderr,
        )
        yield None
        return
    cluster = PostgresCluster()
    cluster.start()
    try:
        # Restart it without the test suite's fsync=off (the command line outranks
        # ALTER SYSTEM): the same binaries, directory and port, durable.
        data = str(cluster.data_dir)
        cluster._run("pg_ctl", "-D", data, "-m", "fast", "-w", "stop")
        options = (
            f"-p {cluster.port} -k {cluster.socket_dir} -c listen_addresses={pg_host} "
            "-c max_connections=50 -c shared_buffers=256MB"
        )
        cluster._run(
            "pg_ctl", "-D", data, "-l", str(cluster.log_path), "-w", "-o", options, "start"
        )
        yield cluster.url
    finally:
        cluster.stop()


def new_postgres_database(admin_url: str, name: str) -> str:
    engine = sa.create_engine(st.normalize_url(admin_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
        durable = [
            conn.exec_driver_sql(f"SHOW {s}").scalar() for s in ("fsync", "synchronous_commit")
        ]
    engine.dispose()
    assert durable == ["on", "on"], durable
    return st.normalize_url(admin_url).set(database=name).render_as_string(hide_password=False)


# -- 2. feed queries over a large table -----------------------------------------------------

FEED_END = T0 + 7 * 86_400.0  # "now" for the feed: the database spans the 7 days before
FEED_GATEWAYS = [f"{n:016x}" for n in range(0xA000, 0xA00A)]
STATES = (("seen", 6), ("assigned", 3), ("resolved", 4))
LIFE_SAFETY = ("sos", "medical", "trapped")
ROW_FILL = "fill: {rows} reports + {receipts} receipts + {states} states"


def fill_feed(conn: sa.Connection, rows: int, senders: int, seed: int = SEED) -> dict[str, int]:
    """Insert ``rows`` synthetic reports with receipts and states, straight into the tables."""
    rng = random.Random(seed)
    statuses, weights = zip(*((s.label, w) for s, w in STATUS_WEIGHTS), strict=True)
    cum = list(itertools.accumulate(weights))
    sender_ids = [
        f"node-{rng.getrandbits(32):08x}" if rng.random() < 0.02 else f"{rng.getrandbits(64):016x}"
        for _ in range(senders)
    ]
    next_seq = dict.fromkeys(sender_ids, 0)
    placeholder = bytes(107)  # stands in for the packet: no query reads it
    made = {"reports": 0, "receipts": 0, "states": 0}
    chunk = 20_000
    for start in range(0, rows, chunk):
        report_rows: list[dict[str, Any]] = []
        receipt_rows: list[dict[str, Any]] = []
        state_rows: list[dict[str, Any]] = []
        for _ in range(min(chunk, rows - start)):
            rid = f"{rng.getrandbits(128):032x}"
            # Some senders report far more often than others; every one reports.
            sender = sender_ids[int(senders * rng.random() ** 2)]
            seq = next_seq[sender]
            next_seq[sender] = seq + 1
            received = FEED_END - rng.uniform(0, 7 * 86_400.0)
            status = rng.choices(statuses, cum_weights=cum)[0]
            needs = 0
            if status == "need-supplies" or rng.random() < 0.2:
                for bit in rng.sample(range(6), rng.randint(1, 3)):
                    needs |= 1 << bit
            located = rng.random() < 0.9
            report_rows.append(
                {
                    "id": rid,
                    "raw": placeholder,
                    "kind": "attested" if sender.startswith("node-") else "report",
                    "priority": "life-safety" if status in LIFE_SAFETY else "routine",
                    "key_id": sender[-16:].rjust(16, "0"),
                    "sender_key": sender.rjust(64, "0"),
                    "seq": seq,
                    "status": status,
                    "people": rng.randint(1, 6),
                    "needs": needs,
                    "lat": round(TOWN[0] + rng.gauss(0, 0.03), 7) if located else None,
                    "lon": round(TOWN[1] + rng.gauss(0, 0.04), 7) if located else None,
                    "accuracy_class": 2 if located else None,
                    "text": "water please" if rng.random() < TEXT_SHARE else None,
                    "attestation": None,
                    "created_at": int(received - rng.expovariate(1 / 60)),
                    "first_received_at": received,
                    "flags": 0,
                    "sender": sender,
                }
            )
            for gateway in rng.sample(FEED_GATEWAYS, rng.choice((1, 1, 2, 3))):
                receipt_rows.append(
                    {
                        "report_id": rid,
                        "gateway_key_id": gateway,
                        "uplink": "https",
                        "batch_id": "fill",
                        "radio_node": None,
                        "received_at": received - 1,
                        "snr": 5.0,
                        "rssi": -90,
                        "hops": 1,
                        "ingested_at": received,
                    }
                )
            if received < FEED_END - 86_400 and rng.random() < 0.15:
                state = rng.choices([s for s, _ in STATES], [w for _, w in STATES])[0]
                state_rows.append(
                    {"report_id": rid, "state": state, "note": "", "by": "bench", "at": received}
                )
        conn.execute(st.reports.insert(), report_rows)
        conn.execute(st.receipts.insert(), receipt_rows)
        if state_rows:
            conn.execute(st.report_state.insert(), state_rows)
        made["reports"] += len(report_rows)
        made["receipts"] += len(receipt_rows)
        made["states"] += len(state_rows)
    for name in FEED_GATEWAYS:
        conn.execute(
            st.gateways.insert().values(
                key_id=name, public_key=name * 4, name=f"gw-{name[-2:]}", enrolled_at=T0
            )
        )
    return made


@dataclass
class Latency:
    label: str
    times_ms: list[float]
    rows: int

    @property
    def p50(self) -> float:
        return statistics.median(self.times_ms)

    @property
    def p95(self) -> float:
        ordered = sorted(self.times_ms)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def feed_latencies(engine: sa.Engine, repeats: int, seed: int = SEED) -> list[Latency]:
    """Time each feed query ``repeats`` times (after one warm-up run) in read transactions."""
    rng = random.Random(seed + 1)
    with engine.connect() as conn:
        ids = [r.id for r in conn.execute(sa.select(st.reports.c.id).limit(5000))]
        senders = [
            r.sender for r in conn.execute(sa.select(st.reports.c.sender).distinct().limit(5000))
        ]
    box = (TOWN[1] - 0.006, TOWN[0] - 0.0045, TOWN[1] + 0.006, TOWN[0] + 0.0045)  # ~1 km
    cases: list[tuple[str, Callable[[sa.Connection], Any]]] = [
        ("newest 200 reports", lambda c: fq.newest_reports(c)),
        (
            "newest 200, status sos/medical/trapped",
            lambda c: fq.newest_reports(c, statuses=LIFE_SAFETY),
        ),
        ("newest 200, last 1 h", lambda c: fq.newest_reports(c, since=FEED_END - 3600)),
        ("newest 200, 1 km bbox", lambda c: fq.newest_reports(c, bbox=box)),
        ("newest 200, state new", lambda c: fq.newest_reports(c, states=["new"])),
        ("newest 200, one gateway", lambda c: fq.newest_reports(c, gateway=FEED_GATEWAYS[3])),
        ("latest report per sender, newest 200 senders", lambda c: fq.latest_per_sender(c)),
        (
            "latest per sender, sos/medical/trapped",
            lambda c: fq.latest_per_sender(c, statuses=LIFE_SAFETY),
        ),
        ("counts by status/need/state, last 24 h", lambda c: fq.counts(c, since=FEED_END - 86_400)),
        ("one report by id with receipts", lambda c: fq.report_with_receipts(c, rng.choice(ids))),
        ("a sender's history (200)", lambda c: fq.sender_history(c, rng.choice(senders))),
    ]
    out: list[Latency] = []
    for label, run in cases:
        times: list[float] = []
        rows = 0
        for i in range(repeats + 1):
            with engine.connect() as conn, conn.begin():
                start = time.perf_counter()
                result = run(conn)
                elapsed = (time.perf_counter() - start) * 1000
            if i:  # the first run warms the caches
                times.append(elapsed)
            rows = len(result) if isinstance(result, list) else int(bool(result))
            if isinstance(result, dict) and "total" in result:
                rows = int(result["total"])
        out.append(Latency(label, times, rows))
    return out


def feed_run(
    url: str, rows: int, senders: int, repeats: int
) -> tuple[float, dict[str, int], list[Latency]]:
    store = st.CoordinatorStore(url, now=T0)
    try:
        start = time.perf_counter()
        with store.engine.begin() as conn:
            made = fill_feed(conn, rows, senders)
            # The bulk fill bypasses StoreTx.add_reports, which keeps sender_latest.
            st.rebuild_sender_latest(conn)
        with store.engine.begin() as conn:
            # Fresh statistics, as a database that has been running would have.
            conn.exec_driver_sql("ANALYZE")
        filled = time.perf_counter() - start
        return filled, made, feed_latencies(store.engine, repeats)
    finally:
        store.close()


# -- output ---------------------------------------------------------------------------------


def machine(directory: Path) -> list[tuple[str, str]]:
    from cryptography.hazmat.backends.openssl.backend import backend

    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    return [
        ("date", dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ("platform", platform.platform()),
        ("cpu", f"{benchkit.cpu_model()} ({os.cpu_count()} logical CPUs; one thread used)"),
        ("python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("sqlite", sqlite3.sqlite_version),
        ("openssl", backend.openssl_version_text()),
        (
            "cryptography / sqlalchemy / psycopg",
            " / ".join(version(d) for d in ("cryptography", "sqlalchemy", "psycopg")),
        ),
        ("database filesystem", filesystem(directory)),
    ]


def filesystem(path: Path) -> str:
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


def _n(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def _pct(values: Sequence[float]) -> str:
    return f"{100 * statistics.median(values):.0f} %"


def run(args: argparse.Namespace, directory: Path) -> str:
    out: list[str] = []

    def heading(text: str) -> None:
        out.extend(["", f"### {text}", ""])

    heading("Machine")
    out += [f"- {k}: {v}" for k, v in machine(directory)]

    traffic = make_traffic(args.reports, args.senders)
    with contextlib.ExitStack() as stack:
        targets = {"SQLite": f"sqlite:///{directory / 'ingest.db'}"}
        admin = None if args.no_postgres else stack.enter_context(postgres_cluster())
        if admin is not None:
            targets["PostgreSQL"] = new_postgres_database(admin, "bench_ingest")
        elif not args.no_postgres:
            out += ["", "PostgreSQL: skipped (no server binaries); SQLite only."]
        runs, verify, opened = ingest_rounds(traffic, targets, args.rounds)

        heading("Ingest beside raw Ed25519 verify (one core, same run)")
        open_ratios = [o / v for o, v in zip(opened.round_rates, verify.round_rates, strict=True)]
        rows: list[list[object]] = [
            [
                ROW_VERIFY,
                _n(verify.count),
                _n(verify.seconds, 2),
                _n(verify.rate),
                _n(statistics.median(verify.round_rates)),
                "1.00",
            ],
            [
                ROW_OPEN,
                _n(opened.count),
                _n(opened.seconds, 2),
                _n(opened.rate),
                _n(statistics.median(opened.round_rates)),
                f"{statistics.median(open_ratios):.2f}",
            ],
        ]
        for name, r in runs.items():
            assert r.other == 0, f"{name}: {r.other} reports pending, rejected or deferred"
            assert r.stored == traffic.unique, (name, r.stored, traffic.unique)
            rows.append(
                [
                    ROW_INGEST.format(backend=name),
                    _n(r.reports),
                    _n(r.seconds, 2),
                    _n(r.rate),
                    _n(statistics.median(r.round_rates)),
                    f"{statistics.median(r.round_ratios):.2f}",
                ]
            )
        out.append(
            benchkit.table(
                [
                    "operation",
                    "count",
                    "seconds",
                    "per second",
                    "per second (median round)",
                    "x raw verify rate (median round)",
                ],
                rows,
                [False, True, True, True, True, True],
            )
        )
        ceiling = statistics.median(
            o / v * traffic.reports / traffic.unique
            for o, v in zip(opened.round_rates, verify.round_rates, strict=True)
        )
        out += [
            "",
            f"{traffic.reports:,} report packets in {len(traffic.batches)} batches of "
            f"{BATCH_SIZE} ({traffic.unique:,} new from {traffic.senders:,} senders, "
            f"{traffic.attested} of them stock-radio messages attested by a gateway, and "
            f"{traffic.duplicates:,} copies delivered again by the other gateway); "
            f"{args.rounds} rounds, each ingesting the next slice into every backend and then "
            "timing raw verify and Keyring.open for as long. Ingest per second counts every "
            "report packet (new and duplicate) over the wall time of the ingest_batch calls, "
            "commit included. Making the traffic took "
            f"{traffic.seconds:.1f} s (not counted).",
        ]
        for name, r in runs.items():
            p50 = statistics.median(r.batch_ms)
            p95 = sorted(r.batch_ms)[round(0.95 * (len(r.batch_ms) - 1))]
            ratio = statistics.median(r.round_ratios)
            verdict = "met" if ratio >= GOAL_RATIO else "NOT met"
            out.append(
                f"\n{name}: ingest / raw Ed25519 verify = {100 * ratio:.0f} % "
                f"(goal >= {100 * GOAL_RATIO:.0f} %: {verdict}); one ingest_batch of "
                f"{BATCH_SIZE} took {p50:.1f} ms median, {p95:.1f} ms p95. Ceiling with no "
                f"SQL and no commit at all (Keyring.open of the new reports only): "
                f"{100 * ceiling:.0f} %."
            )

        if args.feed_rows:
            feed_targets = {"SQLite": f"sqlite:///{directory / 'feed.db'}"}
            if admin is not None and not args.feed_sqlite_only:
                feed_targets["PostgreSQL"] = new_postgres_database(admin, "bench_feed")
            for name, url in feed_targets.items():
                filled, made, lat = feed_run(url, args.feed_rows, args.feed_senders, args.repeats)
                heading(f"Feed queries over {made['reports']:,} reports, {name}")
                out.append(
                    benchkit.table(
                        ["query", "rows", "p50 ms", "p95 ms"],
                        [[x.label, _n(x.rows), _n(x.p50, 2), _n(x.p95, 2)] for x in lat],
                        [False, True, True, True],
                    )
                )
                out += [
                    "",
                    f"Filled by direct executemany (no crypto): {made['reports']:,} reports from "
                    f"{args.feed_senders:,} senders over 7 days, {made['receipts']:,} receipts "
                    f"(1-3 per report, 10 gateways), {made['states']:,} handling states, then "
                    f"ANALYZE; {filled:.0f} s. Each query ran {args.repeats} times after one "
                    "warm-up, each in its own read transaction ('rows' is the rows returned, or "
                    "the total counted).",
                ]
    return "\n".join(out).lstrip("\n") + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    global BATCH_SIZE, DUPLICATES_PER_BATCH  # one knob for the whole run
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="seconds, for the test suite")
    parser.add_argument("--reports", type=int, default=None, help="new reports to ingest")
    parser.add_argument("--senders", type=int, default=None, help="civilians sending them")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=BATCH_SIZE,
        help="packets per batch (a draining gateway sends up to its batch_size, 200 by default)",
    )
    parser.add_argument("--feed-rows", type=int, default=None, help="reports in the feed db")
    parser.add_argument("--feed-senders", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None, help="runs of each feed query")
    parser.add_argument("--feed-sqlite-only", action="store_true", help="feed on SQLite only")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--markdown", action="store_true", help="no effect: always Markdown")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the databases")
    args = parser.parse_args(argv)
    BATCH_SIZE = max(10, args.batch_size)
    DUPLICATES_PER_BATCH = BATCH_SIZE // 10
    defaults = (
        {
            "reports": 300,
            "senders": 40,
            "rounds": 3,
            "feed_rows": 5_000,
            "feed_senders": 500,
            "repeats": 5,
        }
        if args.quick
        else {
            "reports": 30_000,
            "senders": 3_000,
            "rounds": 10,
            "feed_rows": 1_000_000,
            "feed_senders": 50_000,
            "repeats": 50,
        }
    )
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.dir is not None and not args.dir.is_dir():
        parser.error(f"--dir {args.dir} is not a directory")
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="signalfire-bench-") as tmp:
        sys.stdout.write(run(args, Path(tmp)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Gateway daemon benchmark: durable intake, backlog drain to a coordinator, RSS and idle CPU.

Usage::

    python bench/gateway.py [--quick] [--dir DIR]

Prints Markdown to stdout: the machine (CPU, cores, Python, SQLite, OpenSSL) and tables of

1. **Intake**: ``GatewayIntake.handle`` on ``Received`` packets (the profile's app port,
   real sealed reports of ``signalfire.sender.Identity`` civilians, their key
   announcements first), verified against a real ``wire.Keyring`` and committed one
   at a time into a real ``GatewayStore`` on disk (WAL, synchronous=FULL, one fsync per
   new packet), with the rate limits set high so that every report is stored, then the
   same reports heard again through another relay, then a fresh gateway at the default
   limits (30 a minute per radio node, 12 per sender key).
2. **Backlog drain**: the reports stored by (1) (10,000 from 100 civilians, about 20 %
   life-safety, 30 % elevated, 50 % routine, plus their announcements) wait in the store
   while the coordinator is down; one ``UplinkWorker`` with an ``HttpsUplink`` has already
   found it unreachable. Then a local coordinator comes up (the real Starlette app, a
   real ``CoordinatorStore`` on SQLite, uvicorn on a loopback port, in a thread of this
   process as ``tests/gateway/coordkit.py`` runs it, rate limit raised) and the worker is
   told to look. The clock runs from the coordinator answering until every report is in
   its ``reports`` table; the order check compares the receipts' ``ingested_at`` per
   priority. Batch sizes 200 and 500. Beside it, in the same run: the coordinator's
   ``Ingestor.ingest_batch`` alone on pre-encoded batches (no HTTP), the gateway's side
   alone (``UplinkWorker.deliver_once`` with an uplink that encodes and signs the batch
   as ``HttpsUplink`` does but sends nothing), and raw Ed25519 verify,
   ``Keyring.verify`` and ``Keyring.open`` rates, so the reader sees where the time goes.
3. **Daemon**: the real ``signalfire gateway run --config ...`` as a subprocess, its radio
   an ``EmulatedDevice`` on TCP in this process (an ``InMemoryMesh`` of a few nodes), its
   HTTPS uplink the local coordinator. Once the store's status says the radio is
   connected and a few reports have gone through, an idle window (60 s; 10 s with
   ``--quick``) measures VmRSS and VmHWM (``/proc/PID/status``) and CPU time
   (``/proc/PID/stat`` utime+stime, in clock ticks: 10 ms on most kernels) and how
   often its threads woke (context switches, ``/proc/PID/task/*/status``); then SIGTERM
   and the exit code.

``--quick`` (for tests, about 30 s): 2,000 reports from 40 civilians, a 10 s idle window.
``--dir`` puts the databases on another filesystem instead of a temporary directory.
``--markdown`` is accepted for symmetry with the other scripts (the output always is).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import benchkit
from signalfire import batch as batchfmt
from signalfire import wire
from signalfire.coordinator.app import create_app
from signalfire.coordinator.ingest import Ingestor
from signalfire.coordinator.store import CoordinatorStore
from signalfire.gateway.intake import GatewayIntake
from signalfire.gateway.ratelimit import Buckets
from signalfire.gateway.records import StoredPacket
from signalfire.gateway.scheduler import UplinkWorker
from signalfire.gateway.store import GatewayStore
from signalfire.gateway.uplinks.base import Delivery
from signalfire.gateway.uplinks.https import HttpsUplink, batch_id_for, batch_items
from signalfire.keyfiles import load_network_key
from signalfire.profile import NetworkProfile, init_network
from signalfire.radio.api import BROADCAST, Received
from signalfire.radio.emulator import EmulatedDevice
from signalfire.radio.virtual_mesh import InMemoryMesh
from signalfire.sender import Identity

UPLINK = "coordinator"  # the one uplink of the benchmark gateway, as in gateway.example.toml
MIN_FREE_BYTES = 50 * 1024 * 1024  # the daemon's default (min_free_mb = 50)
SEED = 4
SIGNALFIRE = shutil.which("signalfire", path=os.path.dirname(sys.executable)) or "signalfire"

LIFE = (wire.Status.SOS, wire.Status.MEDICAL, wire.Status.TRAPPED)
ELEVATED = (wire.Status.EVACUATE, wire.Status.NEED_SUPPLIES, wire.Status.MISSING_PERSON)
ROUTINE = (wire.Status.SAFE,)
MIX = ((0.20, LIFE), (0.30, ELEVATED), (0.50, ROUTINE))

# Row labels; tests/test_bench_gateway.py finds its rows by these.
ROW_ANNOUNCEMENTS = "key announcements (verify, keyring.add, durable add)"
ROW_INTAKE = "reports, limits high (verify, durable add)"
ROW_DUPLICATES = "same reports heard again (resent, or by another path)"
ROW_DEFAULT_LIMITS = "reports, default limits (all at once: a flood to them)"
ROW_DRAIN = "drain, batch_size {size}"
ROW_VERIFY_RAW = "raw Ed25519 verify, 100 B"
ROW_KEYRING_VERIFY = "Keyring.verify of a report (gateway, per report)"
ROW_KEYRING_OPEN = "Keyring.open of a report (coordinator, per report)"
ROW_GATEWAY_SIDE = "gateway side alone, batch_size {size} (no HTTP)"
ROW_INGEST = "coordinator Ingestor.ingest_batch alone, batch_size {size} (no HTTP)"
ROW_START = "start to radio connected (s)"
ROW_RSS_START = "VmRSS at the start of the window (MiB)"
ROW_RSS_END = "VmRSS at the end of the window (MiB)"
ROW_HWM = "VmHWM, peak RSS (MiB)"
ROW_ANON = "RssAnon at the end, private memory (MiB)"
ROW_FILE = "RssFile at the end, mapped files and libraries (MiB)"
ROW_CPU_STAT = "CPU in the window, utime+stime (s)"
ROW_CPU_PCT = "idle CPU, % of one core (utime+stime)"
ROW_CPU_TOTAL = "CPU from start to the end of the window (s)"
ROW_THREADS = "threads"
ROW_WAKEUPS = "context switches in the window, all threads"
ROW_EXIT = "exit code after SIGTERM"
ROW_EXIT_TIME = "SIGTERM to exit (s)"
ORDER_CHECK = "life-safety first"
TARGET = "target >= 2,000 reports/s"


# -- traffic -----------------------------------------------------------------------


@dataclass
class Traffic:
    """Sealed packets of many civilians, in the order a gateway would hear them."""

    announcements: list[bytes]
    reports: list[bytes]  # interleaved: every civilian's 1st report, then every 2nd...
    priorities: list[int]  # of each report
    announcers: list[int]  # radio node (of the civilian) of each announcement
    nodes: list[int]  # radio node each report comes from: the civilian's own

    def count(self, priority: int) -> int:
        return sum(1 for p in self.priorities if p == priority)


def make_traffic(directory: Path, profile: NetworkProfile, civilians: int, each: int) -> Traffic:
    rng = random.Random(SEED)
    people = [Identity.create(directory / f"civ{c}.key") for c in range(civilians)]
    # Meshtastic keeps the originator in `from` across relays: each civilian's radio
    # number is what the gateway's per-node buckets see, however many hops it took.
    radios = rng.sample(range(0x10000000, 0x7FFFFFFF), civilians)
    now = int(time.time())
    traffic = Traffic([], [], [], [], [])
    for _ in range(each):
        for who, radio in zip(people, radios, strict=True):
            roll, cumulative = rng.random(), 0.0
            statuses: tuple[wire.Status, ...] = ROUTINE
            for share, group in MIX:
                cumulative += share
                if roll < cumulative:
                    statuses = group
                    break
            status = rng.choice(statuses)
            location = None
            if rng.random() < 0.8:
                lat, lon = 40.18 + rng.uniform(-0.05, 0.05), 44.51 + rng.uniform(-0.05, 0.05)
                location = wire.Location.from_degrees(lat, lon, accuracy_m=rng.choice([8, 30]))
            needs = wire.Need.WATER | wire.Need.MEDICINE
            report = wire.Report(
                status,
                now - rng.randint(60, 3600),
                rng.randint(1, 6),
                needs=needs if status is wire.Status.NEED_SUPPLIES else wire.Need(0),
                location=location,
            )
            sealed = who.seal(profile, report)
            if sealed.announcement is not None:
                traffic.announcements.append(sealed.announcement)
                traffic.announcers.append(radio)
            traffic.reports.append(sealed.packet)
            traffic.priorities.append(int(wire.priority_of(status)))
            traffic.nodes.append(radio)
    return traffic


def received(payload: bytes, node: int, port: int, n: int) -> Received:
    return Received(
        from_node=node,
        to_node=BROADCAST,
        packet_id=n,
        portnum=port,
        payload=payload,
        channel=0,
        rx_time=int(time.time()),
        snr=-7.25,
        rssi=-112,
        hop_limit=2,
        hop_start=3,
        pki_encrypted=False,
    )


# -- results -----------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    label: str
    count: int
    seconds: float
    note: str = ""
    times: tuple[float, ...] = ()  # per operation, when measured one at a time

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else float("inf")


def percentile(times: Sequence[float], q: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


# -- 1. intake ---------------------------------------------------------------------


def _handle_all(intake: GatewayIntake, items: Sequence[Received]) -> tuple[float, list[float]]:
    times: list[float] = []
    start = time.perf_counter()
    for item in items:
        t = time.perf_counter()
        intake.handle(item)
        times.append(time.perf_counter() - t)
    return time.perf_counter() - start, times


def intake_rows(
    directory: Path, profile: NetworkProfile, traffic: Traffic, default_sample: int
) -> tuple[list[Row], Path]:
    """Returns the rows and the store the high-limit run filled (the drain's backlog)."""
    port = profile.app_port
    announcements = [
        received(raw, node, port, i)
        for i, (raw, node) in enumerate(zip(traffic.announcements, traffic.announcers, strict=True))
    ]
    reports = [
        received(raw, node, port, 100_000 + i)
        for i, (raw, node) in enumerate(zip(traffic.reports, traffic.nodes, strict=True))
    ]
    rows: list[Row] = []

    backlog = directory / "backlog.sqlite"
    with GatewayStore(backlog, min_free_bytes=MIN_FREE_BYTES) as store:
        intake = GatewayIntake(
            store,
            wire.Keyring(profile.public_key),
            [UPLINK],
            app_port=port,
            per_node_per_minute=10**9,
            per_key_per_minute=10**9,
        )
        unlimited(intake)
        seconds, times = _handle_all(intake, announcements)
        counts = dict(intake.counts)
        rows.append(
            Row(ROW_ANNOUNCEMENTS, len(announcements), seconds, _outcomes(counts), tuple(times))
        )
        intake.counts.clear()
        seconds, times = _handle_all(intake, reports)
        rows.append(Row(ROW_INTAKE, len(reports), seconds, _outcomes(intake.counts), tuple(times)))
        intake.counts.clear()
        again = [
            received(item.payload, item.from_node, port, item.packet_id + 1)
            for item in reports[: max(1, len(reports) // 10)]
        ]
        seconds, times = _handle_all(intake, again)
        rows.append(
            Row(ROW_DUPLICATES, len(again), seconds, _outcomes(intake.counts), tuple(times))
        )

    with GatewayStore(directory / "limits.sqlite", min_free_bytes=MIN_FREE_BYTES) as store:
        intake = GatewayIntake(store, wire.Keyring(profile.public_key), [UPLINK], app_port=port)
        _handle_all(intake, announcements)
        announced = _outcomes(intake.counts)
        intake.counts.clear()
        sample = reports[:default_sample]
        seconds, times = _handle_all(intake, sample)
        life_sent = sum(1 for p in traffic.priorities[:default_sample] if p == 2)
        life_kept = store.stats(time.time())["packets"]["by_kind"]["report"]["life-safety"]
        note = (
            f"{_outcomes(intake.counts)}; life-safety {life_kept:,} of {life_sent:,} stored; "
            f"announcements: {announced}"
        )
        rows.append(Row(ROW_DEFAULT_LIMITS, len(sample), seconds, note, tuple(times)))
    return rows, backlog


def unlimited(intake: GatewayIntake) -> None:
    """Every rate limit of the intake out of the way, the configurable ones and the
    gateway-wide budgets (new identities, unverified packets) alike."""
    for name, value in list(vars(intake).items()):
        if isinstance(value, Buckets):
            setattr(intake, name, Buckets(10**9, burst=10**9))


def _outcomes(counts: Counter[str] | dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))


# -- 2. the coordinator, the drain and its parts --------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalCoordinator:
    """Store, ingest, app and uvicorn in a thread on a loopback port, as coordkit runs them."""

    def __init__(
        self,
        directory: Path,
        profile: NetworkProfile,
        network_key: Path,
        gateways: dict[str, bytes],
        *,
        rate_per_s: float = 1_000_000,
        burst: int = 1_000_000,
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.db = directory / "coordinator.db"
        self.profile = profile
        self.network_key = network_key
        self.gateways = gateways
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._store: CoordinatorStore | None = None

    def start(self) -> None:
        keyring = wire.Keyring(self.profile.public_key, load_network_key(self.network_key))
        self._store = CoordinatorStore(f"sqlite:///{self.db}")
        ingestor = Ingestor(self._store, keyring, enrolled_gateways=list(self.gateways.items()))
        app = create_app(ingestor, rate_per_s=self.rate_per_s, burst=self.burst)
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_config=None, lifespan="off",
            access_log=False,
        )  # fmt: skip
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="coordinator", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the local coordinator did not start")
            time.sleep(0.002)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(30)
        if self._store is not None:
            self._store.close()
        self._server = self._thread = self._store = None

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)
        try:
            return [tuple(r) for r in conn.execute(sql)]
        finally:
            conn.close()

    def scalar(self, sql: str) -> int:
        return int(self.query(sql)[0][0])


@dataclass
class Drain:
    size: int
    reports: int
    seconds: float
    first_in: float  # s from the coordinator answering to the first report in its table
    life_in: float  # ... to every life-safety report in
    batches: int
    order_ok: bool
    order_note: str
    exactly_once: bool
    left_pending: int

    @property
    def rate(self) -> float:
        return self.reports / self.seconds


class World:
    """The network, the gateway's key and the civilians' traffic, shared by every part."""

    def __init__(self, directory: Path, civilians: int, each: int) -> None:
        self.directory = directory
        self.profile, self.network_key = init_network(directory / "net", "bench")
        self.gateway = Identity.create(directory / "gw.key")
        self.traffic = make_traffic(directory / "civilians", self.profile, civilians, each)
        self.private = load_network_key(self.network_key)

    def coordinator(self, name: str, **limits: Any) -> LocalCoordinator:
        return LocalCoordinator(
            self.directory / name,
            self.profile,
            self.network_key,
            {"bench-gw": self.gateway.public},
            **limits,
        )


def copy_store(source: Path, target: Path) -> Path:
    """A copy of a closed store (its WAL was checkpointed into the file on close)."""
    for suffix in ("", "-wal"):
        src = source.with_name(source.name + suffix)
        if src.exists():
            shutil.copyfile(src, target.with_name(target.name + suffix))
    return target


def drain(world: World, backlog: Path, size: int) -> Drain:
    with GatewayStore(backlog, min_free_bytes=0) as queued:
        expected = queued.stats(time.time())["packets"]["by_kind"]["report"]
    total = sum(expected.values())
    coordinator = world.coordinator(f"coordinator-{size}")
    store = GatewayStore(
        copy_store(backlog, world.directory / f"drain-{size}.sqlite"),
        min_free_bytes=MIN_FREE_BYTES,
    )
    uplink = HttpsUplink(
        coordinator.url,
        gateway=world.gateway.key,
        network_id=world.profile.network_id,
        name=UPLINK,
        timeout_s=60,
    )
    worker = UplinkWorker(uplink, store, batch_size=size, seed=1)
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while worker.last_error != "not reachable":  # it found the coordinator down
            if time.monotonic() > deadline:
                raise RuntimeError("the uplink worker never probed the coordinator")
            time.sleep(0.01)
        coordinator.start()
        t0 = time.perf_counter()
        worker.notify()  # what the next probe would find; its backoff is not what we measure
        first_in = life_in = done = 0.0
        last, progress_at = -1, time.monotonic()
        while True:
            # Cheap polls: max(rowid) (the table only grows); the life-safety count scans,
            # but only while the table is still small (they come first).
            stored = coordinator.scalar("SELECT coalesce(max(rowid), 0) FROM reports")
            now = time.perf_counter() - t0
            if not first_in and stored:
                first_in = now
            if not life_in and stored >= expected["life-safety"]:
                life = coordinator.scalar(
                    "SELECT count(*) FROM reports WHERE priority = 'life-safety'"
                )
                if life >= expected["life-safety"]:
                    life_in = now
            if stored >= total and coordinator.scalar("SELECT count(*) FROM reports") >= total:
                done = now
                break
            if stored != last:
                last, progress_at = stored, time.monotonic()
            elif time.monotonic() - progress_at > 60:
                raise RuntimeError(
                    f"drain of batch size {size} stalled at {stored} of {total} reports: "
                    f"{worker.last_error}"
                )
            time.sleep(0.01)
        worker.stop()  # lets it finish the last batch's bookkeeping (mark_done)
        left = store.stats(time.time())["uplinks"][UPLINK]["pending_total"]
        rows = coordinator.query(
            "SELECT r.priority, min(c.ingested_at), max(c.ingested_at), count(*),"
            " count(DISTINCT r.id) FROM reports AS r JOIN receipts AS c ON c.report_id = r.id"
            " GROUP BY r.priority"
        )
        batches = coordinator.scalar("SELECT count(*) FROM batches")
    finally:
        worker.stop()
        coordinator.stop()
        store.close()
    span = {str(p): (float(lo), float(hi)) for p, lo, hi, _, _ in rows}
    exactly_once = all(n == distinct for _, _, _, n, distinct in rows)
    ok = span["life-safety"][1] <= span["elevated"][0] and span["elevated"][1] <= span["routine"][0]
    note = (
        f"all {expected['life-safety']:,} life-safety reports were ingested before the first "
        f"elevated one or in the same batch, all {expected['elevated']:,} elevated before "
        "the first routine one or in the same batch"
        if ok
        else "MISMATCH: " + "; ".join(f"{p} {lo:.3f}-{hi:.3f}" for p, (lo, hi) in span.items())
    )
    return Drain(size, total, done, first_in, life_in, batches, ok, note, exactly_once, left)


class EncodeOnlyUplink:
    """Builds and signs each batch exactly as HttpsUplink.send does, then acknowledges it
    without sending: the gateway's own share of a drain."""

    max_message_bytes: int | None = None
    costly = False

    def __init__(self, gateway: Ed25519PrivateKey, network_id: bytes) -> None:
        self.name = UPLINK
        self.gateway = gateway
        self.network_id = network_id
        self.bytes_sent = 0

    def probe(self) -> bool:
        return True

    def send(self, packets: Sequence[StoredPacket]) -> Delivery:
        body = batchfmt.encode(
            batch_items(packets),
            gateway=self.gateway,
            network_id=self.network_id,
            batch_id=batch_id_for(packets),
            sent_at=int(time.time()),
        )
        self.bytes_sent += len(body)
        return Delivery(acknowledged={p.copy_id for p in packets})

    def close(self) -> None:
        pass


def gateway_side(world: World, backlog: Path, size: int) -> Row:
    path = copy_store(backlog, world.directory / f"gateway-side-{size}.sqlite")
    with GatewayStore(path, min_free_bytes=MIN_FREE_BYTES) as store:
        uplink = EncodeOnlyUplink(world.gateway.key, world.profile.network_id)
        worker = UplinkWorker(uplink, store, batch_size=size, seed=1)
        start = time.perf_counter()
        while worker.deliver_once():
            pass
        seconds = time.perf_counter() - start
    packets = worker.delivered
    note = f"{packets:,} packets, {uplink.bytes_sent / packets:.0f} B each in the batch"
    return Row(ROW_GATEWAY_SIDE.format(size=size), packets, seconds, note)


def ingest_alone(world: World, backlog: Path, size: int) -> Row:
    with GatewayStore(backlog, min_free_bytes=0) as backlog_store:
        ordered = backlog_store.due(UPLINK, time.time(), 10**6)
    bodies = [
        batchfmt.encode(
            batch_items(chunk),
            gateway=world.gateway.key,
            network_id=world.profile.network_id,
            batch_id=batch_id_for(chunk),
            sent_at=int(time.time()),
        )
        for chunk in (ordered[i : i + size] for i in range(0, len(ordered), size))
    ]
    directory = world.directory / f"ingest-{size}"
    directory.mkdir()
    store = CoordinatorStore(f"sqlite:///{directory / 'coordinator.db'}")
    try:
        keyring = wire.Keyring(world.profile.public_key, world.private)
        ingestor = Ingestor(store, keyring, enrolled_gateways=[("bench-gw", world.gateway.public)])
        stored = 0
        start = time.perf_counter()
        for body in bodies:
            stored += len(ingestor.ingest_batch(body, "https", time.time()).stored)
        seconds = time.perf_counter() - start
        with store.transaction(write=False) as tx:
            reports = tx.counts().get("reports", 0)
    finally:
        store.close()
    reports_count = len(world.traffic.reports)
    note = f"{len(bodies)} batches; {stored:,} stored ({reports:,} in reports)"
    return Row(ROW_INGEST.format(size=size), reports_count, seconds, note)


def timed_rate(fn: Callable[[int], object], seconds: float) -> tuple[int, float]:
    n = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(20):
            fn(n)
            n += 1
        now = time.perf_counter()
        if now >= deadline:
            return n, now - start


def crypto_rows(world: World, seconds: float) -> list[Row]:
    key = Ed25519PrivateKey.generate()
    public = key.public_key()
    message = bytes(100)
    signature = key.sign(message)
    verifier = wire.Keyring(world.profile.public_key)
    opener = wire.Keyring(world.profile.public_key, world.private)
    for raw in world.traffic.announcements:
        verifier.add(raw)
        opener.add(raw)
    sample = [wire.parse(raw) for raw in world.traffic.reports[:500]]
    sealed = [p for p in sample if isinstance(p, wire.SealedReport)]
    rows = []
    for label, fn in (
        (ROW_VERIFY_RAW, lambda n: public.verify(signature, message)),
        (ROW_KEYRING_VERIFY, lambda n: verifier.verify(sealed[n % len(sealed)])),
        (ROW_KEYRING_OPEN, lambda n: opener.open(sealed[n % len(sealed)])),
    ):
        count, elapsed = timed_rate(fn, seconds)
        rows.append(Row(label, count, elapsed))
    return rows


# -- 3. the daemon -------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, str]:
    out = {}
    with open(f"/proc/{pid}/status", encoding="utf-8") as f:
        for line in f:
            key, _, value = line.partition(":")
            out[key] = value.strip()
    return out


def kib(value: str) -> float:
    return int(value.split()[0]) / 1024  # "123456 kB" -> MiB


def cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)


def context_switches(pid: int) -> int:
    """Voluntary and involuntary context switches of every thread: how often it wakes."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/status", encoding="utf-8") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        total += int(line.split(":")[1])
        except OSError:
            continue  # the thread ended meanwhile
    return total


def radio_state(store: Path) -> str | None:
    if not store.exists():
        return None
    try:
        conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=1)
        try:
            row = conn.execute(
                "SELECT json_extract(value, '$.state') FROM status WHERE key = 'radio'"
            )
            found = row.fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    return str(found[0]) if found else None


@dataclass
class Daemon:
    values: dict[str, float] = field(default_factory=dict)
    note: str = ""


def daemon_run(world: World, window: float) -> Daemon:
    result = Daemon()
    directory = world.directory / "daemon"
    directory.mkdir()
    coordinator = world.coordinator("coordinator-daemon")
    coordinator.start()
    mesh = InMemoryMesh.generate(4, seed=SEED)
    device = EmulatedDevice(mesh, seed=SEED, enforce_rate_limits=False)
    device.start()
    address = device.tcp_address
    assert address is not None
    config = directory / "gateway.toml"
    config.write_text(
        "\n".join(
            [
                "[gateway]",
                'name = "bench-gw"',
                f'identity = "{world.gateway.path}"',
                f'network = "{world.directory / "net" / "network.json"}"',
                'data_dir = "data"',
                "[radio]",
                f'spec = "tcp:127.0.0.1:{address[1]}"',
                "[[uplink]]",
                'type = "https"',
                'name = "coordinator"',
                f'url = "{coordinator.url}"',
                "batch_size = 200",
            ]
        )
        + "\n"
    )
    log = (directory / "daemon.log").open("wb")
    started = time.perf_counter()
    proc = subprocess.Popen(
        [SIGNALFIRE, "gateway", "run", "--config", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=directory,
    )
    try:
        store = directory / "data" / "gateway.sqlite"
        deadline = time.monotonic() + 60
        while radio_state(store) != "connected":
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the daemon did not connect (exit {proc.poll()}): "
                    + (directory / "daemon.log").read_text()[-2000:]
                )
            time.sleep(0.05)
        result.values[ROW_START] = time.perf_counter() - started
        # A few reports through the radio, so the window starts from a daemon that has
        # done its work once (imports, connections, caches), not a fresh one.
        nodes = list(mesh.nodes.values())
        for n, node in enumerate(nodes):  # civilian n's announcement, then its first report
            mesh.send_data(node, world.traffic.announcements[n], portnum=world.profile.app_port)
            mesh.send_data(node, world.traffic.reports[n], portnum=world.profile.app_port)
        sent = len(nodes)
        deadline = time.monotonic() + 60
        while coordinator.scalar("SELECT count(*) FROM reports") < sent:
            if time.monotonic() > deadline:
                raise RuntimeError("the daemon did not deliver the warm-up reports")
            time.sleep(0.05)
        time.sleep(1.0)  # let the last batch's bookkeeping finish
        pid = proc.pid
        rss_start = kib(proc_status(pid)["VmRSS"])
        ticks0, switches0, t0 = cpu_ticks(pid), context_switches(pid), time.perf_counter()
        time.sleep(window)
        ticks1, switches1, t1 = cpu_ticks(pid), context_switches(pid), time.perf_counter()
        status = proc_status(pid)
        elapsed = t1 - t0
        hz = os.sysconf("SC_CLK_TCK")
        cpu_s = (ticks1 - ticks0) / hz
        result.values[ROW_RSS_START] = rss_start
        result.values[ROW_RSS_END] = kib(status["VmRSS"])
        result.values[ROW_HWM] = kib(status["VmHWM"])
        result.values[ROW_ANON] = kib(status["RssAnon"])
        result.values[ROW_FILE] = kib(status["RssFile"])
        result.values[ROW_CPU_STAT] = cpu_s
        result.values[ROW_CPU_PCT] = 100 * cpu_s / elapsed
        result.values[ROW_CPU_TOTAL] = ticks1 / hz
        result.values[ROW_THREADS] = int(status["Threads"])
        result.values[ROW_WAKEUPS] = switches1 - switches0
        stop = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        result.values[ROW_EXIT_TIME] = time.perf_counter() - stop
        result.values[ROW_EXIT] = code
        result.note = (
            f"idle window {elapsed:.1f} s after {sent} reports went radio -> daemon -> "
            f"coordinator; {len(nodes)} mesh nodes. CPU time comes in clock ticks of "
            f"{1000 / hz:.0f} ms: one tick in this window is {100 / hz / elapsed:.3f} % of a core."
        )
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
        device.stop()
        coordinator.stop()
    return result


# -- output --------------------------------------------------------------------------


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    right = [False] + [True] * (len(header) - 2) + [False]
    if len(header) == 2:
        right = [False, True]
    return benchkit.table(header, rows, right)


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
        ("cpu", benchkit.cpu_model()),
        ("cores", f"{os.cpu_count()} logical CPUs"),
        ("python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("sqlite", sqlite3.sqlite_version),
        ("openssl", backend.openssl_version_text()),
        ("cryptography", version("cryptography")),
        (
            "uvicorn / starlette / httpx / sqlalchemy",
            " / ".join(version(d) for d in ("uvicorn", "starlette", "httpx", "sqlalchemy")),
        ),
        ("database filesystem", filesystem(directory)),
    ]


def _n(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def run(quick: bool, directory: Path) -> tuple[str, bool]:
    civilians, each = (40, 50) if quick else (100, 100)
    crypto_seconds = 0.3 if quick else 1.5
    window = 10.0 if quick else 60.0
    out: list[str] = []

    def heading(text: str) -> None:
        out.extend(["", f"### {text}", ""])

    setup_start = time.perf_counter()
    world = World(directory, civilians, each)
    setup = time.perf_counter() - setup_start
    traffic = world.traffic

    heading("Machine")
    out.extend(f"- {key}: {value}" for key, value in machine(directory))
    out.append(
        f"- run: {'--quick' if quick else 'full'} ({len(traffic.reports):,} reports from "
        f"{civilians} civilians, {window:.0f} s idle window)"
    )

    intake, backlog = intake_rows(directory, world.profile, traffic, 500 if quick else 2000)
    drains = [drain(world, backlog, size) for size in (200, 500)]
    gateway_rows = [gateway_side(world, backlog, size) for size in (200, 500)]
    ingest_rows = [ingest_alone(world, backlog, size) for size in (200, 500)]
    crypto = crypto_rows(world, crypto_seconds)
    daemon = daemon_run(world, window)

    heading("Intake: GatewayIntake.handle into a GatewayStore (one thread, fsync per new packet)")
    body = []
    for r in intake:
        median = statistics.median(r.times) * 1000 if r.times else 0.0
        p99 = percentile(r.times, 0.99) * 1000 if r.times else 0.0
        body.append(
            [r.label, _n(r.count), _n(r.seconds, 3), _n(r.rate), f"{median:.3f}", f"{p99:.3f}",
             r.note]
        )  # fmt: skip
    out.append(
        table(["case", "packets", "seconds", "per second", "median ms", "p99 ms", "outcome"], body)
    )
    out.append("")
    out.append(
        f"{civilians} civilians (signalfire.sender.Identity), {len(traffic.reports):,} sealed "
        f"reports ({traffic.count(2):,} life-safety, {traffic.count(1):,} elevated, "
        f"{traffic.count(0):,} routine), each from its civilian's radio node, announcements "
        "first, as fast as the gateway takes them; "
        f"verification on (wire.Keyring without the network private key, as a gateway runs); "
        f"one uplink; min_free_mb 50. Sealing them took {setup:.1f} s (not counted)."
    )

    heading("Backlog drain to a local coordinator (UplinkWorker + HttpsUplink -> uvicorn)")
    body = [
        [
            ROW_DRAIN.format(size=d.size), _n(d.reports), _n(d.seconds, 2), _n(d.rate),
            _n(d.first_in, 2), _n(d.life_in, 2), _n(d.batches),
            ("ok" if d.order_ok else "MISMATCH")
            + ("" if d.exactly_once and not d.left_pending else ", NOT exactly once"),
        ]
        for d in drains
    ]  # fmt: skip
    out.append(
        table(
            [
                "run",
                "reports",
                "seconds",
                "reports/s",
                "first in (s)",
                "life-safety all in (s)",
                "batches",
                "order",
            ],
            body,
        )
    )
    out.append("")
    for d in drains:
        out.append(f"{ORDER_CHECK}, batch_size {d.size}: {'ok' if d.order_ok else 'MISMATCH'} "
                   f"({d.order_note}); {d.left_pending} left pending at the gateway")  # fmt: skip
    out.append("")
    out.append(
        "Clock from the coordinator answering (uvicorn started, worker notified) until every "
        "report is in its reports table (polled every 10 ms); the worker had found the "
        "coordinator down once before. Coordinator rate limit raised to 10^6 batches/s "
        "(the default, 10/s with a burst of 50, would cap a drain at 10 x batch_size reports/s "
        "once the burst is spent). Coordinator and gateway share this process (one GIL)."
    )

    heading("Where the time goes (same run, one thread each, no HTTP)")
    body = [
        [r.label, _n(r.count), _n(r.seconds, 3), _n(r.rate), _n(1e6 * r.seconds / r.count),
         r.note]
        for r in [*crypto, *gateway_rows, *ingest_rows]
    ]  # fmt: skip
    out.append(table(["stage", "count", "seconds", "per second", "µs each", "note"], body))
    best = max(drains, key=lambda d: d.rate)
    ingest_best = max(ingest_rows, key=lambda r: r.rate)
    gateway_best = max(gateway_rows, key=lambda r: r.rate)
    limiter = "the coordinator's ingest" if ingest_best.rate < gateway_best.rate else "the gateway"
    met = best.rate >= 2000
    out.append("")
    out.append(
        f"{TARGET} end to end: {'met' if met else 'NOT met'} (best {best.rate:,.0f}/s at "
        f"batch_size {best.size}); the limit is {limiter}: ingest alone "
        f"{ingest_best.rate:,.0f} reports/s, the gateway's side alone "
        f"{gateway_best.rate:,.0f} packets/s."
    )

    heading("Gateway daemon: signalfire gateway run, emulated radio on TCP, HTTPS uplink")
    body = []
    for label in (ROW_START, ROW_RSS_START, ROW_RSS_END, ROW_HWM, ROW_ANON, ROW_FILE,
                  ROW_CPU_STAT, ROW_CPU_PCT, ROW_CPU_TOTAL, ROW_THREADS, ROW_WAKEUPS, ROW_EXIT,
                  ROW_EXIT_TIME):  # fmt: skip
        value = daemon.values[label]
        digits = 0 if label in (ROW_THREADS, ROW_WAKEUPS, ROW_EXIT) else 3 if "CPU" in label else 1
        if label in (ROW_EXIT_TIME, ROW_START):
            digits = 2
        body.append([label, _n(value, digits)])
    out.append(table(["measure", "value"], body))
    out.append("")
    out.append(daemon.note)

    ok = all(d.order_ok and d.exactly_once and not d.left_pending for d in drains)
    ok = ok and daemon.values[ROW_EXIT] == 0
    return "\n".join(out).lstrip("\n") + "\n", ok


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="2,000 reports, 10 s idle window")
    parser.add_argument("--markdown", action="store_true", help="no effect: always Markdown")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the databases")
    args = parser.parse_args(argv)
    if args.dir is not None and not args.dir.is_dir():
        parser.error(f"--dir {args.dir} is not a directory")
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="signalfire-bench-") as tmp:
        text, ok = run(args.quick, Path(tmp))
    sys.stdout.write(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

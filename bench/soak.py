"""Soaks of issue 9 (hardening): kill -9, power cuts, a flapping broker, the daemon's footprint.

Usage::

    python bench/soak.py all                                   # every long version, in turn
    python bench/soak.py crash-gateway --cycles 200            # one of them alone
    python bench/soak.py crash-ingest --kills 40 --reports 4000
    python bench/soak.py power-loss --copies 100
    python bench/soak.py flap --reports 10000 --outages 100
    python bench/soak.py footprint --minutes 10

Everything is real: the ``signalfire`` processes are killed with SIGKILL, the broker is
Debian's Mosquitto (tests/mosquitto.py), the stores are the gateway's GatewayStore and
the coordinator's CoordinatorStore on SQLite. Randomness is seeded (``--seed``).

Prints one table (soak, figure, target, measured, result, run) and writes it into
bench/RESULTS.md under "## Soak" with the machine line; rows of soaks that did not run
this time are kept from the last run that had them (``--no-write`` leaves the file).
tests/test_soak_short.py runs short versions of each and asserts the same properties.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import importlib.util
import json
import logging
import os
import platform
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "bench") not in sys.path:  # benchkit
    sys.path.insert(0, str(ROOT / "bench"))
if str(ROOT / "tests") not in sys.path:  # tests/mosquitto.py; appended: tests/gateway/ is a
    sys.path.append(str(ROOT / "tests"))  # package that must not shadow bench/gateway.py


def _bench_gateway() -> Any:
    """bench/gateway.py by its path: under pytest, `gateway` is the tests/gateway package."""
    spec = importlib.util.spec_from_file_location(
        "signalfire_bench_gateway", ROOT / "bench" / "gateway.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being made
    spec.loader.exec_module(module)
    return module


from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

import benchkit  # noqa: E402
from mosquitto import Mosquitto, find_binary  # noqa: E402
from signalfire import batch as batchfmt  # noqa: E402
from signalfire import wire  # noqa: E402
from signalfire.coordinator.ingest import Ingestor  # noqa: E402
from signalfire.coordinator.store import CoordinatorStore  # noqa: E402
from signalfire.gateway.intake import GatewayIntake  # noqa: E402
from signalfire.gateway.records import StoredPacket, Verified  # noqa: E402
from signalfire.gateway.scheduler import UplinkWorker  # noqa: E402
from signalfire.gateway.store import GatewayStore  # noqa: E402
from signalfire.gateway.uplinks.mqtt import MqttUplink  # noqa: E402
from signalfire.keyfiles import load_network_key  # noqa: E402
from signalfire.profile import NetworkProfile, init_network, load_profile  # noqa: E402
from signalfire.radio.emulator import EmulatedDevice  # noqa: E402
from signalfire.radio.virtual_mesh import InMemoryMesh  # noqa: E402
from signalfire.sender import Identity  # noqa: E402

gwbench = _bench_gateway()
SIGNALFIRE = gwbench.SIGNALFIRE
RESULTS = ROOT / "bench" / "RESULTS.md"
SECTION = "## Soak"
T = 1_795_860_000
RSS_GOAL_MIB = 80.0
CPU_GOAL_PCT = 1.0
SOAKS = ("crash-gateway", "crash-ingest", "power-loss", "flap", "footprint")
_SUBSCRIBED_RE = re.compile(r"ingest worker (\d+) \(pid (\d+)\) subscribed as ")


@dataclass
class Figure:
    """One row of the table: ``passed`` None means measured only (no target)."""

    soak: str
    name: str
    target: str
    measured: str
    passed: bool | None
    run: str = ""


@dataclass
class Outcome:
    """What a soak measured: ``counts`` for tests to assert on, ``figures`` for the table."""

    soak: str
    counts: dict[str, int] = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)
    seconds: float = 0.0

    def zero(self, name: str, key: str, run: str) -> None:
        value = self.counts[key]
        self.figures.append(Figure(self.soak, name, "0", f"{value:,}", value == 0, run))

    def info(self, name: str, measured: str, run: str) -> None:
        self.figures.append(Figure(self.soak, name, "-", measured, None, run))

    @property
    def passed(self) -> bool:
        return all(f.passed is not False for f in self.figures)


def wait_until(predicate: Callable[[], bool], timeout: float, why: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SoakError(f"timed out after {timeout:.0f} s: {why}")
        time.sleep(0.1)


class SoakError(RuntimeError):
    """A soak could not finish (a backlog that never drained): a failure, not a figure."""


def read_only(db: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)


def query(db: Path, sql: str) -> list[tuple[object, ...]]:
    conn = read_only(db)
    try:
        return [tuple(r) for r in conn.execute(sql)]
    finally:
        conn.close()


def coordinator_duplicates(db: Path, uplink: str) -> dict[str, int]:
    """Every way one report could show twice at the coordinator: the reports table by id,
    the feed (one row per report: the feed reads reports joined to their receipts, so a
    second receipt of the same gateway and uplink would be a second row there), batches."""
    reports = query(db, "SELECT count(*), count(DISTINCT id) FROM reports")[0]
    receipts = query(
        db,
        "SELECT count(*) FROM (SELECT report_id FROM receipts WHERE uplink = '" + uplink + "'"
        " GROUP BY report_id, gateway_key_id HAVING count(*) > 1)",
    )[0][0]
    return {
        "duplicate report ids": int(str(reports[0])) - int(str(reports[1])),
        "reports with two receipts of one gateway": int(str(receipts)),
    }


# -- 1. kill -9 of the gateway daemon ---------------------------------------------------------


def gateway_config(directory: Path, identity: Path, network: Path, radio: int, url: str) -> Path:
    path = directory / "gateway.toml"
    lines = [
        "[gateway]",
        'name = "soak-gw"',
        f'identity = "{identity}"',
        f'network = "{network}"',
        f'data_dir = "{directory / "data"}"',
        "[radio]",
        f'spec = "tcp:127.0.0.1:{radio}"',
        "[intake]",
        "receipt_interval_s = 0",
        "[[uplink]]",
        'type = "https"',
        'name = "coordinator"',
        f'url = "{url}"',
        "timeout_s = 5",
        "batch_size = 20",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def crash_gateway(directory: Path, cycles: int, seed: int = 7) -> Outcome:
    """kill -9 of `signalfire gateway run` at random moments while the emulated radio
    streams reports and the HTTPS uplink (the coordinator) goes down and comes back.

    A packet can be lost only between the radio handing it over and the store's commit
    (the radio cannot know the process died): that is bounded by one per kill and
    reported, not counted as loss. Loss is what the gateway committed and the
    coordinator never got."""
    started_at = time.monotonic()
    rng = random.Random(seed)
    profile, key_path = init_network(directory / "net", "town")
    gateway = Identity.create(directory / "gw.key")
    coordinator = gwbench.LocalCoordinator(
        directory / "coordinator", profile, key_path, {"gw": gateway.public}
    )
    coordinator.start()
    mesh = InMemoryMesh.generate(4, seed=3)
    device = EmulatedDevice(mesh, seed=3, enforce_rate_limits=False)
    device.start()
    assert device.tcp_address is not None
    config = gateway_config(
        directory, gateway.path, directory / "net" / "network.json",
        device.tcp_address[1], coordinator.url,
    )  # fmt: skip
    nodes = list(mesh.nodes.values())
    civilians = [Identity.create(directory / f"civ{i}.key") for i in range(len(nodes))]
    sent: set[str] = set()
    statuses = list(wire.Status)

    def send_one() -> None:
        i = rng.randrange(len(nodes))
        sealed = civilians[i].seal(profile, wire.Report(rng.choice(statuses), T, rng.randint(0, 9)))
        # Like `signalfire send` until the mesh has taken it: the announcement may die in
        # flight with a killed gateway, and without it the coordinator can open nothing.
        announcement, _ = civilians[i].enrol(profile)
        if rng.random() < 0.3 or sealed.announcement:
            mesh.send_data(nodes[i], announcement, portnum=profile.app_port)
        mesh.send_data(nodes[i], sealed.packet, portnum=profile.app_port)
        sent.add(wire.parse(sealed.packet).id.hex())

    def gateway_process(log: IO[bytes]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [SIGNALFIRE, "gateway", "run", "--config", str(config)],
            stdout=log, stderr=log, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip

    store = directory / "data" / "gateway.sqlite"
    kills = flaps = 0
    # The radio (firmware and emulator alike) holds 32 packets for a client that is not
    # connected and drops the rest: on a loaded machine a restarting gateway takes long
    # enough for that to happen. Those drops are counted apart from the in-flight loss.
    drops = _DropCounter()
    logging.getLogger("signalfire.radio.emulator").addHandler(drops)
    up = True
    with open(directory / "gateway.log", "ab") as log:
        try:
            for cycle in range(cycles):
                # The uplink flaps: down for a cycle or two at random, back up every 5th.
                if up and rng.random() < 0.3:
                    coordinator.stop()
                    up, flaps = False, flaps + 1
                elif not up and (cycle % 5 == 0 or rng.random() < 0.5):
                    coordinator.start()
                    up = True
                proc = gateway_process(log)
                deadline = time.monotonic() + rng.uniform(0.3, 2.5)
                while time.monotonic() < deadline:
                    send_one()
                    # About what LoRa carries (a LONG_FAST report is ~1.2 s on air): faster
                    # streams overflow the radio's 32-packet queue for a restarting client.
                    time.sleep(rng.uniform(0.1, 0.4))
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
                kills += 1
                for _ in range(rng.randint(0, 3)):  # heard while it is dead: the radio holds them
                    send_one()
            if not up:
                coordinator.start()
            final = gateway_process(log)
            try:
                began = time.time()

                def connected_again() -> bool:
                    rows = query(store, "SELECT value FROM status WHERE key = 'radio'")
                    state = json.loads(str(rows[0][0])) if rows else {}
                    return state.get("state") == "connected" and state.get("since", 0) > began

                wait_until(connected_again, 60, "the last gateway never reached its radio")
                time.sleep(1.0)  # what the radio held while the gateway was dead comes in now

                def drained() -> bool:
                    done = committed(store)
                    return bool(done) and done <= at_coordinator(coordinator.db)

                wait_until(drained, 180, "the gateway's backlog did not drain")
            finally:
                final.send_signal(signal.SIGTERM)
                exit_code = final.wait(60)
        finally:
            coordinator.stop()
            device.stop()
            logging.getLogger("signalfire.radio.emulator").removeHandler(drops)
    stored = committed(store)
    delivered = at_coordinator(coordinator.db)
    out = Outcome("crash-gateway", seconds=time.monotonic() - started_at)
    out.counts = {
        "kills": kills,
        "uplink outages": flaps,
        "sent": len(sent),
        "committed": len(stored),
        "lost after commit": len(stored - delivered),
        "invented": len(delivered - sent),
        "lost before commit": len(sent - stored),
        "radio queue drops": drops.count,
        "exit code after SIGTERM": exit_code,
        **coordinator_duplicates(coordinator.db, "https"),
    }
    run = f"{kills} kill -9, {flaps} uplink outages, seed {seed}"
    out.zero("committed reports lost", "lost after commit", run)
    out.zero("duplicate report ids at the coordinator", "duplicate report ids", run)
    out.zero(
        "feed rows beyond one per report (receipts per gateway+uplink > 1)",
        "reports with two receipts of one gateway",
        run,
    )
    lost_before, bound = out.counts["lost before commit"], kills + drops.count
    out.figures.append(
        Figure(
            out.soak, "reports lost between radio and commit (never acknowledged)",
            f"<= kills + radio queue drops ({kills} + {drops.count})",
            f"{lost_before:,} of {len(sent):,}", lost_before <= bound, run,
        )
    )  # fmt: skip
    out.info("reports committed / at the coordinator", f"{len(stored):,} / {len(delivered):,}", run)
    return out


class _DropCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "to-client queue full" in record.getMessage():
            self.count += 1


def committed(store: Path) -> set[str]:
    rows = query(store, "SELECT packet_id FROM packets WHERE kind = 'report'")
    return {bytes(r[0]).hex() for r in rows if isinstance(r[0], bytes)}


def at_coordinator(db: Path) -> set[str]:
    return {str(r[0]) for r in query(db, "SELECT id FROM reports")}


# -- shared by the MQTT soaks -----------------------------------------------------------------


@dataclass
class Network:
    directory: Path
    profile: NetworkProfile
    key_path: Path
    gateways: list[Identity]

    def coordinator_config(self, db: Path, broker: Mosquitto) -> Path:
        gateways = "".join(
            f'\n[[gateways]]\nname = "gw{i}"\nkey = "{g.public.hex()}"\n'
            for i, g in enumerate(self.gateways)
        )
        path = self.directory / "coordinator.toml"
        path.write_text(
            f'[database]\nurl = "sqlite:///{db}"\n\n'
            f'[network]\nprofile = "{self.directory / "net" / "network.json"}"\n'
            f'key = "{self.key_path}"\n\n'
            f'[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\ngroup = "soak"\n'
            f'client_id = "soak-ingest"\n' + gateways
        )
        return path


def make_network(directory: Path, gateways: int) -> Network:
    profile, key_path = init_network(directory / "net", "soak")
    ids = [Identity.create(directory / f"gw{i}.key") for i in range(gateways)]
    return Network(directory, profile, key_path, ids)


def seal_reports(
    directory: Path, profile: NetworkProfile, civilians: int, n: int, rng: random.Random
) -> tuple[list[bytes], list[bytes]]:
    """(announcements, reports): ``n`` sealed reports of ``civilians`` people, in turn."""
    people = [Identity.create(directory / f"civ{c}.key") for c in range(civilians)]
    announcements = [p.enrol(profile)[0] for p in people]
    statuses = list(wire.Status)
    now = int(time.time())
    reports = [
        people[k % civilians]
        .seal(profile, wire.Report(rng.choice(statuses), now - rng.randint(60, 3600), 1))
        .packet
        for k in range(n)
    ]
    return announcements, reports


class IngestMqtt:
    """`signalfire coordinator ingest-mqtt` in its own session: killing the group is a power
    cut of the ingest host (supervisor and workers at once)."""

    def __init__(self, config: Path, workers: int) -> None:
        self.config, self.workers = config, workers
        self.lines: list[str] = []
        self.proc: subprocess.Popen[str] | None = None
        self.start()

    def start(self) -> None:
        self.lines = []  # the pids of a killed group must not be chosen again
        self.proc = subprocess.Popen(
            [SIGNALFIRE, "coordinator", "ingest-mqtt", "--config", str(self.config),
             "--workers", str(self.workers)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True,
        )  # fmt: skip
        threading.Thread(target=self._read, args=(self.proc,), daemon=True).start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def worker_pids(self) -> dict[int, int]:
        """The latest pid of each worker index (a restarted worker says so again)."""
        found: dict[int, int] = {}
        for line in list(self.lines):
            if m := _SUBSCRIBED_RE.search(line):
                found[int(m[1])] = int(m[2])
        # A worker killed a moment ago is not chosen again before its restart says so.
        return {i: p for i, p in found.items() if _running(p)}

    def subscriptions(self) -> int:
        return sum(1 for line in list(self.lines) if _SUBSCRIBED_RE.search(line))

    def kill_all(self) -> None:
        assert self.proc is not None
        with suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.kill_all()
            return -9


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie is dead, only not yet reaped by the supervisor


def coordinator_counts(db: Path) -> tuple[int, int]:
    if not db.exists():
        return 0, 0
    try:
        rows = query(db, "SELECT (SELECT count(*) FROM reports), (SELECT count(*) FROM pending)")
    except sqlite3.OperationalError:  # the schema is not there yet
        return 0, 0
    return int(str(rows[0][0])), int(str(rows[0][1]))


# -- 2. kill -9 of the coordinator's MQTT ingest --------------------------------------------


def crash_ingest(directory: Path, kills: int, reports: int, seed: int = 7) -> Outcome:
    """Gateways publish QoS 1 batches to a real Mosquitto while `coordinator ingest-mqtt`
    (2 workers, one shared subscription, SQLite) is killed with SIGKILL at random moments:
    mostly one worker (the supervisor restarts it), every 5th kill the whole process group."""
    started_at = time.monotonic()
    rng = random.Random(seed)
    net = make_network(directory, gateways=2)
    announcements, packets = seal_reports(directory, net.profile, 20, reports, rng)
    expected = {wire.parse(p).id.hex() for p in packets}
    db = directory / "coordinator.db"
    broker = Mosquitto(directory / "mosquitto")
    broker.start()
    config = net.coordinator_config(db, broker)
    ingest = IngestMqtt(config, workers=2)
    out = Outcome("crash-ingest")
    worker_kills = group_kills = 0
    publishers: list[MqttPublisher] = []
    try:
        wait_until(lambda: ingest.subscriptions() >= 2, 60, "the ingest workers did not subscribe")
        publishers = [MqttPublisher(broker, g.key, net.profile.network_id) for g in net.gateways]
        for n, a in enumerate(announcements):
            publishers[n % 2].publish(a, n)
        done = threading.Event()
        errors: list[BaseException] = []

        def stream() -> None:
            try:
                for n, p in enumerate(packets):
                    publishers[n % 2].publish(p, n)
                    if n % 20 == 19:
                        time.sleep(0.02)  # a steady stream, so that kills land inside it
                for pub in publishers:
                    pub.flush()
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)
            finally:
                done.set()

        threading.Thread(target=stream, daemon=True).start()
        spread = max(0.3, 8.0 * reports / 1000 / max(kills, 1))
        for k in range(kills):
            time.sleep(rng.uniform(0.2, spread))
            if k % 5 == 4:
                ingest.kill_all()  # the ingest host loses power; it is started again
                group_kills += 1
                time.sleep(rng.uniform(0.0, 0.5))
                ingest.start()
            else:
                pids = ingest.worker_pids()
                if not pids:
                    continue
                try:
                    os.kill(pids[rng.choice(sorted(pids))], signal.SIGKILL)
                    worker_kills += 1
                except ProcessLookupError:
                    pass  # it had died already: the next kill lands elsewhere
        done.wait(600)
        if errors:
            raise errors[0]
        if not ingest.alive():
            ingest.start()

        def all_in() -> bool:
            n, pending = coordinator_counts(db)
            return n >= len(expected) and pending == 0

        wait_until(all_in, 300, "the coordinator did not get every report")
        exit_code = ingest.stop()
    finally:
        for pub in publishers:
            pub.close()
        if ingest.alive():
            ingest.kill_all()
        broker.stop()
    got = at_coordinator(db)
    refused = sum(pub.refused for pub in publishers)
    out.counts = {
        "worker kills": worker_kills,
        "process group kills": group_kills,
        "published": len(expected),
        "refused by the broker": refused,
        "lost": len(expected - got),
        "invented": len(got - expected),
        "exit code after SIGTERM": exit_code,
        **coordinator_duplicates(db, "mqtt"),
    }
    out.seconds = time.monotonic() - started_at
    run = (
        f"{worker_kills} worker + {group_kills} whole-ingest kill -9, "
        f"{len(expected):,} reports, seed {seed}"
    )
    out.zero("reports lost", "lost", run)
    out.zero("duplicate report ids at the coordinator", "duplicate report ids", run)
    out.zero(
        "feed rows beyond one per report (receipts per gateway+uplink > 1)",
        "reports with two receipts of one gateway",
        run,
    )
    return out


class MqttPublisher:
    """One gateway's MQTT client publishing what MqttUplink publishes (a signed batch of one
    packet, QoS 1); every PUBACK is checked: 0x10 "no matching subscribers" is a drop."""

    def __init__(self, broker: Mosquitto, key: Ed25519PrivateKey, network_id: bytes) -> None:
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        self.key, self.network_id = key, network_id
        key_id = wire.key_id(wire.ed25519_public_bytes(key)).hex()
        self.topic = f"signalfire/v1/{network_id.hex()}/reports/{key_id}"
        self.client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"soak-{key_id}",
            protocol=paho.MQTTv5,
        )
        self.client.max_inflight_messages_set(50)
        self.refused = 0
        self.client.on_publish = self._on_publish
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        self.infos: list[object] = []

    def _on_publish(self, client: object, userdata: object, mid: int, reason, props) -> None:  # type: ignore[no-untyped-def]
        if reason.value != 0:
            self.refused += 1

    def publish(self, packet: bytes, n: int) -> None:
        payload = batchfmt.encode(
            [batchfmt.BatchItem(packet, received_at=time.time() - 5, radio_node=0x1000 + n % 97)],
            gateway=self.key,
            network_id=self.network_id,
            batch_id=f"copy-{wire.parse(packet).id.hex()}",
            sent_at=int(time.time()),
        )
        info = self.client.publish(self.topic, payload, qos=1)
        self.infos.append(info)
        if len(self.infos) >= 50:
            self.flush()

    def flush(self) -> None:
        for info in self.infos:
            info.wait_for_publish(timeout=120)  # type: ignore[attr-defined]
        self.infos.clear()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# -- 3. power loss: the store's files copied while a writer commits ------------------------


def gateway_writer(db: Path) -> None:
    """Child: add packets forever; print each copy id only after ``add`` returned."""
    store = GatewayStore(db, min_free_bytes=0)
    print("ready", flush=True)
    i = 0
    while True:
        signed = f"power/{i}".encode().ljust(60, b".")
        packet = StoredPacket(
            id=hashlib.sha256(signed).digest()[:16], raw=signed + hashlib.sha512(signed).digest(),
            kind="report", priority=i % 3, key_id=b"powerkey", seq=i,
            received_at=1_790_000_000.0 + i, verified=Verified.VERIFIED,
        )  # fmt: skip
        store.add(packet, ["https", "usb"])
        print(packet.copy_id.hex(), flush=True)
        if i % 5 == 4:  # deliveries too, so that copies land inside those writes as well
            due = store.due("https", 1_800_000_000.0, 3)
            store.mark_done("https", [p.copy_id for p in due[:2]], 1_790_000_000.0)
            store.mark_failed("usb", [p.copy_id for p in due[2:]], "down", 0.0, 1.0)
        i += 1


def coordinator_writer(directory: Path, db: Path) -> None:
    """Child: ingest signed batches of one report forever through the real Ingestor; print
    each report id only after ``ingest_batch`` returned (committed, synchronous=FULL)."""
    profile = load_profile(directory / "net" / "network.json")
    keyring = wire.Keyring(profile.public_key, load_network_key(directory / "net" / "network.key"))
    gw = Identity.load(directory / "gw.key")
    civilian = Identity.load(directory / "civ.key")
    store = CoordinatorStore(f"sqlite:///{db}")
    ingestor = Ingestor(store, keyring, enrolled_gateways=[("gw", gw.public)])
    announcement, _ = civilian.enrol(profile)
    items = [batchfmt.BatchItem(announcement, received_at=time.time(), radio_node=1)]
    print("ready", flush=True)
    i = 0
    while True:
        packet = civilian.seal(profile, wire.Report(wire.Status.SAFE, T + i, 1)).packet
        items.append(batchfmt.BatchItem(packet, received_at=time.time(), radio_node=1))
        data = batchfmt.encode(
            items, gateway=gw.key, network_id=profile.network_id, batch_id=f"b{i}",
            sent_at=int(time.time()),
        )  # fmt: skip
        ingestor.ingest_batch(data, "https", time.time())
        print(wire.parse(packet).id.hex(), flush=True)
        items = []
        i += 1


@contextmanager
def pinned(db: Path) -> Iterator[None]:
    """A read transaction on the live database while its files are copied one after the
    other: it keeps the writer from restarting the WAL (it goes on committing, appending
    to it), so the db copy plus the later WAL copy are one instant of the disk, as a power
    cut freezes it, torn last frame included. Without it a checkpoint between the two
    copies would make a state no disk ever held."""
    conn = sqlite3.connect(str(db), timeout=30, isolation_level=None)
    try:
        conn.execute("BEGIN")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        yield
    finally:
        conn.execute("COMMIT")
        conn.close()


def power_loss(directory: Path, copies: int, seed: int = 7) -> Outcome:
    """Copies of the gateway's and the coordinator's SQLite files taken at random moments
    while a writer process commits in a loop, each reopened with the real store."""
    started_at = time.monotonic()
    rng = random.Random(seed)
    out = Outcome("power-loss")
    for which in ("gateway", "coordinator"):
        base = directory / which
        base.mkdir()
        if which == "gateway":
            db = base / "gateway.sqlite"
            args = ["_gateway-writer", str(db)]
        else:
            init_network(base / "net", "power")
            Identity.create(base / "gw.key")
            Identity.create(base / "civ.key")
            db = base / "coordinator.db"
            args = ["_coordinator-writer", str(base), str(db)]
        acked: list[str] = []
        proc = subprocess.Popen(
            [sys.executable, __file__, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        assert proc.stdout is not None
        if proc.stdout.readline() != "ready\n":
            raise SoakError(
                f"the {which} writer did not start: {proc.stderr.read() if proc.stderr else ''}"
            )

        def read(stream: IO[str], into: list[str]) -> None:
            for line in stream:
                if line.endswith("\n"):  # a line cut by the kill was never an acknowledgement
                    into.append(line.strip())

        threading.Thread(target=read, args=(proc.stdout, acked), daemon=True).start()
        snapshots: list[tuple[Path, int]] = []
        try:
            for k in range(copies):
                time.sleep(rng.uniform(0.02, 0.25))
                before = len(acked)  # every one of these commits returned before the copy
                target = base / f"copy{k}"
                target.mkdir()
                with pinned(db):
                    for suffix in ("", "-wal", "-shm"):
                        src = db.with_name(db.name + suffix)
                        if src.exists():
                            shutil.copyfile(src, target / (db.name + suffix))
                snapshots.append((target / db.name, before))
        finally:
            proc.kill()
            proc.wait(10)
        missing = corrupt = unopenable = 0
        for copy, before in snapshots:
            want = acked[:before]
            try:
                if which == "gateway":
                    with GatewayStore(copy, min_free_bytes=0) as store:
                        missing += sum(1 for c in want if store.get(bytes.fromhex(c)) is None)
                else:
                    cstore = CoordinatorStore(f"sqlite:///{copy}")
                    cstore.close()
                    missing += len(set(want) - at_coordinator(copy))
            except Exception:  # a copy the store cannot open is the finding
                unopenable += 1
                continue
            conn = sqlite3.connect(copy)
            try:
                corrupt += conn.execute("PRAGMA integrity_check").fetchone()[0] != "ok"
            finally:
                conn.close()
        total = sum(before for _, before in snapshots)
        out.counts.update(
            {
                f"{which} copies": len(snapshots),
                f"{which} commits acknowledged": len(acked),
                f"{which} acknowledged before a copy, checked": total,
                f"{which} missing": missing,
                f"{which} integrity failures": corrupt,
                f"{which} copies that did not open": unopenable,
            }
        )
        run = f"{len(snapshots)} copies, {len(acked):,} commits, seed {seed}"
        out.zero(
            f"{which} store: copies that did not open", f"{which} copies that did not open", run
        )
        out.zero(f"{which} store: integrity_check not ok", f"{which} integrity failures", run)
        out.zero(f"{which} store: committed before the copy, missing", f"{which} missing", run)
    out.seconds = time.monotonic() - started_at
    return out


# -- 4. the uplink flaps: broker outages while the gateway drains over MQTT -----------------


def flap(directory: Path, reports: int, outages: int, seed: int = 7) -> Outcome:
    """The gateway's real intake, store, UplinkWorker and MqttUplink publish to a real
    Mosquitto that is stopped and started ``outages`` times while reports keep coming in;
    `coordinator ingest-mqtt` (2 workers) takes them into SQLite. The outages are SIGTERM
    stops: Mosquitto saves its queues then. A SIGKILL would lose what it acknowledged since
    its last autosave, which is the broker's documented limit (docs/uplinks.md), not ours."""
    started_at = time.monotonic()
    rng = random.Random(seed)
    net = make_network(directory, gateways=1)
    announcements, packets = seal_reports(directory, net.profile, 50, reports, rng)
    port = net.profile.app_port
    db = directory / "coordinator.db"
    broker = Mosquitto(directory / "mosquitto")
    broker.start()
    ingest = IngestMqtt(net.coordinator_config(db, broker), workers=2)
    store = GatewayStore(directory / "gateway.sqlite", min_free_bytes=0)
    intake = GatewayIntake(store, wire.Keyring(net.profile.public_key), ["mqtt"], app_port=port)
    gwbench.unlimited(intake)  # the soak is about the uplink, not the intake's rate limits
    uplink = MqttUplink(
        broker.host, broker.port, network_id=net.profile.network_id, gateway=net.gateways[0].key,
        client_id="soak-gw", name="mqtt", reconnect_max_delay=2,
    )  # fmt: skip
    worker = UplinkWorker(uplink, store, batch_size=50, seed=seed, backoff_max=2.0)
    worker.start()
    n = 0

    def hear(k: int) -> None:
        nonlocal n
        for raw in packets[n : n + k]:
            intake.handle(gwbench.received(raw, 0x1000 + n % 50, port, 1000 + n))
            n += 1
        worker.notify()

    try:
        wait_until(lambda: ingest.subscriptions() >= 2, 60, "the ingest workers did not subscribe")
        for i, a in enumerate(announcements):
            intake.handle(gwbench.received(a, 0x1000 + i, port, i))
        per = -(-reports // max(outages, 1))
        for _ in range(outages):
            hear(per // 2)
            time.sleep(rng.uniform(0.3, 1.5))  # up: some of the backlog goes out
            broker.stop()
            hear(per - per // 2)  # heard while the broker is down: they wait in the store
            time.sleep(rng.uniform(0.2, 1.0))
            broker.start()
        hear(len(packets) - n)

        def drained() -> bool:
            return int(store.stats(time.time())["uplinks"]["mqtt"]["pending_total"]) == 0

        wait_until(drained, 600, "the gateway's MQTT backlog did not drain")

        def all_in() -> bool:
            got, waiting = coordinator_counts(db)
            return got >= len(committed(directory / "gateway.sqlite")) and waiting == 0

        wait_until(all_in, 300, "the coordinator did not get every committed report")
        exit_code = ingest.stop()
    finally:
        worker.stop()
        uplink.close()
        store.close()
        if ingest.alive():
            ingest.kill_all()
        broker.stop()
    stored = committed(directory / "gateway.sqlite")
    got = at_coordinator(db)
    out = Outcome("flap", seconds=time.monotonic() - started_at)
    out.counts = {
        "outages": outages,
        "heard": n,
        "committed": len(stored),
        "lost": len(stored - got),
        "invented": len(got - stored),
        "exit code after SIGTERM": exit_code,
        **coordinator_duplicates(db, "mqtt"),
    }
    run = f"{len(stored):,} reports, {outages} broker stop/start, seed {seed}"
    out.zero("reports lost", "lost", run)
    out.zero("duplicate report ids at the coordinator", "duplicate report ids", run)
    out.zero(
        "feed rows beyond one per report (receipts per gateway+uplink > 1)",
        "reports with two receipts of one gateway",
        run,
    )
    return out


# -- 5. footprint ---------------------------------------------------------------------------


def footprint(directory: Path, minutes: float) -> Outcome:
    """bench/gateway.py's daemon run (real `signalfire gateway run`, emulated radio on TCP,
    HTTPS uplink to a local coordinator) with an idle window of ``minutes``."""
    started_at = time.monotonic()
    world = gwbench.World(directory, civilians=4, each=1)
    daemon = gwbench.daemon_run(world, minutes * 60)
    v = daemon.values
    out = Outcome("footprint", seconds=time.monotonic() - started_at)
    out.counts = {"exit code after SIGTERM": int(v[gwbench.ROW_EXIT])}
    run = f"{minutes:g} min idle window, emulator attached"
    peak = max(v[gwbench.ROW_HWM], v[gwbench.ROW_RSS_END])
    out.figures += [
        Figure(out.soak, "gateway RSS, peak (VmHWM)", f"<= {RSS_GOAL_MIB:.0f} MiB",
               f"{peak:.1f} MiB", peak <= RSS_GOAL_MIB, run),
        Figure(out.soak, "gateway idle CPU, % of one core", f"<= {CPU_GOAL_PCT:g} %",
               f"{v[gwbench.ROW_CPU_PCT]:.3f} %", v[gwbench.ROW_CPU_PCT] <= CPU_GOAL_PCT, run),
    ]  # fmt: skip
    out.info("gateway RSS at the end of the window", f"{v[gwbench.ROW_RSS_END]:.1f} MiB", run)
    return out


# -- the table --------------------------------------------------------------------------------

HEADER = ["soak", "figure", "target", "measured", "result", "run"]


def row(f: Figure) -> list[str]:
    result = "-" if f.passed is None else "pass" if f.passed else "FAIL"
    return [f.soak, f.name, f.target, f.measured, result, f.run]


def not_run(soak: str) -> list[str]:
    return [soak, "(all)", "-", "-", "not run", "-"]


def machine_line() -> str:
    mosquitto = find_binary()
    version = "not installed"
    if mosquitto:
        done = subprocess.run([mosquitto, "-h"], capture_output=True, text=True, check=False)
        version = (done.stdout.splitlines() or ["?"])[0]
    load = os.getloadavg()
    return (
        f"{benchkit.cpu_model()}, {os.cpu_count()} logical CPUs, {platform.platform()}, "
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, {version}; load average at the start "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (shared with other work)"
    )


def previous_rows(text: str) -> list[list[str]]:
    """The table rows of the Soak section in RESULTS.md, to keep those not rerun."""
    start = text.find("\n" + SECTION + "\n")
    if start < 0:
        return []
    end = text.find("\n## ", start + 1)
    body = text[start : end if end >= 0 else len(text)]
    rows = []
    for line in body.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == len(HEADER) and cells[0] in SOAKS:
            rows.append(cells)
    return rows


def section(rows: list[list[str]], machine: str, ran: str) -> str:
    table = benchkit.table(HEADER, rows, [False] * len(HEADER))
    return (
        f"{SECTION}\n\n`scripts/soak` (bench/soak.py): the long versions of the soaks of "
        "issue 9; tests/test_soak_short.py runs short versions of the same. Rows keep the "
        "run that produced them; the `run` column says what ran.\n\n"
        f"Last run: {ran}\n\nMachine: {machine}\n\n{table}\n"
    )


def write_results(rows: list[list[str]], machine: str, ran: str) -> None:
    text = RESULTS.read_text(encoding="utf-8")
    start = text.find("\n" + SECTION + "\n")
    new = section(rows, machine, ran)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + new
    else:
        end = text.find("\n## ", start + 1)
        text = text[: start + 1] + new + (text[end:] if end >= 0 else "")
    RESULTS.write_text(text, encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("soak", choices=["all", *SOAKS, "_gateway-writer", "_coordinator-writer"])
    parser.add_argument("paths", nargs="*", help=argparse.SUPPRESS)
    parser.add_argument("--cycles", type=int, default=200, help="crash-gateway: kill -9 cycles")
    parser.add_argument("--kills", type=int, default=40, help="crash-ingest: kill -9s")
    parser.add_argument("--reports", type=int, default=None,
                        help="crash-ingest (default 4,000) and flap (default 10,000)")  # fmt: skip
    parser.add_argument("--outages", type=int, default=100, help="flap: broker stop/starts")
    parser.add_argument("--copies", type=int, default=100, help="power-loss: copies per store")
    parser.add_argument("--minutes", type=float, default=10.0, help="footprint: idle window")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dir", type=Path, default=None, help="where to put the databases")
    parser.add_argument("--no-write", action="store_true", help="leave bench/RESULTS.md alone")
    args = parser.parse_args(argv)
    if args.soak == "_gateway-writer":
        gateway_writer(Path(args.paths[0]))
        return 0
    if args.soak == "_coordinator-writer":
        coordinator_writer(Path(args.paths[0]), Path(args.paths[1]))
        return 0
    chosen = list(SOAKS) if args.soak == "all" else [args.soak]
    machine = machine_line()
    began = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    outcomes: list[Outcome] = []
    failed: list[str] = []
    for name in chosen:
        with tempfile.TemporaryDirectory(dir=args.dir, prefix=f"signalfire-soak-{name}-") as tmp:
            d = Path(tmp)
            print(f"soak {name} ...", file=sys.stderr, flush=True)
            try:
                if name == "crash-gateway":
                    outcome = crash_gateway(d, args.cycles, args.seed)
                elif name == "crash-ingest":
                    outcome = crash_ingest(d, args.kills, args.reports or 4000, args.seed)
                elif name == "power-loss":
                    outcome = power_loss(d, args.copies, args.seed)
                elif name == "flap":
                    outcome = flap(d, args.reports or 10_000, args.outages, args.seed)
                else:
                    outcome = footprint(d, args.minutes)
            except SoakError as exc:
                outcome = Outcome(name)
                outcome.figures.append(Figure(name, "finished", "yes", str(exc), False, ""))
            print(f"soak {name}: {outcome.seconds:.0f} s, {outcome.counts}", file=sys.stderr)
            outcomes.append(outcome)
            if not outcome.passed:
                failed.append(name)
    for f in (f for o in outcomes for f in o.figures):
        f.run = f"{began[:10]}: {f.run}" if f.run else began[:10]
    rows = [row(f) for o in outcomes for f in o.figures]
    ran_now = {o.soak for o in outcomes}
    kept = [r for r in previous_rows(RESULTS.read_text(encoding="utf-8")) if r[0] not in ran_now]
    order = {s: i for i, s in enumerate(SOAKS)}
    everything = sorted(rows + kept, key=lambda r: order[r[0]])
    present = {r[0] for r in everything}
    everything += [not_run(s) for s in SOAKS if s not in present]
    everything.sort(key=lambda r: order[r[0]])
    ran = f"{began}: {', '.join(f'{o.soak} ({o.seconds:.0f} s)' for o in outcomes)}"
    print(section(everything, machine, ran))
    if not args.no_write:
        write_results(everything, machine, ran)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

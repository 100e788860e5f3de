"""MQTT ingest against a real Mosquitto: shared subscription, acks after commit, redelivery.

The stream is what gateways publish (gateway/uplinks/mqtt.py): one signed
batch of one packet per message, QoS 1, on signalfire/v1/<network>/reports/<gateway>.
Every packet is made with signalfire's own API (kit.Sender, batch.encode).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as paho
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from mosquitto import Mosquitto
from signalfire import batch as batchfmt
from signalfire import wire
from signalfire.coordinator.cli import coordinator
from signalfire.coordinator.config import ConfigError, MqttSettings, load_config
from signalfire.coordinator.ingest import GatewayRefused, IngestResult
from signalfire.coordinator.mqtt_ingest import MqttIngestWorker, worker_client_id
from signalfire.coordinator.store import CoordinatorStore, normalize_url, reports
from signalfire.profile import NetworkProfile, init_network

from .kit import NOW, Sender, World, drop_postgres_database, fresh_postgres_database, pid

REPO = Path(__file__).resolve().parents[2]
N_GATEWAYS = 5
N_SENDERS = 50
N_REPORTS = 10_000
KILL_STREAM_REPORTS = 3_000
STATUSES = [wire.Status.SAFE, wire.Status.SOS, wire.Status.MEDICAL, wire.Status.EVACUATE]
_STATS_RE = re.compile(r"ingest worker (\d+) stopped: (.*)$")
_SUBSCRIBED_RE = re.compile(
    r"ingest worker (\d+) \(pid (\d+)\) subscribed as \S+ \(session (\w+)\)"
)


@dataclass
class Network:
    profile: NetworkProfile
    directory: Path
    gateways: list[Ed25519PrivateKey]

    def topic(self, gateway: Ed25519PrivateKey) -> str:
        key_id = wire.key_id(wire.ed25519_public_bytes(gateway)).hex()
        return f"signalfire/v1/{self.profile.network_id.hex()}/reports/{key_id}"

    def message(self, packet: bytes, gateway: Ed25519PrivateKey, n: int) -> tuple[str, bytes]:
        """What MqttUplink publishes for one packet heard by ``gateway``."""
        payload = batchfmt.encode(
            [
                batchfmt.BatchItem(
                    packet, received_at=time.time() - 5, radio_node=0x1000 + n % 97, snr=5.5
                )
            ],
            gateway=gateway,
            network_id=self.profile.network_id,
            batch_id=f"copy-{pid(packet)}",
            sent_at=int(time.time()),
        )
        return self.topic(gateway), payload


@dataclass
class Stream:
    messages: list[tuple[str, bytes]]  # announcements first, as gateways send them
    report_ids: set[str]
    announcement_ids: set[str]


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Network:
    directory = tmp_path_factory.mktemp("network")
    profile, _ = init_network(directory, "testnet")
    return Network(profile, directory, [Ed25519PrivateKey.generate() for _ in range(N_GATEWAYS)])


@pytest.fixture(scope="module")
def stream(network: Network) -> Stream:
    """10,000 reports of 50 senders, each sender heard by one of 5 gateways."""
    senders = [Sender(network.profile.public_key) for _ in range(N_SENDERS)]
    messages = [
        network.message(s.announcement, network.gateways[i % N_GATEWAYS], i)
        for i, s in enumerate(senders)
    ]
    report_ids: set[str] = set()
    now = time.time()
    for n in range(N_REPORTS):
        i = n % N_SENDERS
        packet = senders[i].report(
            STATUSES[n % len(STATUSES)], time=now - (N_REPORTS - n), text=f"r{n}"
        )
        report_ids.add(pid(packet))
        messages.append(network.message(packet, network.gateways[i % N_GATEWAYS], n))
    assert len(report_ids) == N_REPORTS
    return Stream(messages, report_ids, {pid(s.announcement) for s in senders})


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path / "mosquitto")  # skips (fails in CI) without mosquitto
    broker.start()
    yield broker
    broker.stop()


def write_config(
    tmp_path: Path, network: Network, database_url: str, broker: Mosquitto, group: str = "coord"
) -> Path:
    gateways = "".join(
        f'\n[[gateways]]\nname = "gw{i}"\nkey = "{wire.ed25519_public_bytes(key).hex()}"\n'
        for i, key in enumerate(network.gateways)
    )
    path = tmp_path / "coordinator.toml"
    path.write_text(
        f'[database]\nurl = "{database_url}"\n\n'
        f'[network]\nprofile = "{network.directory / "network.json"}"\n'
        f'key = "{network.directory / "network.key"}"\n\n'
        f'[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\ngroup = "{group}"\n'
        f'client_id = "test-{uuid.uuid4().hex[:8]}"\n' + gateways
    )
    return path


class Publisher:
    """The gateways: one MQTT client each, QoS 1, every PUBACK checked."""

    def __init__(self, broker: Mosquitto, network: Network) -> None:
        self.clients: dict[str, paho.Client] = {}
        self.reasons: list[ReasonCode] = []
        self._lock = threading.Lock()
        for gateway in network.gateways:
            topic = network.topic(gateway)
            client = paho.Client(
                callback_api_version=CallbackAPIVersion.VERSION2,
                client_id=f"gw-{topic[-16:]}",
                protocol=paho.MQTTv5,
            )
            client.max_inflight_messages_set(100)
            client.on_publish = self._on_publish
            client.connect(broker.host, broker.port)
            client.loop_start()
            self.clients[topic] = client

    def _on_publish(
        self,
        client: paho.Client,
        userdata: object,
        mid: int,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        with self._lock:
            self.reasons.append(reason)

    def publish(self, messages: list[tuple[str, bytes]]) -> None:
        infos = [self.clients[topic].publish(topic, payload, qos=1) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(timeout=60)
        with self._lock:
            # 0x10 "no matching subscribers" would mean the broker dropped the report.
            assert all(r.value == 0 for r in self.reasons), {str(r) for r in self.reasons}

    def close(self) -> None:
        for client in self.clients.values():
            client.disconnect()
            client.loop_stop()


@pytest.fixture
def publisher(broker: Mosquitto, network: Network) -> Iterator[Publisher]:
    pub = Publisher(broker, network)
    yield pub
    pub.close()


@dataclass
class IngestProcess:
    """`signalfire coordinator ingest-mqtt` as operators run it, stderr collected."""

    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, config: Path, workers: int) -> IngestProcess:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from signalfire.cli import main; main()",
                "coordinator",
                "ingest-mqtt",
                "--config",
                str(config),
                "--workers",
                str(workers),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        me = cls(proc)
        threading.Thread(target=me._read, daemon=True).start()
        return me

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def matches(self, pattern: re.Pattern[str]) -> list[re.Match[str]]:
        return [m for line in list(self.lines) if (m := pattern.search(line))]

    def wait_for(self, what: Callable[[], bool], timeout: float, why: str) -> None:
        deadline = time.monotonic() + timeout
        while not what():
            assert self.proc.poll() is None, "ingest-mqtt exited:\n" + "\n".join(self.lines)
            assert time.monotonic() < deadline, f"{why}; stderr:\n" + "\n".join(self.lines)
            time.sleep(0.25)

    def subscribed(self) -> list[tuple[int, int, str]]:
        return [(int(m[1]), int(m[2]), m[3]) for m in self.matches(_SUBSCRIBED_RE)]

    def stop(self) -> dict[int, dict[str, int]]:
        """SIGTERM; each worker's stop line, parsed."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        time.sleep(0.1)  # the reader thread takes the last lines
        assert self.proc.returncode == 0, "\n".join(self.lines)
        assert "ingest-mqtt stopped" in self.lines
        return {
            int(m[1]): {k: int(v) for k, v in (kv.split("=") for kv in m[2].split())}
            for m in self.matches(_STATS_RE)
        }

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def ingest_processes() -> Iterator[list[IngestProcess]]:
    started: list[IngestProcess] = []
    yield started
    for p in started:
        p.kill()


def stored(database_url: str) -> tuple[dict[str, int], list[str]]:
    store = CoordinatorStore(database_url)
    try:
        with store.transaction(write=False) as tx:
            return tx.counts(), list(tx.conn.execute(sa.select(reports.c.id)).scalars())
    finally:
        store.close()


def leftovers(broker: Mosquitto, client_id: str, wait: float = 1.0) -> list[bytes]:
    """What the broker still holds for a worker's session: resent on a resuming connect."""
    got: list[bytes] = []
    present: list[bool] = []
    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=paho.MQTTv5,
    )
    client.manual_ack_set(True)  # look, do not take
    client.on_message = lambda c, u, m: got.append(m.payload)
    client.on_connect = lambda c, u, flags, r, p: present.append(flags.session_present)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    client.connect(broker.host, broker.port, clean_start=False, properties=props)
    client.loop_start()
    time.sleep(wait)
    client.disconnect()
    client.loop_stop()
    assert present == [True], "the worker's session should still be there"
    return got


def report_count(database_url: str) -> Callable[[], tuple[int, int]]:
    """(reports, pending) from a plain read-only connection: polling through
    CoordinatorStore would take SQLite's write lock at every look (schema check)."""
    engine = sa.create_engine(normalize_url(database_url), poolclass=sa.pool.NullPool)

    def count() -> tuple[int, int]:
        with engine.connect() as conn:
            return (
                conn.exec_driver_sql("SELECT count(*) FROM reports").scalar_one(),
                conn.exec_driver_sql("SELECT count(*) FROM pending").scalar_one(),
            )

    return count


def wait_stored(database_url: str, want: int, ingest: IngestProcess, timeout: float) -> None:
    count = report_count(database_url)

    def done() -> bool:
        n, pending = count()
        return n >= want and pending == 0

    ingest.wait_for(done, timeout, f"the store did not reach {want} reports")


def check_exactly_once(database_url: str, report_ids: set[str]) -> None:
    counts, ids = stored(database_url)
    assert len(ids) == len(set(ids)) == len(report_ids)
    assert set(ids) == report_ids  # none lost, none invented
    assert counts["receipts"] == len(report_ids)  # one gateway heard each, once
    assert counts["announcements"] == N_SENDERS
    assert counts["batches"] == len(report_ids) + N_SENDERS  # every message ingested, once
    assert counts["pending"] == 0 and counts["rejection_samples"] == 0


@pytest.mark.slow
def test_two_workers_split_10000_reports(
    tmp_path: Path,
    network: Network,
    stream: Stream,
    database_url: str,
    broker: Mosquitto,
    publisher: Publisher,
    ingest_processes: list[IngestProcess],
) -> None:
    config = write_config(tmp_path, network, database_url, broker)
    ingest = IngestProcess.start(config, workers=2)
    ingest_processes.append(ingest)
    ingest.wait_for(lambda: len(ingest.subscribed()) == 2, 30, "workers did not subscribe")

    publisher.publish(stream.messages)
    wait_stored(database_url, N_REPORTS, ingest, timeout=120)
    stats = ingest.stop()

    check_exactly_once(database_url, stream.report_ids)
    assert sorted(stats) == [1, 2]
    total = len(stream.messages)
    # No reconnection, no redelivery: every message reached exactly one worker once.
    assert sum(s["messages"] for s in stats.values()) == total
    for s in stats.values():
        assert s["messages"] > total // 4, stats  # both did a real share
        assert s["acked"] == s["messages"] and s["unacked"] == 0, stats
        assert s["bad"] == s["refused"] == s["rejected"] == s["database_errors"] == 0, stats
    # Nothing is left in the broker for either worker.
    cfg = load_config(config)
    assert cfg.mqtt is not None
    for index in (1, 2):
        assert leftovers(broker, worker_client_id(cfg.mqtt, index)) == []


@pytest.mark.slow
def test_a_worker_killed_mid_stream_loses_nothing(
    tmp_path: Path,
    network: Network,
    stream: Stream,
    database_url: str,
    broker: Mosquitto,
    publisher: Publisher,
    ingest_processes: list[IngestProcess],
) -> None:
    # A part of the stream is enough to kill a worker in the middle of it.
    messages = stream.messages[: N_SENDERS + KILL_STREAM_REPORTS]
    report_ids = {pid(batchfmt.decode(p).items[0].packet) for _, p in messages[N_SENDERS:]}
    config = write_config(tmp_path, network, database_url, broker)
    ingest = IngestProcess.start(config, workers=2)
    ingest_processes.append(ingest)
    ingest.wait_for(lambda: len(ingest.subscribed()) == 2, 30, "workers did not subscribe")
    victim = {index: pid_ for index, pid_, _ in ingest.subscribed()}[1]

    sending = threading.Thread(target=publisher.publish, args=(messages,))
    sending.start()
    count = report_count(database_url)
    ingest.wait_for(lambda: count()[0] >= len(report_ids) // 4, 60, "ingest did not start")
    os.kill(victim, signal.SIGKILL)  # mid-stream: some received, some committed, not all acked
    sending.join()
    # The supervisor restarts it with the same client id; its session kept what it had
    # not acknowledged and what the broker queued for it meanwhile.
    ingest.wait_for(lambda: len(ingest.subscribed()) == 3, 30, "worker 1 was not restarted")
    index, _, session = ingest.subscribed()[-1]
    assert (index, session) == (1, "resumed")
    wait_stored(database_url, len(report_ids), ingest, timeout=60)
    stats = ingest.stop()

    check_exactly_once(database_url, report_ids)
    assert any("ingest worker 1 died (signal 9)" in line for line in ingest.lines)
    assert stats[1]["messages"] > 0  # the restarted worker took up its share
    assert all(s["unacked"] == 0 for s in stats.values()), stats
    cfg = load_config(config)
    assert cfg.mqtt is not None
    for i in (1, 2):
        assert leftovers(broker, worker_client_id(cfg.mqtt, i)) == []


# -- one worker in this process: what is acknowledged and what is not -----------------------


class Running:
    """An MqttIngestWorker running in a thread until stop()."""

    def __init__(self, worker: MqttIngestWorker) -> None:
        self.worker = worker
        self.ready = threading.Event()
        self.resumed: bool | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self.ready.wait(10), "the worker did not subscribe"

    def _run(self) -> None:
        def ready(resumed: bool) -> None:
            self.resumed = resumed
            self.ready.set()

        self.worker.run(self._stop, ready=ready)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        assert not self._thread.is_alive()


def publish_once(broker: Mosquitto, messages: list[tuple[str, bytes]]) -> None:
    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=f"gw-{uuid.uuid4().hex[:8]}",
        protocol=paho.MQTTv5,
    )
    client.connect(broker.host, broker.port)
    client.loop_start()
    for topic, payload in messages:
        client.publish(topic, payload, qos=1).wait_for_publish(10)
    client.disconnect()
    client.loop_stop()


def until(condition: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def mqtt_settings(broker: Mosquitto) -> MqttSettings:
    return MqttSettings(
        host=broker.host, port=broker.port, group="t", client_id=f"t-{uuid.uuid4().hex[:8]}"
    )


def gateway_topic(world: World, gateway: str | Ed25519PrivateKey = "gw1") -> str:
    key = world.gateways[gateway] if isinstance(gateway, str) else gateway
    key_id = wire.key_id(wire.ed25519_public_bytes(key)).hex()
    return f"signalfire/v1/{world.network_id.hex()}/reports/{key_id}"


def test_ingest_batches_answers_each_message_in_order(
    world: World, store: CoordinatorStore
) -> None:
    """One transaction for many messages, one answer each, as the worker needs them."""
    ingestor = world.ingestor(store)
    alice = world.sender()
    report = alice.report()
    first = world.batch([alice.announcement])
    stranger = Ed25519PrivateKey.generate()
    out = ingestor.ingest_batches(
        [
            b"junk",
            first,
            world.batch([alice.report()], stranger),
            world.batch([report]),
            first,  # the same bytes again within the group: a replay
            world.batch([report], "gw2"),  # the same report through another gateway
        ],
        "mqtt",
        NOW,
    )
    assert isinstance(out[0], batchfmt.BatchError)
    assert isinstance(out[1], IngestResult) and out[1].stored == [pid(alice.announcement)]
    assert isinstance(out[2], GatewayRefused) and out[2].code == "unknown-gateway"
    assert isinstance(out[3], IngestResult) and out[3].stored == [pid(report)]
    assert isinstance(out[4], IngestResult) and out[4].replayed
    assert isinstance(out[5], IngestResult) and out[5].duplicates == [pid(report)]
    with store.transaction(write=False) as tx:
        assert [r.gateway_key_id for r in tx.receipts(pid(report))] == [
            wire.key_id(wire.ed25519_public_bytes(world.gateways[g])).hex() for g in ("gw1", "gw2")
        ]


def test_junk_and_strangers_are_acknowledged_and_counted(
    world: World, store: CoordinatorStore, broker: Mosquitto
) -> None:
    """They can never become good: logged, counted, acknowledged, never redelivered."""
    settings = mqtt_settings(broker)
    running = Running(MqttIngestWorker(world.ingestor(store), settings, max_group=4))
    alice = world.sender()
    stranger = Ed25519PrivateKey.generate()
    good = world.batch([alice.announcement])
    report = world.batch([alice.report()])
    publish_once(
        broker,
        [
            (gateway_topic(world), b"not a batch"),
            (gateway_topic(world), good),
            (gateway_topic(world, stranger), world.batch([alice.report()], stranger)),
            # signed by gw1, published under gw2's name: the signature decides
            (gateway_topic(world, "gw2"), report),
            (gateway_topic(world), good),  # a copy: replayed, changes nothing
        ],
    )
    until(lambda: running.worker.stats.acked == 5)
    running.stop()
    stats = running.worker.stats
    assert (stats.messages, stats.acked, stats.unacked) == (5, 5, 0)
    assert (stats.bad, stats.refused, stats.stored, stats.replayed) == (1, 1, 2, 1)
    assert stats.topic_mismatch == 1
    with store.transaction(write=False) as tx:
        assert tx.counts()["reports"] == 1
    assert leftovers(broker, running.worker.client_id, wait=0.5) == []


def test_broker_restart_mid_stream_loses_and_duplicates_nothing(
    world: World, store: CoordinatorStore, broker: Mosquitto
) -> None:
    """What the worker held when the connection dropped comes again; each report is kept once."""
    senders = [world.sender() for _ in range(5)]
    packets = [s.report(text=f"{n}") for n in range(100) for s in senders]
    messages = [(gateway_topic(world), world.batch([s.announcement])) for s in senders]
    messages += [(gateway_topic(world), world.batch([p])) for p in packets]
    running = Running(MqttIngestWorker(world.ingestor(store), mqtt_settings(broker)))
    publish_once(broker, messages)
    until(lambda: running.worker.stats.acked >= 100)
    broker.stop()  # SIGTERM: Mosquitto saves sessions and queued messages
    broker.start()
    until(lambda: _count(store, "reports") == len(packets) and _count(store, "pending") == 0, 60)
    until(lambda: running.worker.stats.unacked == 0 and running.worker._inbox.empty())
    running.stop()
    stats = running.worker.stats
    assert stats.stored + stats.released == len(messages)  # each one stored once
    # What the worker held at the drop came again, and so did anything whose PUBACK the
    # broker had not taken in: ingested twice, stored once.
    assert stats.messages > len(messages) and stats.replayed == stats.messages - len(messages)
    # Copies from the dead connection are not acknowledged; every other delivery is.
    assert stats.acked == stats.messages - stats.not_acked_stale and stats.unacked == 0
    with store.transaction(write=False) as tx:
        assert tx.counts()["receipts"] == len(packets)
    assert leftovers(broker, running.worker.client_id, wait=0.5) == []


def _count(store: CoordinatorStore, table: str) -> int:
    with store.transaction(write=False) as tx:
        return tx.counts()[table]


def test_database_outage_is_not_acknowledged_and_redelivered(
    tmp_path: Path,
    postgres_admin_url: str,
    broker: Mosquitto,
) -> None:
    """A real outage: the worker's PostgreSQL database disappears under it."""
    url = fresh_postgres_database(postgres_admin_url)
    world = World(tmp_path, url)
    settings = mqtt_settings(broker)
    first = Running(MqttIngestWorker(world.ingestor(), settings))
    drop_postgres_database(postgres_admin_url, url)
    alice = world.sender()
    packet = alice.report(text="second floor")
    publish_once(
        broker,
        [
            (gateway_topic(world), world.batch([alice.announcement])),
            (gateway_topic(world), world.batch([packet])),
        ],
    )
    until(lambda: first.worker.stats.database_errors >= 1)
    first.stop()  # still failing: the messages stay with the broker, unacknowledged
    assert first.worker.stats.acked == 0 and first.worker.stats.unacked == 2

    # The database comes back (empty); the same worker identity starts again.
    admin = sa.create_engine(normalize_url(postgres_admin_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {normalize_url(url).database}")
    admin.dispose()
    store = world.store()
    second = Running(MqttIngestWorker(world.ingestor(store), settings))
    until(lambda: second.worker.stats.acked == 2)
    second.stop()
    assert second.resumed is True
    with store.transaction(write=False) as tx:
        row = tx.report(pid(packet))
    assert row is not None and row["text"] == "second floor"
    store.close()
    drop_postgres_database(postgres_admin_url, url)
    assert leftovers(broker, second.worker.client_id, wait=0.5) == []


def test_wrong_password_stops_ingest_with_the_reason(
    tmp_path: Path, network: Network, ingest_processes: list[IngestProcess]
) -> None:
    broker = Mosquitto(tmp_path / "mosquitto", users={"ingest": "right"})
    broker.start()
    try:
        config = write_config(tmp_path, network, f"sqlite:///{tmp_path / 'c.db'}", broker)
        (tmp_path / "mqtt-password").write_text("wrong\n")
        config.write_text(
            config.read_text().replace(
                "[mqtt]\n", '[mqtt]\nusername = "ingest"\npassword_file = "mqtt-password"\n'
            )
        )
        ingest = IngestProcess.start(config, workers=2)
        ingest_processes.append(ingest)
        assert ingest.proc.wait(timeout=30) == 1
        time.sleep(0.1)
        text = "\n".join(ingest.lines)
        assert "refused the connection" in text and "check the [mqtt] settings" in text, text
        assert "error: MQTT ingest stopped" in text
    finally:
        broker.stop()


def test_mqtt_settings_are_checked_at_start(tmp_path: Path, network: Network) -> None:
    path = tmp_path / "coordinator.toml"
    path.write_text(
        f'[network]\nprofile = "{network.directory / "network.json"}"\n'
        f'key = "{network.directory / "network.key"}"\n'
        "[mqtt]\n"
        'host = ""\nport = 0\ngroup = "a/b"\ntopic_prefix = "x/#"\nca_file = "nope.pem"\n'
        'cert_file = "cert.pem"\npassword_file = "pw"\nqos = 2\n'
    )
    (tmp_path / "cert.pem").write_text("")
    (tmp_path / "pw").write_text("secret\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    problems = "\n".join(info.value.problems)
    for needle in (
        "[mqtt].host",
        "[mqtt].port",
        "[mqtt].group 'a/b'",
        "[mqtt].topic_prefix 'x/#'",
        "[mqtt].ca_file:",
        "cert_file and [mqtt].key_file go together",
        "need tls = true",
        "[mqtt].password_file needs [mqtt].username",
        "[mqtt].qos is not a setting",
    ):
        assert needle in problems, problems


def test_ingest_mqtt_needs_an_mqtt_section(tmp_path: Path, network: Network) -> None:
    path = tmp_path / "coordinator.toml"
    path.write_text(
        f'[network]\nprofile = "{network.directory / "network.json"}"\n'
        f'key = "{network.directory / "network.key"}"\n'
    )
    result = CliRunner().invoke(coordinator, ["ingest-mqtt", "--config", str(path)])
    assert result.exit_code == 1
    assert "has no [mqtt] section" in result.output

"""The MQTT uplink against a real Mosquitto broker and a coordinator-side paho subscriber."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from mosquitto import Mosquitto, make_tls_files
from signalfire import batch, wire
from signalfire.gateway.records import StoredPacket, Verified
from signalfire.gateway.uplinks.base import UplinkError
from signalfire.gateway.uplinks.mqtt import MqttUplink
from wirekit import Net

NET = Net("mqtt uplink")
NETWORK_ID = wire.network_id(NET.public)
GATEWAY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"mqtt test gateway").digest())
SENDER_KEY_ID = wire.key_id(wire.ed25519_public_bytes(NET.identity))
SHARED_FILTER = "$share/coordinators/signalfire/v1/+/reports/+"
WAIT = 20.0  # upper bound for anything the broker should do; tests finish far sooner


def make_packets(n: int) -> list[StoredPacket]:
    """``n`` real sealed reports, as the gateway's store would hand them to an uplink."""
    packets = []
    for i in range(n):
        report = wire.Report(status=wire.Status.SAFE, time=1_700_000_000 + i, people=1 + i % 5)
        raw = NET.seal(report)
        packets.append(
            StoredPacket(
                id=wire.packet_id(raw[: -wire.packet.SIGNATURE_SIZE]),
                raw=raw,
                kind="report",
                priority=0,
                key_id=SENDER_KEY_ID,
                seq=NET.seq - 1,
                received_at=1_700_000_100.5 + i,
                radio_node=0x1234ABCD,
                rx_snr=6.25,
                rx_rssi=-97,
                hops=2,
                verified=Verified.VERIFIED,
            )
        )
    return packets


class Coordinator:
    """A coordinator ingest worker: MQTT 5 persistent session on the shared subscription.

    Decodes every message as a signed batch and dedupes by packet id, as the
    coordinator's store does.
    """

    def __init__(
        self,
        broker: Mosquitto,
        client_id: str,
        *,
        username: str | None = None,
        password: str | None = None,
        cond: threading.Condition | None = None,
    ) -> None:
        self.received: Counter[bytes] = Counter()  # packet id -> copies received
        self.copies: set[bytes] = set()  # copy ids (sha256 of the raw packet, 16 bytes)
        self.batches: list[batch.Batch] = []
        self.topics: set[str] = set()
        self.redelivered = 0  # messages the broker flagged DUP (sent to us before)
        self.errors: list[str] = []
        # Workers may share one condition, so a test can wait on what they hold together.
        self._cond = cond or threading.Condition()
        self._subscribed = False
        self.client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=paho.MQTTv5,
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        if broker.tls is not None:
            self.client.tls_set(
                ca_certs=str(broker.tls.ca),
                certfile=str(broker.tls.client_cert),
                keyfile=str(broker.tls.client_key),
            )
        self.client.reconnect_delay_set(1, 2)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = 3600
        self.client.connect_async(
            broker.host, broker.port, clean_start=False, properties=properties
        )
        self.client.loop_start()
        assert self.wait(lambda: self._subscribed), f"{client_id} did not subscribe"

    def _on_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if not reason.is_failure:
            # Every time: a broker that lost the session (or never persisted the
            # subscription) must get it back before it drops reports for lack of subscribers.
            client.subscribe(SHARED_FILTER, qos=1)

    def _on_subscribe(
        self, client: paho.Client, userdata: Any, mid: int, reasons: list[ReasonCode], props: Any
    ) -> None:
        with self._cond:
            self._subscribed = all(not r.is_failure for r in reasons)
            self._cond.notify_all()

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        try:
            decoded = batch.decode(bytes(message.payload), network_id=NETWORK_ID)
        except batch.BatchError as exc:
            with self._cond:
                self.errors.append(exc.message)
            return
        with self._cond:
            self.batches.append(decoded)
            self.topics.add(message.topic)
            self.redelivered += message.dup
            for item in decoded.items:
                self.received[item.id] += 1
                self.copies.add(hashlib.sha256(item.packet).digest()[:16])
            self._cond.notify_all()

    def wait(self, predicate: Callable[[], bool], timeout: float = WAIT) -> bool:
        with self._cond:
            return self._cond.wait_for(predicate, timeout)

    @property
    def unique(self) -> set[bytes]:
        with self._cond:
            return set(self.received)

    @property
    def raw_count(self) -> int:
        with self._cond:
            return sum(self.received.values())

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def coordinator() -> Iterator[Callable[..., Coordinator]]:
    made: list[Coordinator] = []

    def make(broker: Mosquitto, client_id: str = "coordinator-1", **options: Any) -> Coordinator:
        worker = Coordinator(broker, client_id, **options)
        made.append(worker)
        return worker

    yield make
    for worker in made:
        worker.close()


@pytest.fixture
def uplink() -> Iterator[Callable[..., MqttUplink]]:
    made: list[MqttUplink] = []

    def make(broker: Mosquitto, **kwargs: Any) -> MqttUplink:
        up = MqttUplink(broker.host, broker.port, network_id=NETWORK_ID, gateway=GATEWAY, **kwargs)
        made.append(up)
        return up

    yield make
    for up in made:
        up.close()


# -- (a) -----------------------------------------------------------------------------------


def test_every_packet_is_acknowledged_and_received(
    broker: Mosquitto, uplink: Callable[..., MqttUplink], coordinator: Callable[..., Coordinator]
) -> None:
    coord = coordinator(broker)
    up = uplink(broker)
    packets = make_packets(200)

    delivery = up.send(packets)

    assert delivery.acknowledged == {p.copy_id for p in packets}
    assert coord.wait(lambda: len(coord.received) == 200)
    assert coord.unique == {p.id for p in packets}
    assert coord.raw_count == 200 and not coord.errors
    gateway_key_id = wire.key_id(wire.ed25519_public_bytes(GATEWAY))
    assert coord.topics == {f"signalfire/v1/{NETWORK_ID.hex()}/reports/{gateway_key_id.hex()}"}
    by_copy = {p.copy_id.hex(): p for p in packets}
    for decoded in coord.batches:
        # One packet per message, batch id = copy id, gateway metadata carried along.
        assert len(decoded.items) == 1 and decoded.gateway_key_id == gateway_key_id
        item, sent = decoded.items[0], by_copy[decoded.batch_id]
        assert item.packet == sent.raw and item.received_at == sent.received_at
        assert (item.radio_node, item.snr, item.rssi, item.hops, item.verified) == (
            0x1234ABCD,
            6.25,
            -97,
            2,
            "verified",
        )
    # A persistent session: clean start off, stable client id derived from the gateway key.
    assert up.client_id == f"signalfire-gw-{gateway_key_id.hex()}"
    assert f"as {up.client_id} (p5, c0," in broker.log_tail(200)


def test_forged_copy_with_the_same_packet_id_travels_separately(
    broker: Mosquitto, uplink: Callable[..., MqttUplink], coordinator: Callable[..., Coordinator]
) -> None:
    coord = coordinator(broker)
    up = uplink(broker)
    genuine = make_packets(1)[0]
    forged_raw = genuine.raw[:-1] + bytes([genuine.raw[-1] ^ 1])  # same header+body, bad signature
    forged = StoredPacket(**{**_fields(genuine), "raw": forged_raw})
    assert forged.id == genuine.id and forged.copy_id != genuine.copy_id

    delivery = up.send([genuine, forged])

    assert delivery.acknowledged == {genuine.copy_id, forged.copy_id}
    assert coord.wait(lambda: len(coord.copies) == 2)
    assert coord.received[genuine.id] == 2  # the coordinator keeps the one that verifies


def _fields(packet: StoredPacket) -> dict[str, Any]:
    return {name: getattr(packet, name) for name in StoredPacket.__slots__}


# -- (b) -----------------------------------------------------------------------------------


def test_broker_restart_mid_stream_loses_nothing(
    broker: Mosquitto,
    uplink: Callable[..., MqttUplink],
    coordinator: Callable[..., Coordinator],
    record_property: Callable[[str, object], None],
) -> None:
    coord = coordinator(broker)
    up = uplink(broker, publish_timeout=2.0)
    packets = make_packets(1000)
    acked: set[bytes] = set()
    errors: list[str] = []
    progress = threading.Condition()
    broker_stopped = threading.Event()
    give_up = threading.Event()

    def sender() -> None:
        # What the scheduler does: send what is not acknowledged, in order, retrying
        # after a short backoff when the uplink fails.
        while not give_up.is_set():
            with progress:
                todo = [p for p in packets if p.copy_id not in acked][:50]
                # Hold the second half back until the broker went down, so the outage
                # lands mid-stream whatever the machine's speed.
                if len(acked) >= 500 and not broker_stopped.is_set():
                    progress.wait(0.05)
                    continue
            if not todo:
                return
            try:
                delivery = up.send(todo)
            except UplinkError as exc:
                with progress:
                    errors.append(exc.message if exc.transient else f"PERMANENT: {exc.message}")
                    progress.notify_all()
                give_up.wait(0.1)
                continue
            with progress:
                acked.update(delivery.acknowledged)
                progress.notify_all()

    thread = threading.Thread(target=sender, name="scheduler")
    thread.start()
    try:
        with progress:
            assert progress.wait_for(lambda: len(acked) >= 300, WAIT)
        broker.stop()
        broker_stopped.set()
        with progress:
            assert progress.wait_for(lambda: len(errors) >= 3, WAIT)
        # The outage itself: the sender keeps failing (and backing off) meanwhile.
        give_up.wait(1.5)
        acked_before_restart = len(acked)
        broker.start()
        thread.join(WAIT * 2)
        assert not thread.is_alive(), f"sender stuck with {len(acked)} of 1000 acknowledged"
    finally:
        give_up.set()
        thread.join(5)

    assert not [e for e in errors if e.startswith("PERMANENT")]
    expected = {p.id for p in packets}
    assert coord.wait(lambda: set(coord.received) >= expected), (
        f"{len(expected - coord.unique)} packets never reached the coordinator"
    )
    assert coord.unique == expected  # exactly once after dedupe by packet id
    assert acked == {p.copy_id for p in packets}
    assert acked <= coord.copies  # what the broker acknowledged did arrive
    duplicates = coord.raw_count - len(expected)
    record_property("raw_duplicates", duplicates)
    print(
        f"\nbroker restart: 1000 packets, {coord.raw_count} messages received, "
        f"{duplicates} raw duplicates ({coord.redelivered} flagged as broker redeliveries), "
        f"{len(errors)} send errors, "
        f"{acked_before_restart} acknowledged before the restart; first error: {errors[0]}"
    )
    assert not coord.errors


# -- (c) -----------------------------------------------------------------------------------


def test_broker_down_from_the_start_then_up(
    mosquitto: Callable[..., Mosquitto],
    uplink: Callable[..., MqttUplink],
    coordinator: Callable[..., Coordinator],
) -> None:
    broker = mosquitto(start=False)
    up = uplink(broker)
    packets = make_packets(5)

    started = time.monotonic()
    with pytest.raises(UplinkError) as caught:
        up.send(packets)
    assert time.monotonic() - started < 2.0
    assert caught.value.transient
    assert f"{broker.host}:{broker.port}" in caught.value.message
    assert "refused" in caught.value.message
    assert up.probe() is False

    broker.start()
    coord = coordinator(broker)
    deadline = time.monotonic() + WAIT
    # probe() waits up to a second for the connection, so this loop does not spin.
    while not up.probe():
        assert time.monotonic() < deadline, "uplink did not reconnect"
    assert up.send(packets).acknowledged == {p.copy_id for p in packets}
    assert coord.wait(lambda: len(coord.received) == 5)


# -- (d) -----------------------------------------------------------------------------------


def test_username_and_password(
    mosquitto: Callable[..., Mosquitto],
    uplink: Callable[..., MqttUplink],
    coordinator: Callable[..., Coordinator],
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker = mosquitto(users={"gateway": "right horse battery", "coordinator": "c00rd"})
    coord = coordinator(broker, username="coordinator", password="c00rd")
    packets = make_packets(3)
    caplog.set_level(logging.DEBUG)

    wrong = uplink(broker, username="gateway", password="wrong staple")
    with pytest.raises(UplinkError) as caught:
        wrong.send(packets)
    assert not caught.value.transient
    assert "refused the connection" in caught.value.message
    assert "password" in caught.value.message
    assert wrong.probe() is False
    wrong.close()

    anonymous = uplink(broker)
    with pytest.raises(UplinkError) as caught:
        anonymous.send(packets)
    assert not caught.value.transient
    anonymous.close()

    right = uplink(broker, username="gateway", password="right horse battery")
    assert right.send(packets).acknowledged == {p.copy_id for p in packets}
    assert coord.wait(lambda: len(coord.received) == 3)
    assert "wrong staple" not in caplog.text and "right horse" not in caplog.text
    assert "wrong staple" not in repr(wrong) and "right horse" not in repr(right)


# -- TLS -----------------------------------------------------------------------------------


def test_tls_with_the_brokers_ca(
    mosquitto: Callable[..., Mosquitto],
    uplink: Callable[..., MqttUplink],
    coordinator: Callable[..., Coordinator],
    tmp_path: Path,
) -> None:
    broker = mosquitto(tls=True)
    assert broker.tls is not None
    coord = coordinator(broker)
    packets = make_packets(5)

    stranger_ca = make_tls_files(tmp_path / "other-ca").ca
    untrusting = uplink(broker, tls=True, ca_file=str(stranger_ca))
    with pytest.raises(UplinkError) as caught:
        untrusting.send(packets)
    assert not caught.value.transient
    assert "TLS certificate rejected" in caught.value.message
    untrusting.close()

    plain = uplink(broker)  # a TLS listener does not speak plain MQTT
    with pytest.raises(UplinkError):
        plain.send(packets)
    plain.close()

    up = uplink(broker, tls=True, ca_file=str(broker.tls.ca))
    assert up.send(packets).acknowledged == {p.copy_id for p in packets}
    assert coord.wait(lambda: len(coord.received) == 5)


def test_tls_client_certificate(
    mosquitto: Callable[..., Mosquitto],
    uplink: Callable[..., MqttUplink],
    coordinator: Callable[..., Coordinator],
) -> None:
    broker = mosquitto(client_certificates=True)
    assert broker.tls is not None
    coord = coordinator(broker)
    packets = make_packets(3)

    anonymous = uplink(broker, tls=True, ca_file=str(broker.tls.ca))
    with pytest.raises(UplinkError):
        anonymous.send(packets)
    anonymous.close()

    up = uplink(
        broker,
        tls=True,
        ca_file=str(broker.tls.ca),
        cert_file=str(broker.tls.client_cert),
        key_file=str(broker.tls.client_key),
    )
    assert up.send(packets).acknowledged == {p.copy_id for p in packets}
    assert coord.wait(lambda: len(coord.received) == 3)


def test_the_documented_broker_setup(
    mosquitto: Callable[..., Mosquitto],
    uplink: Callable[..., MqttUplink],
    coordinator: Callable[..., Coordinator],
    tmp_path: Path,
) -> None:
    """docs/uplinks.md's broker: TLS, a user per gateway, an ACL keeping each to its topic."""
    me = wire.key_id(wire.ed25519_public_bytes(GATEWAY)).hex()
    acl = tmp_path / "signalfire.acl"
    acl.write_text(
        "user ingest\ntopic read signalfire/v1/+/reports/+\n\n"
        "pattern write signalfire/v1/+/reports/%u\n"
    )
    broker = mosquitto(
        users={"ingest": "ingest-pw", me: "gw-pw", "impostor": "imp-pw"},
        tls=True,
        extra_config=f"acl_file {acl}\nautosave_on_changes true\nautosave_interval 1",
    )
    assert broker.tls is not None
    coord = coordinator(broker, username="ingest", password="ingest-pw")
    tls = {"tls": True, "ca_file": str(broker.tls.ca)}
    packets = make_packets(4)

    up = uplink(broker, username=me, password="gw-pw", **tls)
    assert up.send(packets).acknowledged == {p.copy_id for p in packets}
    assert coord.wait(lambda: len(coord.received) == 4)

    # Valid credentials, but publishing under another gateway's key id.
    impostor = uplink(broker, username="impostor", password="imp-pw", **tls)
    with pytest.raises(UplinkError) as caught:
        impostor.send(packets)
    assert not caught.value.transient and "ACL" in caught.value.message


# -- (e) -----------------------------------------------------------------------------------


def test_two_workers_share_the_stream_without_loss_or_overlap(
    broker: Mosquitto, uplink: Callable[..., MqttUplink], coordinator: Callable[..., Coordinator]
) -> None:
    shared = threading.Condition()
    first = coordinator(broker, "ingest-1", cond=shared)
    second = coordinator(broker, "ingest-2", cond=shared)
    up = uplink(broker)
    packets = make_packets(2000)

    for start in range(0, len(packets), 200):
        chunk = packets[start : start + 200]
        assert up.send(chunk).acknowledged == {p.copy_id for p in chunk}

    assert first.wait(lambda: len(set(first.received) | set(second.received)) == 2000)
    assert first.unique | second.unique == {p.id for p in packets}
    assert not first.unique & second.unique
    assert first.raw_count + second.raw_count == 2000
    # Mosquitto hands shared-subscription messages round robin: both did real work.
    assert min(first.raw_count, second.raw_count) >= 500


# -- beyond the brief's list -----------------------------------------------------------------


def test_hung_broker_retry_waits_for_the_queued_message_instead_of_copying_it(
    broker: Mosquitto, uplink: Callable[..., MqttUplink], coordinator: Callable[..., Coordinator]
) -> None:
    coord = coordinator(broker)
    up = uplink(broker, publish_timeout=0.3)
    packets = make_packets(10)
    assert up.probe()

    broker.pause()
    try:
        for _ in range(3):  # the scheduler retrying while the broker hangs
            with pytest.raises(UplinkError) as caught:
                up.send(packets)
            assert caught.value.transient and "acknowledged none" in caught.value.message
    finally:
        broker.resume()

    assert coord.wait(lambda: len(coord.received) == 10)
    # The PUBACKs that came after the timeouts count on the next attempt, without a resend.
    assert up.send(packets).acknowledged == {p.copy_id for p in packets}
    assert coord.raw_count == 10


def test_no_subscriber_means_not_delivered(
    broker: Mosquitto, uplink: Callable[..., MqttUplink], coordinator: Callable[..., Coordinator]
) -> None:
    up = uplink(broker)
    packets = make_packets(2)
    with pytest.raises(UplinkError) as caught:
        up.send(packets)
    assert caught.value.transient and "no subscriber" in caught.value.message

    coord = coordinator(broker)
    assert up.send(packets).acknowledged == {p.copy_id for p in packets}
    assert coord.wait(lambda: len(coord.received) == 2)


def test_close_disconnects_cleanly(broker: Mosquitto, uplink: Callable[..., MqttUplink]) -> None:
    up = uplink(broker)
    assert up.probe()
    up.close()
    up.close()
    with pytest.raises(UplinkError) as caught:
        up.send(make_packets(1))
    assert not caught.value.transient
    assert up.probe() is False
    deadline = time.monotonic() + WAIT
    while f"Client {up.client_id} disconnected." not in broker.log_tail(50):
        assert time.monotonic() < deadline, broker.log_tail(50)
        time.sleep(0.05)

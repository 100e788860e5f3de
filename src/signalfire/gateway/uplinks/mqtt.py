"""MQTT uplink: one signed batch per packet, QoS 1, persistent MQTT 5 session (paho-mqtt).

Topic ``{prefix}/{network_id_hex}/reports/{gateway_key_id_hex}``; each message is a
signed batch (signalfire.batch, docs/protocol.md section 15) holding exactly one
packet, so coordinator workers on an MQTT 5 shared subscription can share the
stream message by message. docs/uplinks.md is the operator's description.

Delivery is at-least-once: a packet counts as delivered for this uplink only
when the broker's PUBACK for it arrived with a success reason code. Everything
downstream is idempotent on the packet id, so a packet published twice (paho
retransmits unacknowledged messages after a reconnect, and the scheduler
retries what was not acknowledged) is harmless.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from ... import batch, wire
from ...mqtt_client import RememberingClient, describe_connect_error
from ..records import StoredPacket
from .base import Delivery, UplinkError

log = logging.getLogger(__name__)

DEFAULT_TOPIC_PREFIX = "signalfire/v1"
# A week: a gateway whose link is down for days still finds its session (and the
# broker its in-flight state) when it comes back.
DEFAULT_SESSION_EXPIRY = 7 * 24 * 3600
CONTENT_TYPE = "application/vnd.signalfire.signed-batch+json"

# MQTT 5 reason codes worth telling apart (the spec's numbering).
_NO_MATCHING_SUBSCRIBERS = 0x10
# CONNACK refusals that retrying with the same settings cannot fix.
_CONFIG_REFUSALS = {
    0x84: "the broker does not speak MQTT 5",
    0x85: "the broker rejected the client id",
    0x86: "bad user name or password",
    0x87: "not authorised: Mosquitto also answers this to a wrong user name or password",
    0x8A: "this client is banned",
    0x8C: "bad authentication method",
}
# PUBACK refusals that retrying with the same settings cannot fix.
_PUBLISH_REFUSALS = {
    0x87: "not authorised to publish on this topic: check the broker's ACL",
    0x90: "the broker rejected the topic name",
    0x99: "the broker rejected the payload format",
}


@dataclass
class _InFlight:
    """A packet handed to paho and not yet settled by a PUBACK."""

    mid: int
    reason: ReasonCode | None = None  # set by the PUBACK


class MqttUplink:
    """Publishes packets to an MQTT broker; see the module docstring."""

    max_message_bytes: int | None = None  # MQTT carries up to 256 MB; a batch of one is < 1 kB
    costly = False

    def __init__(
        self,
        host: str,
        port: int = 1883,
        *,
        network_id: bytes,
        gateway: Ed25519PrivateKey,
        topic_prefix: str = DEFAULT_TOPIC_PREFIX,
        client_id: str | None = None,
        tls: bool = False,
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
        username: str | None = None,
        password: str | None = None,
        keepalive: int = 60,
        publish_timeout: float = 10.0,
        connect_timeout: float = 5.0,
        probe_timeout: float = 1.0,
        session_expiry: int = DEFAULT_SESSION_EXPIRY,
        reconnect_min_delay: int = 1,
        reconnect_max_delay: int = 30,
        max_in_flight: int = 20,
        max_pending: int = 10_000,
        require_subscriber: bool = True,
        name: str = "mqtt",
    ) -> None:
        if password is not None and username is None:
            raise ValueError("an MQTT password needs a username")
        if (cert_file is None) != (key_file is None):
            raise ValueError("an MQTT client certificate needs both cert_file and key_file")
        if (ca_file or cert_file) and not tls:
            raise ValueError("ca_file/cert_file/key_file only make sense with tls=True")
        self.name = name
        self.host = host
        self.port = port
        self.network_id = network_id
        self._gateway = gateway
        self.gateway_key_id = wire.key_id(wire.ed25519_public_bytes(gateway))
        self.topic = (
            f"{topic_prefix.rstrip('/')}/{network_id.hex()}/reports/{self.gateway_key_id.hex()}"
        )
        # Stable across restarts: the broker finds this gateway's persistent session again.
        self.client_id = client_id or f"signalfire-gw-{self.gateway_key_id.hex()}"
        self.publish_timeout = publish_timeout
        self.connect_timeout = connect_timeout
        self.probe_timeout = probe_timeout
        self.require_subscriber = require_subscriber
        self._max_in_flight = max_in_flight
        self._max_pending = max_pending
        self._keepalive = keepalive
        self._session_expiry = session_expiry
        self._tls = tls

        self._client = RememberingClient(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=paho.MQTTv5,
        )
        self._client.max_inflight_messages_set(max_in_flight)
        # paho queues messages it cannot send yet without limit; bound it (what does not
        # fit stays unacknowledged in the durable store and is offered again later).
        self._client.max_queued_messages_set(max_pending)
        self._client.reconnect_delay_set(reconnect_min_delay, reconnect_max_delay)
        self._client.connect_timeout = connect_timeout
        if username is not None:
            self._client.username_pw_set(username, password)
        if tls:
            self._client.tls_set(
                ca_certs=ca_file,
                certfile=cert_file,
                keyfile=key_file,
                cert_reqs=ssl.CERT_REQUIRED,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        self._client.on_connect = self._on_connect
        self._client.on_connect_fail = self._on_connect_fail
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish

        # Everything below is shared with paho's network thread and guarded by _cond.
        # Rule: never call into paho while holding _cond (paho calls our callbacks
        # holding its own locks).
        self._cond = threading.Condition()
        self._started = False
        self._closed = False
        self._connected = False
        self._attempts = 0  # connection attempts settled (either way): wakes waiting senders
        self._connections = 0  # successful connections: a change means the link dropped
        self._last_error: str | None = None
        # Why the broker cannot be used until the operator changes a setting: a CONNACK
        # reason code, or -1 for a TLS certificate that does not verify.
        self._refusal: int | None = None
        self._refused_now = False  # a CONNACK refused this attempt (its close follows)
        # copy id -> its message in paho's queue; kept across send() calls so a retry of
        # a packet paho still holds waits for that message instead of adding a copy.
        # Keyed like Delivery, by copy id: a forged copy sharing the packet id of a genuine
        # one is different bytes and travels on its own (the coordinator keeps the valid one).
        self._in_flight: OrderedDict[bytes, _InFlight] = OrderedDict()
        self._by_mid: dict[int, bytes] = {}
        # PUBACKs that overtook the publish() call that produced their mid.
        self._early: dict[int, ReasonCode] = {}

    def __repr__(self) -> str:
        scheme = "mqtts" if self._tls else "mqtt"
        return f"<MqttUplink {self.name} {scheme}://{self.host}:{self.port} topic={self.topic}>"

    # -- paho callbacks (network thread) -------------------------------------------------

    def _on_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            message = f"MQTT broker {self.host}:{self.port} refused the connection: {reason}"
            hint = _CONFIG_REFUSALS.get(reason.value)
            if hint:
                message += f" ({hint}; check the uplink's settings)"
            log.warning("mqtt uplink %s: %s", self.name, message)
            with self._cond:
                self._connected = False
                self._attempts += 1
                self._last_error = message
                self._refusal = reason.value if hint else None
                self._refused_now = True
                self._cond.notify_all()
            return
        # paho ignores the broker's Receive Maximum; sending more than it allows in flight
        # gets the connection closed, so stay under it.
        receive_max = getattr(properties, "ReceiveMaximum", None)
        if isinstance(receive_max, int) and 0 < receive_max < self._max_in_flight:
            client.max_inflight_messages = receive_max
        log.info(
            "mqtt uplink %s: connected to %s:%s (session %s)",
            self.name,
            self.host,
            self.port,
            "resumed" if flags.session_present else "new",
        )
        with self._cond:
            self._connected = True
            self._attempts += 1
            self._connections += 1
            self._last_error = None
            self._refusal = None
            self._cond.notify_all()

    def _on_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        exc = self._client.last_connect_error
        message = f"cannot reach MQTT broker {self.host}:{self.port}: {describe_connect_error(exc)}"
        with self._cond:
            if message != self._last_error:
                log.warning("mqtt uplink %s: %s", self.name, message)
            self._connected = False
            self._attempts += 1
            self._last_error = message
            # A certificate that does not verify will not start verifying by itself.
            self._refusal = -1 if isinstance(exc, ssl.SSLCertVerificationError) else None
            self._cond.notify_all()

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        with self._cond:
            was_connected = self._connected
            self._connected = False
            if was_connected and not self._closed:
                # paho reports a dropped socket as "Unspecified error"; only a DISCONNECT
                # from the broker carries a reason worth showing.
                why = f" ({reason})" if flags.is_disconnect_packet_from_server else ""
                self._last_error = (
                    f"lost the connection to MQTT broker {self.host}:{self.port}{why}"
                )
                log.warning("mqtt uplink %s: %s; reconnecting", self.name, self._last_error)
            elif not was_connected:
                self._attempts += 1
                if self._refused_now:
                    self._refused_now = False  # the refusing CONNACK already said why
                else:
                    # No CONNACK at all: typically plain MQTT to a TLS port or the reverse,
                    # or a TLS 1.3 broker that wanted a client certificate.
                    why = f" ({reason})" if flags.is_disconnect_packet_from_server else ""
                    self._last_error = (
                        f"MQTT broker {self.host}:{self.port} closed the connection while "
                        f"logging in{why}; check the port, the TLS setting and the client "
                        "certificate"
                    )
            self._cond.notify_all()

    def _on_publish(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        with self._cond:
            copy_id = self._by_mid.pop(mid, None)
            entry = self._in_flight.get(copy_id) if copy_id is not None else None
            if entry is not None and entry.mid == mid:
                entry.reason = reason
            else:
                self._early[mid] = reason
            self._cond.notify_all()

    # -- the Uplink interface ------------------------------------------------------------

    def probe(self) -> bool:
        """Connected now, or within ``probe_timeout``. Never raises."""
        try:
            self._start()
            with self._cond:
                return (
                    self._cond.wait_for(lambda: self._connected or self._closed, self.probe_timeout)
                    and not self._closed
                )
        except Exception:
            log.exception("mqtt uplink %s: probe failed", self.name)
            return False

    def send(self, packets: Sequence[StoredPacket]) -> Delivery:
        """Publish each packet at QoS 1; return the copy ids the broker PUBACKed.

        Returns early with what was acknowledged so far when the connection
        drops or ``publish_timeout`` passes; raises UplinkError when nothing was.
        """
        if self._closed:
            raise UplinkError(f"mqtt uplink {self.name} is closed", transient=False)
        if not packets:
            return Delivery()
        self._start()
        with self._cond:
            self._cond.wait_for(
                lambda: self._connected or self._closed or self._attempts > 0,
                self.connect_timeout,
            )
            if not self._connected:
                raise self._down_error()
            connection = self._connections

        waiting = self._publish_all(packets, connection)
        deadline = time.monotonic() + self.publish_timeout
        with self._cond:
            self._cond.wait_for(
                lambda: (
                    all(self._settled(cid) for cid in waiting)
                    or self._connections != connection
                    or not self._connected
                    or self._closed
                ),
                max(0.0, deadline - time.monotonic()),
            )
            acknowledged, refused = self._collect(waiting)
            dropped = self._closed or not self._connected or self._connections != connection

        if acknowledged:
            return Delivery(acknowledged=acknowledged)
        if refused:
            raise refused
        if dropped:
            raise self._down_error()
        raise UplinkError(
            f"MQTT broker {self.host}:{self.port} acknowledged none of {len(packets)} "
            f"packet(s) within {self.publish_timeout:g}s; they stay queued and will be retried",
            transient=True,
        )

    def close(self) -> None:
        """Disconnect cleanly and stop the network thread. Safe to call twice."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            started = self._started
            self._cond.notify_all()
        if started:
            self._client.disconnect()
            self._client.loop_stop()
        log.info("mqtt uplink %s: closed", self.name)

    # -- internals -----------------------------------------------------------------------

    def _start(self) -> None:
        with self._cond:
            if self._started or self._closed:
                return
            self._started = True
        properties = _properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = self._session_expiry
        # clean_start=False on every connect, the first included: a restarted gateway
        # resumes the session it had (paho's default cleans it on the first connect).
        self._client.connect_async(
            self.host,
            self.port,
            keepalive=self._keepalive,
            clean_start=False,
            properties=properties,
        )
        self._client.loop_start()

    def _publish_all(self, packets: Sequence[StoredPacket], connection: int) -> list[bytes]:
        """Hand packets to paho; the ids to wait for (in order, without repeats)."""
        waiting: list[bytes] = []
        seen: set[bytes] = set()
        for packet in packets:
            if packet.copy_id in seen:
                continue
            seen.add(packet.copy_id)
            with self._cond:
                entry = self._in_flight.get(packet.copy_id)
                if entry is not None and (entry.reason is None or self._accepted(entry.reason)):
                    # paho still holds, or the broker already took, a message for this packet.
                    waiting.append(packet.copy_id)
                    continue
                self._in_flight.pop(packet.copy_id, None)  # refused earlier: publish it afresh
                if self._connections != connection or not self._connected or self._closed:
                    # The link dropped: what is not in paho's queue yet stays in the store.
                    break
                if len(self._in_flight) >= self._max_pending:
                    self._forget_settled()
                    if len(self._in_flight) >= self._max_pending:
                        break
            properties = _properties(PacketTypes.PUBLISH)
            properties.ContentType = CONTENT_TYPE
            info = self._client.publish(
                self.topic, self._payload(packet), qos=1, properties=properties
            )
            if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
                break
            # MQTT_ERR_NO_CONN still queues the message: paho sends it after reconnecting.
            with self._cond:
                entry = _InFlight(info.mid, self._early.pop(info.mid, None))
                self._in_flight[packet.copy_id] = entry
                if entry.reason is None:
                    self._by_mid[info.mid] = packet.copy_id
            waiting.append(packet.copy_id)
        return waiting

    def _payload(self, packet: StoredPacket) -> bytes:
        item = batch.BatchItem(
            packet=packet.raw,
            received_at=packet.received_at,
            radio_node=packet.radio_node,
            snr=packet.rx_snr,
            rssi=packet.rx_rssi,
            hops=packet.hops,
            verified=str(packet.verified),
        )
        return batch.encode(
            [item],
            gateway=self._gateway,
            network_id=self.network_id,
            # The copy id: the same for every retry of this packet, so a coordinator can
            # tell a retransmission from a new copy heard through another relay.
            batch_id=packet.copy_id.hex(),
            sent_at=int(time.time()),
        )

    def _settled(self, copy_id: bytes) -> bool:
        entry = self._in_flight.get(copy_id)
        return entry is None or entry.reason is not None

    def _collect(self, waiting: list[bytes]) -> tuple[set[bytes], UplinkError | None]:
        """Settled packets leave the in-flight table; the rest stay for the next call."""
        acknowledged: set[bytes] = set()
        refused: UplinkError | None = None
        for copy_id in waiting:
            entry = self._in_flight.get(copy_id)
            if entry is None or entry.reason is None:
                continue
            del self._in_flight[copy_id]
            if self._accepted(entry.reason):
                acknowledged.add(copy_id)
            elif refused is None:
                refused = self._refusal_error(entry.reason)
        return acknowledged, refused

    def _accepted(self, reason: ReasonCode) -> bool:
        # "No matching subscribers" is a success code in MQTT 5, but it means the broker
        # threw the report away: not delivered, unless the operator says that is fine.
        if self.require_subscriber and reason.value == _NO_MATCHING_SUBSCRIBERS:
            return False
        return not reason.is_failure

    def _refusal_error(self, reason: ReasonCode) -> UplinkError:
        if reason.value == _NO_MATCHING_SUBSCRIBERS:
            return UplinkError(
                f"MQTT broker {self.host}:{self.port} has no subscriber for {self.topic} and "
                "would have dropped the report; is the coordinator's ingest subscribed with a "
                "persistent session? Kept and will be retried",
                transient=True,
            )
        hint = _PUBLISH_REFUSALS.get(reason.value)
        return UplinkError(
            f"MQTT broker {self.host}:{self.port} refused a report on {self.topic}: {reason}"
            + (f" ({hint})" if hint else ""),
            transient=hint is None,
        )

    def _forget_settled(self) -> None:
        """Drop settled entries no caller came back for (the scheduler gave those up)."""
        for copy_id in [p for p, e in self._in_flight.items() if e.reason is not None]:
            del self._in_flight[copy_id]

    def _down_error(self) -> UplinkError:
        if self._closed:
            return UplinkError(f"mqtt uplink {self.name} is closed", transient=False)
        message = self._last_error or (
            f"not connected to MQTT broker {self.host}:{self.port} "
            f"(no answer within {self.connect_timeout:g}s)"
        )
        if self._refusal is not None:
            return UplinkError(message, transient=False)
        return UplinkError(message + "; will retry", transient=True)


def _properties(packet_type: int) -> Properties:
    return Properties(packet_type)  # type: ignore[no-untyped-call]  # paho leaves it unannotated

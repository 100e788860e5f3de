"""`Radio` over the real `meshtastic` library (serial, TCP, BLE), with its traps handled.

Traps (meshtastic-notes.md; each has a test in tests/radio/test_adapter.py):
- SerialInterface never reconnects: a supervisor thread reconnects every
  transport with exponential backoff and reports each state change.
- TCPInterface reconnects silently (one try after 1 s, no event, and if that
  try fails the link is just gone): our subclass turns the drop into an
  ordinary `connection.lost`, so the supervisor reconnects TCP like serial,
  with backoff and reported state.
- pypubsub holds weak references: listeners are bound methods of this object,
  which the caller keeps alive; nothing is a lambda.
- Listener exceptions vanish on the library's publishing thread: our listener
  only converts and queues; a dispatcher thread of ours calls the user's
  listeners and logs what they raise.
- Some library paths call sys.exit: every call into the library catches
  SystemExit, and destinations are always integers (no name lookups).
- `fromId` is None for unknown nodes: everything is keyed on the integer `from`.
- With no `lora.hop_limit` in the device config the library sends hop limit 0:
  we always pass an explicit hop limit.
- The library checks 233 bytes; the firmware's real ceiling is 231 on a channel
  and 219 in a PKI direct message: we check those.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import re
import threading
from dataclasses import dataclass
from typing import Any

from meshtastic.tcp_interface import TCPInterface
from pubsub import pub

from .api import (
    BROADCAST,
    MAX_CHANNEL_PAYLOAD,
    MAX_PKI_PAYLOAD,
    POSITION_PORT,
    ROUTING_PORT,
    TEXT_PORT,
    Outgoing,
    Position,
    RadioError,
    RadioState,
    Received,
    ReceiveListener,
    SendOutcome,
    StateListener,
)

log = logging.getLogger(__name__)

DEFAULT_TCP_PORT = 4403
DEFAULT_HOP_LIMIT = 3
_SPEC_RE = re.compile(r"^(serial|tcp|ble):(.*)$")


@dataclass(frozen=True)
class RadioSpec:
    kind: str  # serial | tcp | ble
    target: str  # device path, host name or BLE name/address
    port: int | None = None

    def __str__(self) -> str:
        if self.kind == "tcp":
            return f"tcp:{self.target}:{self.port}"
        return f"{self.kind}:{self.target}"


def parse_spec(text: str) -> RadioSpec:
    """`serial:/dev/ttyUSB0`, `tcp:host[:4403]`, `ble:NAME_OR_ADDRESS`."""
    match = _SPEC_RE.match(text.strip())
    if not match or not match.group(2):
        raise RadioError(
            f"radio {text!r} is not one of serial:/dev/ttyUSB0, tcp:HOST[:PORT], "
            "ble:NAME_OR_ADDRESS"
        )
    kind, rest = match.groups()
    if kind != "tcp":
        return RadioSpec(kind, rest)
    host, _, port_text = rest.rpartition(":") if rest.count(":") == 1 else (rest, "", "")
    if not host:
        host, port_text = rest, ""
    port = DEFAULT_TCP_PORT
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise RadioError(f"radio {text!r}: TCP port must be 1-65535")
        port = int(port_text)
    return RadioSpec("tcp", host, port)


class _SupervisedTCPInterface(TCPInterface):  # type: ignore[misc]
    def _reconnect(self) -> None:
        # End the reader instead of reconnecting in place; its exit publishes
        # connection.lost, and MeshtasticRadio's supervisor takes over.
        self._wantExit = True


class MeshtasticRadio:
    """One radio, kept connected until ``close()``."""

    def __init__(
        self,
        spec: str | RadioSpec,
        *,
        connect_timeout: float = 20.0,
        backoff_initial: float = 0.25,
        backoff_max: float = 4.0,
        default_hop_limit: int = DEFAULT_HOP_LIMIT,
    ) -> None:
        self.spec = parse_spec(spec) if isinstance(spec, str) else spec
        self.connect_timeout = connect_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.default_hop_limit = default_hop_limit
        self._iface: Any = None
        self._state = RadioState.DISCONNECTED
        self._state_reason = "not started"
        self._trouble_logged = False  # a loss was logged as a warning; its end will be too
        self._lock = threading.RLock()
        self._connected = threading.Event()
        self._lost = threading.Event()
        self._closing = threading.Event()
        self._listeners: list[ReceiveListener] = []
        self._state_listeners: list[StateListener] = []
        self._inbox: queue.Queue[Received | None] = queue.Queue()
        self._pending: dict[int, Outgoing] = {}
        self._send_lock = threading.Lock()
        self._supervisor: threading.Thread | None = None
        self._dispatcher: threading.Thread | None = None
        self.reconnects = 0
        self.listener_errors = 0
        self.received = 0

    # -- state ---------------------------------------------------------------

    @property
    def state(self) -> RadioState:
        return self._state

    @property
    def my_node(self) -> int | None:
        iface = self._iface
        info = getattr(iface, "myInfo", None) if iface is not None else None
        return int(info.my_node_num) if info is not None else None

    def add_listener(self, listener: ReceiveListener) -> None:
        self._listeners.append(listener)

    def add_state_listener(self, listener: StateListener) -> None:
        self._state_listeners.append(listener)

    def _set_state(self, state: RadioState, reason: str) -> None:
        with self._lock:
            if state is self._state and reason == self._state_reason:
                return
            self._state, self._state_reason = state, reason
            if state is RadioState.CONNECTED:
                self._connected.set()
            else:
                self._connected.clear()
        # Losing the radio and getting it back show at the default level, once each; the
        # retries between them do not.
        if state is RadioState.DISCONNECTED and not self._trouble_logged:
            self._trouble_logged = True
            log.warning("radio %s: %s", self.spec, reason)
        elif state is RadioState.CONNECTED and self._trouble_logged:
            self._trouble_logged = False
            log.warning("radio %s: connected again (%s)", self.spec, reason)
        else:
            log.info("radio %s: %s (%s)", self.spec, state.value, reason)
        for listener in list(self._state_listeners):
            try:
                listener(state, reason)
            except Exception:
                log.exception("radio state listener failed")

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        if self._supervisor is not None:
            return
        # Bound methods, referenced by this object: pypubsub's weak references stay alive.
        pub.subscribe(self._on_receive, "meshtastic.receive")
        pub.subscribe(self._on_lost, "meshtastic.connection.lost")
        self._dispatcher = threading.Thread(
            target=self._dispatch, name="radio-dispatch", daemon=True
        )
        self._dispatcher.start()
        self._supervisor = threading.Thread(
            target=self._supervise, name="radio-supervisor", daemon=True
        )
        self._supervisor.start()

    def close(self) -> None:
        self._closing.set()
        self._lost.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout=10)
        self._close_iface()
        self._inbox.put(None)
        if self._dispatcher is not None:
            self._dispatcher.join(timeout=5)
        for topic, fn in (
            ("meshtastic.receive", self._on_receive),
            ("meshtastic.connection.lost", self._on_lost),
        ):
            with contextlib.suppress(Exception):
                pub.unsubscribe(fn, topic)
        for out in list(self._pending.values()):
            out.resolve(SendOutcome.NOT_SENT, reason="radio closed")
        self._set_state(RadioState.CLOSED, "closed")

    def _make_interface(self) -> Any:
        timeout = max(1, int(self.connect_timeout))
        if self.spec.kind == "serial":
            from meshtastic.serial_interface import SerialInterface

            return SerialInterface(devPath=self.spec.target, timeout=timeout)
        if self.spec.kind == "tcp":
            return _SupervisedTCPInterface(
                self.spec.target, portNumber=self.spec.port, timeout=timeout
            )
        try:
            from meshtastic.ble_interface import BLEInterface
        except ImportError as exc:  # bleak missing or no BlueZ on this system
            raise RadioError(f"Bluetooth is not available here ({exc})") from None
        return BLEInterface(self.spec.target, timeout=timeout)

    def _supervise(self) -> None:
        delay = self.backoff_initial
        while not self._closing.is_set():
            self._set_state(RadioState.CONNECTING, f"connecting to {self.spec}")
            self._lost.clear()
            try:
                iface = self._make_interface()
            except SystemExit as exc:  # some library paths call sys.exit
                reason = f"the meshtastic library gave up: {exc.code}"
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}".strip(": ")
            else:
                with self._lock:
                    self._iface = iface
                if self._closing.is_set():
                    break
                delay = self.backoff_initial
                self._set_state(RadioState.CONNECTED, f"node !{self.my_node or 0:08x}")
                self._lost.wait()
                self._close_iface()
                if self._closing.is_set():
                    break
                self.reconnects += 1
                self._fail_pending("radio disconnected")
                self._set_state(RadioState.DISCONNECTED, "connection lost; reconnecting")
                continue
            self._set_state(
                RadioState.DISCONNECTED,
                f"{reason}; retrying in {delay:.1f} s (is the radio plugged in?)",
            )
            if self._closing.wait(delay):
                break
            delay = min(delay * 2, self.backoff_max)

    def _close_iface(self) -> None:
        with self._lock:
            iface, self._iface = self._iface, None
        if iface is not None:
            with contextlib.suppress(Exception, SystemExit):
                iface.close()

    def _fail_pending(self, reason: str) -> None:
        for packet_id, out in list(self._pending.items()):
            out.resolve(SendOutcome.NOT_SENT, reason=reason)
            self._pending.pop(packet_id, None)

    # -- pypubsub listeners (run on the library's threads: convert, queue, never raise) ----

    # Same signatures as the library's sendMessage calls: pypubsub fixes a topic's
    # argument spec from its first listener, and optional arguments here would make
    # every other listener with required ones (the usual kind) fail to subscribe.
    def _on_lost(self, interface: Any) -> None:
        if interface is self._iface:
            self._lost.set()

    def _on_receive(self, packet: Any, interface: Any) -> None:
        if interface is not self._iface:
            return
        try:
            received = convert_packet(packet)
        except Exception:
            self.listener_errors += 1
            log.exception("radio %s: could not read a packet from the library", self.spec)
            return
        if received is not None:
            self._inbox.put(received)

    def _dispatch(self) -> None:
        while True:
            item = self._inbox.get()
            if item is None:
                return
            self.received += 1
            if item.portnum == ROUTING_PORT:
                self._settle(item)
            for listener in list(self._listeners):
                try:
                    listener(item)
                except Exception:
                    self.listener_errors += 1
                    log.exception("radio listener failed on packet %08x", item.packet_id)

    def _settle(self, routing: Received) -> None:
        from meshtastic.protobuf import mesh_pb2

        request_id = routing.request_id
        with self._send_lock:  # an ack can beat send() to registering its packet
            out = self._pending.pop(request_id, None) if request_id else None
        if out is None:
            return
        try:
            msg = mesh_pb2.Routing.FromString(routing.payload)
        except Exception:
            msg = mesh_pb2.Routing()
        error = msg.error_reason
        if error != mesh_pb2.Routing.Error.NONE:
            out.resolve(SendOutcome.FAILED, routing.from_node, mesh_pb2.Routing.Error.Name(error))
        elif routing.from_node == out.dest:
            out.resolve(SendOutcome.ACKED, routing.from_node)
        elif out.dest == BROADCAST:
            out.resolve(SendOutcome.RELAYED, routing.from_node)
        else:
            # An implicit ack (a neighbour relayed our DM): the real ack may still come.
            out.answered_by = routing.from_node
            with self._send_lock:
                self._pending[request_id] = out

    # -- sending -------------------------------------------------------------

    def send(
        self,
        payload: bytes,
        *,
        portnum: int,
        dest: int = BROADCAST,
        want_ack: bool = False,
        hop_limit: int | None = None,
        pki: bool = False,
        channel: int = 0,
    ) -> Outgoing:
        if not 1 <= portnum <= 511:
            raise RadioError(f"port number {portnum} is not 1-511")
        limit = MAX_PKI_PAYLOAD if pki else MAX_CHANNEL_PAYLOAD
        if len(payload) > limit:
            raise RadioError(
                f"payload is {len(payload)} bytes; at most {limit} fit one "
                + ("PKI direct message" if pki else "channel packet")
            )
        if not 0 <= dest <= BROADCAST:
            raise RadioError(f"destination {dest} is not a node number")
        if hop_limit is None:
            hop_limit = self._device_hop_limit() or self.default_hop_limit
        iface = self._iface
        if iface is None or self._state is not RadioState.CONNECTED:
            out = Outgoing(0, dest, portnum, want_ack)
            out.resolve(SendOutcome.NOT_SENT, reason=f"radio is {self._state.value}")
            return out
        public_key = self.public_key_of(dest) if pki else None
        if pki and public_key is None:
            raise RadioError(f"no public key known for node !{dest:08x}; cannot send a PKI message")
        with self._send_lock:
            return self._send_locked(
                iface, payload, portnum, dest, want_ack, hop_limit, pki, public_key, channel
            )

    def _send_locked(
        self,
        iface: Any,
        payload: bytes,
        portnum: int,
        dest: int,
        want_ack: bool,
        hop_limit: int,
        pki: bool,
        public_key: bytes | None,
        channel: int,
    ) -> Outgoing:
        try:
            packet = iface.sendData(
                payload,
                destinationId=int(dest),
                portNum=portnum,
                wantAck=want_ack,
                channelIndex=channel,
                hopLimit=hop_limit,
                pkiEncrypted=pki,
                publicKey=public_key,
            )
        except SystemExit as exc:
            raise RadioError(f"the meshtastic library refused the packet: {exc.code}") from None
        except Exception as exc:
            out = Outgoing(0, dest, portnum, want_ack)
            out.resolve(SendOutcome.NOT_SENT, reason=f"{type(exc).__name__}: {exc}")
            return out
        out = Outgoing(int(packet.id), dest, portnum, want_ack)
        if want_ack:
            self._pending[out.packet_id] = out
        else:
            out.resolve(SendOutcome.RELAYED if dest == BROADCAST else SendOutcome.PENDING)
        return out

    def send_text(self, text: str, *, dest: int = BROADCAST, want_ack: bool = False) -> Outgoing:
        return self.send(text.encode("utf-8"), portnum=TEXT_PORT, dest=dest, want_ack=want_ack)

    def _device_hop_limit(self) -> int | None:
        iface = self._iface
        with contextlib.suppress(Exception):
            value = int(iface.localNode.localConfig.lora.hop_limit)
            return value if 1 <= value <= 7 else None
        return None

    def own_position(self) -> Position | None:
        """The radio's own last GPS fix, from its node database."""
        iface = self._iface
        node = self.my_node
        if iface is None or node is None:
            return None
        with contextlib.suppress(Exception):
            pos = (iface.nodesByNum.get(node) or {}).get("position") or {}
            if "latitudeI" in pos and "longitudeI" in pos:
                return Position(
                    lat=pos["latitudeI"] * 1e-7,
                    lon=pos["longitudeI"] * 1e-7,
                    altitude=pos.get("altitude"),
                    time=pos.get("time"),
                    precision_bits=pos.get("precisionBits"),
                )
        return None

    def public_key_of(self, node: int) -> bytes | None:
        iface = self._iface
        if iface is None:
            return None
        with contextlib.suppress(Exception):
            info = iface.nodesByNum.get(node) or {}
            key = info.get("user", {}).get("publicKey")
            if key:
                import base64

                return base64.b64decode(key)
        return None


def convert_packet(packet: Any) -> Received | None:
    """The library's packet dict -> Received, from its raw protobuf (not the lossy dict)."""
    raw = packet.get("raw") if isinstance(packet, dict) else None
    if raw is None or not raw.HasField("decoded"):
        return None  # still encrypted for us (another channel): nothing to read
    decoded = raw.decoded
    text = None
    position = None
    if decoded.portnum == TEXT_PORT:
        text = decoded.payload.decode("utf-8", errors="replace")
    elif decoded.portnum == POSITION_PORT:
        from meshtastic.protobuf import mesh_pb2

        pos = mesh_pb2.Position.FromString(decoded.payload)
        if pos.HasField("latitude_i") and pos.HasField("longitude_i"):
            position = Position(
                lat=pos.latitude_i * 1e-7,
                lon=pos.longitude_i * 1e-7,
                altitude=pos.altitude if pos.HasField("altitude") else None,
                time=pos.time or None,
                precision_bits=pos.precision_bits or None,
            )
    return Received(
        from_node=int(getattr(raw, "from")),
        to_node=int(raw.to),
        packet_id=int(raw.id),
        portnum=int(decoded.portnum),
        payload=bytes(decoded.payload),
        channel=int(raw.channel),
        rx_time=int(raw.rx_time) or None,
        snr=float(raw.rx_snr) if raw.rx_snr else None,
        rssi=int(raw.rx_rssi) if raw.rx_rssi else None,
        hop_limit=int(raw.hop_limit),
        hop_start=int(raw.hop_start) or None,
        pki_encrypted=bool(raw.pki_encrypted),
        text=text,
        position=position,
        request_id=int(decoded.request_id),
    )

"""A Meshtastic radio emulated in-process, speaking the real stream API on TCP and/or a pty.

The unmodified `meshtastic` library and CLI connect to it as to a radio on USB or WiFi: the
want_config handshake, queueStatus after every packet, heartbeats, local admin messages,
acks and routing errors all follow the firmware (PhoneAPI, MeshService, ReliableRouter,
AdminModule). Behind the radio sits a `Mesh` (see `mesh_protocol`).

Everything protocol-related runs on one asyncio loop in a background thread; public methods
are thread-safe. `stop()` powers the radio off (clients see it unplugged; volatile queues
are lost, the "flash" state survives for the next `start()`); `unplug()`/`plug()` only take
the links away and bring them back while the radio keeps running and queueing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf.message import DecodeError  # type: ignore[import-untyped, unused-ignore]
from meshtastic.protobuf import admin_pb2, device_ui_pb2, mesh_pb2, portnums_pb2

from signalfire.radio.admin import handle_admin
from signalfire.radio.device_state import (
    CONFIG_SECTIONS,
    MODULE_SECTIONS,
    DeviceState,
    default_state,
)
from signalfire.radio.framing import MAX_FRAME_PAYLOAD, FrameDecoder, encode_frame
from signalfire.radio.mesh_protocol import BROADCAST_NUM, Mesh, MeshPacket, node_id
from signalfire.radio.packets import data_packet, routing_packet, sender_of
from signalfire.radio.transports import Link, PtyPort, TcpServer
from signalfire.radio.virtual_mesh import InMemoryMesh

log = logging.getLogger(__name__)

PortNum = portnums_pb2.PortNum
RoutingError = mesh_pb2.Routing.Error

# PhoneAPI.h: 69420 asks for config without the node database, 69421 for nodes only.
NONCE_ONLY_CONFIG = 69420
NONCE_ONLY_NODES = 69421

MAX_TO_PHONE = 32  # MAX_RX_TOPHONE: packets held for a client that is not connected
TX_QUEUE_LEN = 16  # what the router reports as maxlen in QueueStatus
RECENT_IDS = 20  # PhoneAPI remembers this many packet ids from the client
SEEN_ON_AIR = 256  # how many (from, id) pairs the radio remembers to drop flood duplicates

# PhoneAPI::handleToRadioPacket: excess packets on these ports are dropped, not queued.
RATE_LIMITS = {
    PortNum.TEXT_MESSAGE_APP: 2.0,
    PortNum.POSITION_APP: 10.0,
    PortNum.WAYPOINT_APP: 10.0,
    PortNum.ALERT_APP: 10.0,
    PortNum.TELEMETRY_APP: 10.0,
    PortNum.TRACEROUTE_APP: 30.0,
}


@dataclass(eq=False)
class _Session:
    """One client on one link (PhoneAPI instance)."""

    link: Link
    decoder: FrameDecoder = field(default_factory=FrameDecoder)
    ready: bool = False  # the config handshake is done; packets may flow
    recent_ids: deque[int] = field(default_factory=lambda: deque(maxlen=RECENT_IDS))
    last_port_send: dict[int, float] = field(default_factory=dict)


@dataclass
class _Pending:
    """A want_ack packet the radio keeps retransmitting until it hears an ack (ReliableRouter)."""

    packet: MeshPacket
    retries_left: int
    timer: asyncio.TimerHandle


class EmulatedDevice:
    def __init__(
        self,
        mesh: Mesh | None = None,
        *,
        tcp: tuple[str, int] | None = ("127.0.0.1", 0),
        pty: bool = False,
        pty_link: str | Path | None = None,
        state: DeviceState | None = None,
        seed: int = 0,
        retry_interval: float = 1.0,
        max_retransmits: int = 3,
        enforce_rate_limits: bool = True,
        reboots: bool = False,
        reboot_delay: float = 7.0,
    ) -> None:
        if tcp is None and not pty:
            raise ValueError("an emulated radio needs a TCP port, a pty, or both")
        self.mesh: Mesh = mesh if mesh is not None else InMemoryMesh(seed=seed)
        avoid = {info.num for info in self.mesh.node_infos()}
        self.state = state if state is not None else default_state(seed=seed, avoid_nums=avoid)
        self.retry_interval = retry_interval
        self.max_retransmits = max_retransmits
        self.enforce_rate_limits = enforce_rate_limits
        # AdminModule saves and reboots the radio after commit_edit_settings (in
        # DEFAULT_REBOOT_SECONDS) and after reboot_seconds; clients see the link drop and
        # must reconnect. Off by default: most tests want a radio that stays up.
        self.reboots = reboots
        self.reboot_delay = reboot_delay
        self.reboot_count = 0
        self._reboot_task: asyncio.Task[None] | None = None

        # What tests look at: every packet a client sent (after the radio filled in `from`)
        # and every admin message addressed to the radio itself.
        self.client_packets: list[MeshPacket] = []
        self.admin_messages: list[Any] = []

        self._tcp = TcpServer(self, *tcp) if tcp is not None else None
        self._pty = PtyPort(self, Path(pty_link) if pty_link else None) if pty else None
        # Reproducible with a seed; none of these numbers is a secret.
        self._rng = random.Random(f"signalfire-emulated-radio-ids:{seed}")  # noqa: S311
        self._changed = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._plugged = False
        self._sessions: dict[int, _Session] = {}  # keyed by id(link)
        self._current: _Session | None = None  # the client that receives mesh traffic
        self._to_phone: deque[MeshPacket] = deque()
        self._pending: dict[int, _Pending] = {}
        self._seen_on_air: OrderedDict[tuple[int, int], None] = OrderedDict()
        self._node_db: dict[int, Any] = {}
        self._last_nodeinfo: float | None = None

    # -- identity and addresses ------------------------------------------------------------

    @property
    def node_num(self) -> int:
        return self.state.node_num

    @property
    def node_id(self) -> str:
        return node_id(self.state.node_num)

    @property
    def tcp_address(self) -> tuple[str, int] | None:
        return self._tcp.address if self._tcp is not None else None

    @property
    def pty_path(self) -> str | None:
        return self._pty.path if self._pty is not None else None

    @property
    def running(self) -> bool:
        return self._thread is not None

    # -- power and cables ------------------------------------------------------------------

    def start(self) -> None:
        """Power on: build the node database, attach to the mesh, open the links."""
        if self._thread is not None:
            raise RuntimeError("already running")
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(
            target=loop.run_forever, name=f"radio-emulator {self.node_id}", daemon=True
        )
        self._thread.start()
        try:
            self._call(self._power_on)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Power off: links close (clients see the radio unplugged), RAM queues are lost."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        with contextlib.suppress(Exception):
            self._call(self._cancel_reboot)
        with contextlib.suppress(Exception):
            self._call(self._power_off)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
        self._loop = self._thread = None

    def unplug(self) -> None:
        """Pull the cable: links close, the radio keeps running and holds packets for later."""
        self._call(self._close_links)

    def plug(self) -> None:
        """Plug the cable back in: same TCP port; a new pty (the symlink, if any, follows)."""
        self._call(self._open_links)

    def __enter__(self) -> EmulatedDevice:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- the air side (AirInterface) -------------------------------------------------------

    def deliver(self, packet: MeshPacket) -> None:
        """A packet arrives from the air. Thread-safe; dropped while the radio is off."""
        loop = self._loop
        if loop is None:
            return
        copy = mesh_pb2.MeshPacket()
        copy.CopyFrom(packet)
        with contextlib.suppress(RuntimeError):  # the loop closed under us: radio is off
            loop.call_soon_threadsafe(self._locked, self._on_air, copy)

    # -- for tests and tools ---------------------------------------------------------------

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Wait until `predicate()` holds; it runs under the radio's lock."""
        with self._changed:
            return self._changed.wait_for(predicate, timeout)

    @property
    def queued_for_client(self) -> int:
        """Packets the radio holds because no client has completed the handshake."""
        with self._changed:
            return len(self._to_phone)

    def known_nodes(self) -> dict[int, Any]:
        """A copy of the radio's node database (own node included)."""
        with self._changed:
            result = {}
            for num, info in self._node_db.items():
                copy = mesh_pb2.NodeInfo()
                copy.CopyFrom(info)
                result[num] = copy
            return result

    # -- loop plumbing ---------------------------------------------------------------------

    def _call(self, fn: Callable[[], Any]) -> None:
        loop = self._loop
        if loop is None:
            raise RuntimeError("the emulated radio is not running")

        async def run() -> None:
            with self._changed:
                result = fn()
                if asyncio.iscoroutine(result):
                    await result
                self._changed.notify_all()

        asyncio.run_coroutine_threadsafe(run(), loop).result(10)

    def _locked(self, fn: Callable[..., Any], *args: Any) -> None:
        with self._changed:
            try:
                fn(*args)
            except Exception:
                # A radio does not crash on one bad packet; log it and keep serving.
                log.exception("emulated radio: %s failed", getattr(fn, "__name__", fn))
            finally:
                self._changed.notify_all()

    def _later(self, delay: float, fn: Callable[..., Any], *args: Any) -> asyncio.TimerHandle:
        assert self._loop is not None
        return self._loop.call_later(delay, self._locked, fn, *args)

    async def _power_on(self) -> None:
        now = int(time.time())
        self._node_db = {info.num: info for info in self.mesh.node_infos()}
        self._node_db.pop(self.node_num, None)
        self._node_db[self.node_num] = self.state.own_node_info(now=now)
        self.mesh.attach(self)
        await self._open_links()

    async def _power_off(self) -> None:
        self.mesh.detach(self)
        await self._close_links()
        for pending in self._pending.values():
            pending.timer.cancel()
        self._pending.clear()
        self._to_phone.clear()
        self._seen_on_air.clear()
        self._last_nodeinfo = None

    def _cancel_reboot(self) -> None:
        if self._reboot_task is not None:
            self._reboot_task.cancel()
            self._reboot_task = None

    def _schedule_reboot(self, delay: float) -> None:
        if not self.reboots or self._loop is None:
            return
        self._cancel_reboot()
        self._reboot_task = self._loop.create_task(self._reboot(max(delay, 0.0)))

    async def _reboot(self, delay: float) -> None:
        """Power cycle: links drop, RAM queues go, the saved state comes back."""
        await asyncio.sleep(delay)
        with self._changed:
            await self._power_off()
            self.reboot_count += 1
            self._changed.notify_all()
        await asyncio.sleep(0.05)  # booting
        with self._changed:
            self._reboot_task = None
            await self._power_on()
            self._changed.notify_all()

    async def _open_links(self) -> None:
        if self._plugged:
            return
        self._plugged = True  # first, so that a half-open failure is still closed by stop()
        if self._tcp is not None:
            await self._tcp.open()
        if self._pty is not None:
            self._pty.open()

    async def _close_links(self) -> None:
        if not self._plugged:
            return
        self._plugged = False
        if self._tcp is not None:
            await self._tcp.close()
        if self._pty is not None:
            self._pty.close()

    # -- LinkHandler: bytes in and out -----------------------------------------------------

    def link_opened(self, link: Link) -> None:
        with self._changed:
            self._sessions[id(link)] = _Session(link)
            log.info("%s connected", link.name)

    def link_closed(self, link: Link) -> None:
        with self._changed:
            session = self._sessions.pop(id(link), None)
            if session is not None and session is self._current:
                self._current = None
            log.info("%s gone", link.name)

    def link_data(self, link: Link, data: bytes) -> None:
        with self._changed:
            session = self._sessions.get(id(link))
            if session is None:
                return
            for payload in session.decoder.feed(data):
                try:
                    self._on_to_radio(session, payload)
                except Exception:
                    log.exception("%s: ToRadio handling failed", link.name)
            self._changed.notify_all()

    def _send(self, session: _Session, message: Any) -> None:
        payload = message.SerializeToString()
        if len(payload) > MAX_FRAME_PAYLOAD:
            log.error("FromRadio of %d bytes cannot be framed; dropped", len(payload))
            return
        session.link.write(encode_frame(payload))

    def _new_id(self) -> int:
        return self._rng.getrandbits(32) or 1

    # -- ToRadio ---------------------------------------------------------------------------

    def _on_to_radio(self, session: _Session, payload: bytes) -> None:
        message = mesh_pb2.ToRadio()
        try:
            message.ParseFromString(payload)
        except DecodeError:
            log.warning("%s: malformed ToRadio ignored", session.link.name)
            return
        variant = message.WhichOneof("payload_variant")
        if variant == "packet":
            self._from_client(session, message.packet)
        elif variant == "want_config_id":
            self._send_config(session, message.want_config_id)
        elif variant == "disconnect":
            self._end_session(session)
        elif variant == "heartbeat":
            if message.heartbeat.nonce == 1:
                # "NodeInfo ping": announce ourselves now so peers relearn our key.
                self._introduce(BROADCAST_NUM, want_response=False, throttle=60.0)
            else:
                self._send_queue_status(session, 0)

    def _end_session(self, session: _Session) -> None:
        session.ready = False
        if session is self._current:
            self._current = None
        if session.link.closes_on_disconnect:
            session.link.close()

    def _send_queue_status(self, session: _Session, packet_id: int) -> None:
        status = mesh_pb2.QueueStatus(
            res=0, free=TX_QUEUE_LEN, maxlen=TX_QUEUE_LEN, mesh_packet_id=packet_id
        )
        self._send(session, mesh_pb2.FromRadio(queueStatus=status))

    def _send_config(self, session: _Session, nonce: int) -> None:
        """The want_config burst, in PhoneAPI's order (clients depend on it)."""
        now = int(time.time())
        if session.link.carries_log_text:
            # Serial consoles print log lines between frames; clients must skip them.
            stamp = time.strftime("%H:%M:%S", time.gmtime(now))
            session.link.write(
                f"INFO  | {stamp} [SerialConsole] Client wants config, nonce={nonce}\r\n".encode()
            )
        session.ready = False
        send = self._send
        FromRadio = mesh_pb2.FromRadio
        if nonce != NONCE_ONLY_NODES:
            my_info = self.state.my_info(nodedb_count=len(self._node_db))
            send(session, FromRadio(my_info=my_info))
            send(session, FromRadio(deviceuiConfig=device_ui_pb2.DeviceUIConfig()))
        own = self._node_db[self.node_num] = self.state.own_node_info(now=now)
        send(session, FromRadio(node_info=own))
        if nonce != NONCE_ONLY_NODES:
            send(session, FromRadio(metadata=self.state.metadata()))
            for channel in self.state.channels:
                send(session, FromRadio(channel=channel))
            for section in CONFIG_SECTIONS:
                message = FromRadio()
                getattr(message.config, section).CopyFrom(getattr(self.state.config, section))
                send(session, message)
            for empty in ("sessionkey", "device_ui"):
                message = FromRadio()
                getattr(message.config, empty).SetInParent()
                send(session, message)
            for section in MODULE_SECTIONS:
                message = FromRadio()
                getattr(message.moduleConfig, section).CopyFrom(
                    getattr(self.state.module_config, section)
                )
                send(session, message)
        if nonce != NONCE_ONLY_CONFIG:
            for num, info in self._node_db.items():
                if num != self.node_num:
                    send(session, FromRadio(node_info=info))
        send(session, FromRadio(config_complete_id=nonce))
        session.ready = True
        self._current = session
        while self._to_phone and self._current is session:
            send(session, FromRadio(packet=self._to_phone.popleft()))

    # -- packets from the client -----------------------------------------------------------

    def _from_client(self, session: _Session, packet: MeshPacket) -> None:
        if packet.id and packet.id in session.recent_ids:
            return  # PhoneAPI::wasSeenRecently: a resend; the firmware says nothing at all
        if packet.id:
            session.recent_ids.append(packet.id)
        setattr(packet, "from", self.node_num)  # phones may not choose `from`
        if not packet.id:
            packet.id = self._new_id()
        packet.rx_time = int(time.time())
        record = mesh_pb2.MeshPacket()
        record.CopyFrom(packet)
        self.client_packets.append(record)

        if self.enforce_rate_limits and self._rate_limited(session, packet):
            self._send_queue_status(session, packet.id)
            if packet.decoded.portnum == PortNum.TEXT_MESSAGE_APP:
                self._to_client(self._routing_to_self(packet, RoutingError.RATE_LIMIT_EXCEEDED))
            return

        self._send_queue_status(session, packet.id)
        if packet.to == self.node_num:
            self._handle_local(packet)
            return
        if packet.want_ack and packet.hop_limit == 0:
            # ReliableRouter: hop_limit 0 with want_ack means "use the configured limit".
            packet.hop_limit = self._hop_limit()
        packet.hop_start = packet.hop_limit
        self._transmit(packet)
        if packet.want_ack:
            self._pending[packet.id] = _Pending(
                packet=packet,
                retries_left=self.max_retransmits,
                timer=self._later(self.retry_interval, self._retry, packet.id),
            )

    def _rate_limited(self, session: _Session, packet: MeshPacket) -> bool:
        if packet.WhichOneof("payload_variant") != "decoded":
            return False
        port = packet.decoded.portnum
        window = RATE_LIMITS.get(port)
        now = time.monotonic()
        last = session.last_port_send.get(port)
        if window is not None and last is not None and now - last < window:
            log.info("rate limit on port %d: packet %08x dropped", port, packet.id)
            return True
        session.last_port_send[port] = now
        return False

    def _hop_limit(self) -> int:
        return int(self.state.config.lora.hop_limit) or 3

    def _transmit(self, packet: MeshPacket) -> None:
        copy = mesh_pb2.MeshPacket()
        copy.CopyFrom(packet)
        copy.ClearField("rx_time")
        try:
            self.mesh.transmit(copy)
        except Exception:
            log.exception("the mesh failed to take packet %08x", packet.id)

    def _retry(self, packet_id: int) -> None:
        pending = self._pending.get(packet_id)
        if pending is None:
            return
        if pending.retries_left > 0:
            pending.retries_left -= 1
            self._transmit(pending.packet)
            pending.timer = self._later(self.retry_interval, self._retry, packet_id)
            return
        del self._pending[packet_id]
        self._to_client(self._routing_to_self(pending.packet, RoutingError.MAX_RETRANSMIT))

    def _routing_to_self(self, request: MeshPacket, error: int) -> MeshPacket:
        """An ack or error that the radio itself generates for its client's packet."""
        packet = routing_packet(
            sender=self.node_num,
            to=self.node_num,
            request_id=request.id,
            packet_id=self._new_id(),
            error=error,
            channel=request.channel,
            hop_limit=self._hop_limit(),
            hop_start=self._hop_limit(),
        )
        packet.rx_time = int(time.time())
        return packet

    def _handle_local(self, packet: MeshPacket) -> None:
        decoded = packet.decoded
        if decoded.portnum != PortNum.ADMIN_APP:
            if packet.want_ack or decoded.want_response:
                self._to_client(self._routing_to_self(packet, RoutingError.NONE))
            return
        request = admin_pb2.AdminMessage()
        try:
            request.ParseFromString(decoded.payload)
        except DecodeError:
            self._to_client(self._routing_to_self(packet, RoutingError.BAD_REQUEST))
            return
        self.admin_messages.append(request)
        if self.state.config.security.is_managed:
            # AdminModule ignores local admin on a managed radio (only a remote admin key
            # may change it); no module answers, so MeshModule sends NO_RESPONSE.
            if decoded.want_response:
                self._to_client(self._routing_to_self(packet, RoutingError.NO_RESPONSE))
            return
        variant = request.WhichOneof("payload_variant")
        if variant == "commit_edit_settings":
            self._schedule_reboot(self.reboot_delay)
        elif variant == "reboot_seconds" and request.reboot_seconds >= 0:
            self._schedule_reboot(float(request.reboot_seconds))
        outcome = handle_admin(self.state, request, now=int(time.time()))
        if outcome.removed_node is not None and outcome.removed_node != self.node_num:
            self._node_db.pop(outcome.removed_node, None)
        self._node_db[self.node_num].user.CopyFrom(self.state.owner)
        if outcome.reply is not None:
            outcome.reply.session_passkey = self.state.session_passkey
            reply = data_packet(
                sender=self.node_num,
                to=self.node_num,
                portnum=PortNum.ADMIN_APP,
                payload=outcome.reply.SerializeToString(),
                packet_id=self._new_id(),
                channel=packet.channel,
                request_id=packet.id,
                hop_limit=self._hop_limit(),
                hop_start=self._hop_limit(),
            )
            reply.pki_encrypted = packet.pki_encrypted
            reply.rx_time = int(time.time())
            self._to_client(reply)
        elif outcome.error != RoutingError.NONE or decoded.want_response:
            self._to_client(self._routing_to_self(packet, outcome.error))

    def _introduce(self, to: int, *, want_response: bool, throttle: float) -> None:
        """Send our NodeInfo, at most once per `throttle` seconds (NodeInfoModule)."""
        now = time.monotonic()
        if self._last_nodeinfo is not None and now - self._last_nodeinfo < throttle:
            return
        self._last_nodeinfo = now
        self._transmit(self._nodeinfo_packet(to, want_response=want_response))

    def _nodeinfo_packet(self, to: int, *, want_response: bool) -> MeshPacket:
        return data_packet(
            sender=self.node_num,
            to=to,
            portnum=PortNum.NODEINFO_APP,
            payload=self.state.owner.SerializeToString(),
            packet_id=self._new_id(),
            want_response=want_response,
            hop_limit=self._hop_limit(),
            hop_start=self._hop_limit(),
        )

    # -- packets from the air --------------------------------------------------------------

    def _on_air(self, packet: MeshPacket) -> None:
        sender = sender_of(packet)
        if sender == self.node_num:
            # A neighbour relayed our own packet: for a pending broadcast, an implicit ack.
            pending = self._pending.pop(packet.id, None)
            if pending is not None:
                pending.timer.cancel()
                self._to_client(self._routing_to_self(pending.packet, RoutingError.NONE))
            return
        if packet.to not in (self.node_num, BROADCAST_NUM):
            return  # relaying is the mesh's business; the client only sees its own traffic
        key = (sender, packet.id)
        if key in self._seen_on_air:
            return  # a flood duplicate
        self._seen_on_air[key] = None
        if len(self._seen_on_air) > SEEN_ON_AIR:
            self._seen_on_air.popitem(last=False)
        if not packet.rx_time:
            packet.rx_time = int(time.time())

        unknown = sender not in self._node_db or not self._node_db[sender].HasField("user")
        self._update_node_db(packet)
        decoded = packet.decoded
        if packet.to == self.node_num and decoded.request_id:
            # Any reply addressed to us settles the request: ack, nak or data response.
            pending = self._pending.pop(decoded.request_id, None)
            if pending is not None:
                pending.timer.cancel()
        if (
            packet.to == self.node_num
            and packet.want_ack
            and decoded.portnum != PortNum.ROUTING_APP
        ):
            self._transmit(
                routing_packet(
                    sender=self.node_num,
                    to=sender,
                    request_id=packet.id,
                    packet_id=self._new_id(),
                    channel=packet.channel,
                    hop_limit=self._hop_limit(),
                    hop_start=self._hop_limit(),
                )
            )
        if unknown and decoded.portnum != PortNum.NODEINFO_APP:
            # MeshService::handleFromRadio: introduce ourselves to a stranger.
            self._introduce(sender, want_response=True, throttle=600.0)
        self._to_client(packet)

    def _update_node_db(self, packet: MeshPacket) -> None:
        sender = sender_of(packet)
        info = self._node_db.get(sender)
        if info is None:
            info = self._node_db[sender] = mesh_pb2.NodeInfo(num=sender)
        info.last_heard = packet.rx_time
        info.snr = packet.rx_snr
        info.channel = packet.channel
        if packet.hop_start >= packet.hop_limit and packet.hop_start:
            info.hops_away = packet.hop_start - packet.hop_limit
        decoded = packet.decoded
        try:
            if decoded.portnum == PortNum.NODEINFO_APP:
                user = mesh_pb2.User.FromString(decoded.payload)
                user.id = node_id(sender)  # the firmware never trusts a claimed id
                info.user.CopyFrom(user)
            elif decoded.portnum == PortNum.POSITION_APP:
                position = mesh_pb2.Position.FromString(decoded.payload)
                if position.latitude_i or position.longitude_i:
                    info.position.CopyFrom(position)
        except DecodeError:
            log.info("undecodable %s from %s", PortNum.Name(decoded.portnum), node_id(sender))

    def _to_client(self, packet: MeshPacket) -> None:
        session = self._current
        if session is not None and session.ready:
            self._send(session, mesh_pb2.FromRadio(packet=packet))
            return
        if len(self._to_phone) >= MAX_TO_PHONE:
            # MeshService::sendToPhone: text pushes out the oldest, anything else is dropped.
            if packet.decoded.portnum not in (PortNum.TEXT_MESSAGE_APP, PortNum.RANGE_TEST_APP):
                log.warning("to-client queue full: packet %08x dropped", packet.id)
                return
            self._to_phone.popleft()
        self._to_phone.append(packet)

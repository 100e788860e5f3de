"""A trivial in-memory mesh: a few named virtual radios in range of the device.

No airtime, no loss, no hops beyond what a node is told to claim. It acknowledges the way
real radios do (a direct message to a virtual node is acked by that node; a broadcast is
"rebroadcast" by a neighbour, which the device takes as an implicit ack) so that the real
meshtastic library sees realistic traffic. The mesh simulator replaces it later through
the same `Mesh` protocol.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from meshtastic.protobuf import config_pb2, mesh_pb2, portnums_pb2

from signalfire.radio.mesh_protocol import (
    BROADCAST_NUM,
    AirInterface,
    MeshPacket,
    NodeInfo,
    node_id,
)
from signalfire.radio.packets import data_packet, position_message, routing_packet, sender_of

# Yerevan: the scenario the project is written for; any centre works.
DEFAULT_CENTRE = (40.1792, 44.4991)

_NAMES = (
    "Anahit", "Aram", "Lilit", "Narek", "Sona", "Tigran", "Mariam", "Davit",
    "Gayane", "Hayk", "Nune", "Vardan", "Olga", "Ivan", "Armen", "Karine",
)  # fmt: skip
_HW_MODELS = (
    mesh_pb2.HardwareModel.T_ECHO,
    mesh_pb2.HardwareModel.RAK4631,
    mesh_pb2.HardwareModel.T_DECK,
    mesh_pb2.HardwareModel.HELTEC_V3,
    mesh_pb2.HardwareModel.TRACKER_T1000_E,
)
_RESERVED_NUMS = frozenset({0, 1, 2, 3, BROADCAST_NUM})


def x25519_keypair(rng: random.Random) -> tuple[bytes, bytes]:
    """A real Curve25519 key pair from a seeded generator (reproducible, not secret)."""
    private = X25519PrivateKey.from_private_bytes(rng.randbytes(32))
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return private.private_bytes_raw(), public


def random_node_num(rng: random.Random, taken: set[int]) -> int:
    while True:
        num = rng.getrandbits(32)
        if num not in _RESERVED_NUMS and num not in taken:
            return num


@dataclass
class VirtualNode:
    num: int
    long_name: str
    short_name: str
    latitude: float
    longitude: float
    altitude: int = 0
    hw_model: int = mesh_pb2.HardwareModel.T_ECHO
    role: int = config_pb2.Config.DeviceConfig.Role.CLIENT
    private_key: bytes = b""
    public_key: bytes = b""
    hops_away: int = 0
    rx_snr: float = 6.0
    rx_rssi: int = -80
    inbox: list[MeshPacket] = field(default_factory=list)

    @property
    def node_id(self) -> str:
        return node_id(self.num)

    def user(self) -> mesh_pb2.User:
        return mesh_pb2.User(
            id=self.node_id,
            long_name=self.long_name,
            short_name=self.short_name,
            hw_model=self.hw_model,
            role=self.role,
            public_key=self.public_key,
            macaddr=self.num.to_bytes(6, "big"),
        )

    def position(self, *, now: int, precision_bits: int = 32) -> mesh_pb2.Position:
        return position_message(
            self.latitude,
            self.longitude,
            altitude=self.altitude,
            time=now,
            precision_bits=precision_bits,
        )


def generate_nodes(
    count: int,
    *,
    seed: int = 0,
    centre: tuple[float, float] = DEFAULT_CENTRE,
    radius_m: float = 3000.0,
    taken: Sequence[int] = (),
) -> list[VirtualNode]:
    """`count` reproducible nodes scattered within `radius_m` of `centre`."""
    rng = random.Random(f"signalfire-virtual-mesh:{seed}")  # noqa: S311 - reproducible on purpose
    used = set(taken)
    nodes: list[VirtualNode] = []
    for i in range(count):
        num = random_node_num(rng, used)
        used.add(num)
        name = _NAMES[i % len(_NAMES)] + ("" if i < len(_NAMES) else f" {i // len(_NAMES)}")
        distance = radius_m * math.sqrt(rng.random())
        bearing = rng.uniform(0, 2 * math.pi)
        lat = centre[0] + distance * math.cos(bearing) / 111_320
        lon = centre[1] + distance * math.sin(bearing) / (111_320 * math.cos(math.radians(lat)))
        private_key, public_key = x25519_keypair(rng)
        # Far nodes are heard weaker and, past half the radius, through one relay.
        fraction = distance / radius_m if radius_m else 0.0
        nodes.append(
            VirtualNode(
                num=num,
                long_name=name,
                short_name=(name[:3] + str(i % 10)),
                latitude=round(lat, 6),
                longitude=round(lon, 6),
                altitude=rng.randint(900, 1300),
                hw_model=_HW_MODELS[i % len(_HW_MODELS)],
                private_key=private_key,
                public_key=public_key,
                hops_away=1 if fraction > 0.5 else 0,
                rx_snr=round(10.0 - 18.0 * fraction, 2),
                rx_rssi=round(-60 - 60 * fraction),
            )
        )
    return nodes


class InMemoryMesh:
    """Virtual nodes that are all in range of the attached device and of each other.

    Thread-safe. Everything the device transmits is kept in `transmitted` (the air log) and
    in the addressed node's `inbox`.
    """

    hop_limit = 3

    def __init__(self, nodes: Sequence[VirtualNode] = (), *, seed: int = 0) -> None:
        self.nodes: dict[int, VirtualNode] = {node.num: node for node in nodes}
        self.transmitted: list[MeshPacket] = []
        self._radio: AirInterface | None = None
        self._rng = random.Random(f"signalfire-virtual-mesh-ids:{seed}")  # noqa: S311
        self._changed = threading.Condition()

    @classmethod
    def generate(
        cls,
        count: int,
        *,
        seed: int = 0,
        centre: tuple[float, float] = DEFAULT_CENTRE,
        radius_m: float = 3000.0,
    ) -> InMemoryMesh:
        nodes = generate_nodes(count, seed=seed, centre=centre, radius_m=radius_m)
        return cls(nodes, seed=seed)

    # -- Mesh protocol ------------------------------------------------------------------

    def attach(self, radio: AirInterface) -> None:
        with self._changed:
            self._radio = radio

    def detach(self, radio: AirInterface) -> None:
        with self._changed:
            if self._radio is radio:
                self._radio = None

    def node_infos(self) -> list[NodeInfo]:
        now = int(time.time())
        return [
            mesh_pb2.NodeInfo(
                num=node.num,
                user=node.user(),
                position=node.position(now=now),
                snr=node.rx_snr,
                last_heard=now,
                hops_away=node.hops_away,
            )
            for node in self.nodes.values()
        ]

    def transmit(self, packet: MeshPacket) -> None:
        copy = mesh_pb2.MeshPacket()
        copy.CopyFrom(packet)
        with self._changed:
            self.transmitted.append(copy)
            target = self.nodes.get(copy.to)
            if target is not None:
                target.inbox.append(copy)
            elif copy.to == BROADCAST_NUM:
                for node in self.nodes.values():
                    node.inbox.append(copy)
            self._changed.notify_all()
        self._answer(copy, target)

    # -- what the virtual nodes do ------------------------------------------------------

    def _answer(self, packet: MeshPacket, target: VirtualNode | None) -> None:
        is_routing = packet.decoded.portnum == portnums_pb2.PortNum.ROUTING_APP
        if packet.to == BROADCAST_NUM and self.nodes and packet.hop_limit > 0:
            # A neighbour relays it; the device hears its own packet come back.
            relayed = mesh_pb2.MeshPacket()
            relayed.CopyFrom(packet)
            relayed.hop_limit = packet.hop_limit - 1
            first = next(iter(self.nodes.values()))
            relayed.rx_snr = first.rx_snr
            relayed.rx_rssi = first.rx_rssi
            self._deliver(relayed)
        elif target is not None and packet.want_ack and not is_routing:
            self._deliver(
                routing_packet(
                    sender=target.num,
                    to=sender_of(packet),
                    request_id=packet.id,
                    packet_id=self._new_id(),
                    channel=packet.channel,
                    hop_limit=self.hop_limit - target.hops_away,
                    hop_start=self.hop_limit,
                ),
                via=target,
            )

    def _new_id(self) -> int:
        with self._changed:
            return self._rng.getrandbits(32) or 1

    def _deliver(self, packet: MeshPacket, *, via: VirtualNode | None = None) -> None:
        radio = self._radio
        if radio is None:
            return  # nobody listening: lost on the air
        if via is not None:
            packet.rx_snr = via.rx_snr
            packet.rx_rssi = via.rx_rssi
        radio.deliver(packet)

    def node(self, key: int | str) -> VirtualNode:
        """Look a node up by number, "!hex" id, long name or short name."""
        for node in self.nodes.values():
            if key in (node.num, node.node_id, node.long_name, node.short_name):
                return node
        raise KeyError(key)

    def _destination(self, to: int | None) -> int:
        if to is not None:
            return to
        radio = self._radio
        if radio is None:
            raise RuntimeError("no device attached to the mesh")
        return radio.node_num

    def send_data(
        self,
        sender: VirtualNode | int | str,
        payload: bytes,
        *,
        portnum: int = portnums_pb2.PortNum.PRIVATE_APP,
        to: int | None = None,
        want_ack: bool = False,
        channel: int = 0,
        pki: bool | None = None,
    ) -> MeshPacket:
        """Make a virtual node transmit; `to` None means the attached device.

        Direct messages are reported as PKI-decrypted by default, as 2.5+ radios do
        when both ends know each other's key.
        """
        node = sender if isinstance(sender, VirtualNode) else self.node(sender)
        destination = self._destination(to)
        use_pki = (destination != BROADCAST_NUM) if pki is None else pki
        packet = data_packet(
            sender=node.num,
            to=destination,
            portnum=portnum,
            payload=payload,
            packet_id=self._new_id(),
            want_ack=want_ack,
            channel=channel,
            hop_limit=self.hop_limit - node.hops_away,
            hop_start=self.hop_limit,
            public_key=node.public_key if use_pki and node.public_key else None,
        )
        self._deliver(packet, via=node)
        return packet

    def send_text(
        self,
        sender: VirtualNode | int | str,
        text: str,
        *,
        to: int | None = None,
        want_ack: bool = False,
        channel: int = 0,
    ) -> MeshPacket:
        return self.send_data(
            sender,
            text.encode("utf-8"),
            portnum=portnums_pb2.PortNum.TEXT_MESSAGE_APP,
            to=to,
            want_ack=want_ack,
            channel=channel,
        )

    def send_position(
        self,
        sender: VirtualNode | int | str,
        *,
        latitude: float | None = None,
        longitude: float | None = None,
        precision_bits: int = 32,
        to: int = BROADCAST_NUM,
    ) -> MeshPacket:
        """Broadcast a position (the node's own unless given; giving one moves the node)."""
        node = sender if isinstance(sender, VirtualNode) else self.node(sender)
        if latitude is not None and longitude is not None:
            node.latitude, node.longitude = latitude, longitude
        position = node.position(now=int(time.time()), precision_bits=precision_bits)
        return self.send_data(
            node,
            position.SerializeToString(),
            portnum=portnums_pb2.PortNum.POSITION_APP,
            to=to,
        )

    def send_nodeinfo(
        self, sender: VirtualNode | int | str, *, to: int = BROADCAST_NUM
    ) -> MeshPacket:
        node = sender if isinstance(sender, VirtualNode) else self.node(sender)
        return self.send_data(
            node,
            node.user().SerializeToString(),
            portnum=portnums_pb2.PortNum.NODEINFO_APP,
            to=to,
        )

    def wait_for_transmit(
        self, predicate: Callable[[MeshPacket], bool], timeout: float = 5.0
    ) -> MeshPacket | None:
        """The first packet on the air log matching `predicate`, waiting up to `timeout`."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for packet in self.transmitted:
                    if predicate(packet):
                        return packet
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._changed.wait(remaining)

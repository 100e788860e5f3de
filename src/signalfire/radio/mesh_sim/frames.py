"""What travels on the simulated air: one LoRa frame of a Meshtastic packet.

The simulator moves these light, immutable records instead of protobuf MeshPackets: a
relay makes a new one with a smaller hop_limit, many receivers share one. A packet that
came from an attached device keeps its protobuf (`original`) so that what the other
devices receive carries every field the sender set.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from meshtastic.protobuf import mesh_pb2, portnums_pb2

from signalfire import airtime
from signalfire.radio.mesh_protocol import BROADCAST_NUM, MeshPacket
from signalfire.radio.packets import data_packet, sender_of

ROUTING_APP: int = portnums_pb2.PortNum.ROUTING_APP
# Data.request_id is field 6, fixed32: a tag byte and 4 bytes, on air in every ack.
REQUEST_ID_FIELD_LEN = 5
TRANSPORT_LORA = mesh_pb2.MeshPacket.TransportMechanism.TRANSPORT_LORA


class FrameTooLarge(ValueError):
    """The firmware refuses such a packet (Router::perhapsEncode: TOO_LARGE)."""


def phy_len(payload_len: int, portnum: int, *, pki: bool, request_id: bool) -> int:
    """Bytes a LoRa radio sends for this packet: header, Data protobuf, PKI overhead."""
    if payload_len > airtime.DATA_PAYLOAD_LEN:
        raise FrameTooLarge(f"a {payload_len}-byte payload exceeds Data.payload (233 bytes)")
    size = airtime.meshtastic_frame_len(payload_len, portnum, pki)
    if request_id:
        size += REQUEST_ID_FIELD_LEN
    if size > airtime.MAX_LORA_PAYLOAD_LEN:
        raise FrameTooLarge(f"a {size}-byte frame exceeds the 255-byte LoRa payload")
    return size


@dataclass(frozen=True, slots=True)
class Frame:
    src: int
    dst: int
    id: int
    portnum: int
    payload: bytes
    hop_limit: int
    hop_start: int
    want_ack: bool = False
    want_response: bool = False
    request_id: int = 0
    pki: bool = False
    public_key: bytes = b""  # what the receiving radio reports for a PKI message
    channel: int = 0
    relay: int = 0  # node that put this copy on the air (the last transmitter)
    length: int = 0  # PHY payload bytes; computed when 0
    original: Any = dataclasses.field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.length:
            size = phy_len(
                len(self.payload), self.portnum, pki=self.pki, request_id=bool(self.request_id)
            )
            object.__setattr__(self, "length", size)

    @property
    def key(self) -> tuple[int, int]:
        """What PacketHistory remembers: (original sender, packet id)."""
        return (self.src, self.id)

    @property
    def is_broadcast(self) -> bool:
        return self.dst == BROADCAST_NUM

    @property
    def is_routing(self) -> bool:
        return self.portnum == ROUTING_APP

    def relayed_by(self, node: int) -> Frame:
        """The copy a relay puts on the air: one hop fewer, hop_start kept."""
        return dataclasses.replace(self, hop_limit=self.hop_limit - 1, relay=node)

    def sent_by(self, node: int) -> Frame:
        """The copy its originator transmits (again): relay field set to itself."""
        return self if self.relay == node else dataclasses.replace(self, relay=node)

    @classmethod
    def from_packet(cls, packet: MeshPacket) -> Frame:
        """A device's packet as it goes on the air (`from` already filled in by the device)."""
        copy = mesh_pb2.MeshPacket()
        copy.CopyFrom(packet)
        src = sender_of(copy)
        if copy.WhichOneof("payload_variant") == "encrypted":
            # Opaque to the mesh: header + ciphertext, nothing to decode.
            return cls(
                src=src,
                dst=copy.to,
                id=copy.id,
                portnum=0,
                payload=bytes(copy.encrypted),
                hop_limit=copy.hop_limit,
                hop_start=copy.hop_start,
                want_ack=copy.want_ack,
                channel=copy.channel,
                relay=src,
                length=airtime.MESHTASTIC_HEADER_LEN + len(copy.encrypted),
                original=copy,
            )
        decoded = copy.decoded
        return cls(
            src=src,
            dst=copy.to,
            id=copy.id,
            portnum=decoded.portnum,
            payload=bytes(decoded.payload),
            hop_limit=copy.hop_limit,
            hop_start=copy.hop_start,
            want_ack=copy.want_ack,
            want_response=decoded.want_response,
            request_id=decoded.request_id,
            pki=copy.pki_encrypted,
            public_key=bytes(copy.public_key),
            channel=copy.channel,
            relay=src,
            original=copy,
        )

    def to_packet(self, *, rx_snr: float, rx_rssi: int) -> MeshPacket:
        """The MeshPacket a receiving radio hands to its client for this copy."""
        if self.original is not None:
            packet = mesh_pb2.MeshPacket()
            packet.CopyFrom(self.original)
            packet.ClearField("rx_time")  # the receiving radio stamps its own
        else:
            packet = data_packet(
                sender=self.src,
                to=self.dst,
                portnum=self.portnum,
                payload=self.payload,
                packet_id=self.id,
                want_ack=self.want_ack,
                want_response=self.want_response,
                channel=self.channel,
                request_id=self.request_id,
                public_key=self.public_key if self.pki else None,
            )
        packet.hop_limit = self.hop_limit
        packet.hop_start = self.hop_start
        packet.want_ack = self.want_ack
        packet.rx_snr = rx_snr
        packet.rx_rssi = rx_rssi
        packet.relay_node = self.relay & 0xFF  # the header carries only the last byte
        packet.transport_mechanism = TRANSPORT_LORA
        return packet

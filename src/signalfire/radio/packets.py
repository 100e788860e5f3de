"""Builders for the few MeshPacket shapes the emulator and the virtual mesh produce."""

from __future__ import annotations

from meshtastic.protobuf import mesh_pb2, portnums_pb2

from signalfire.radio.mesh_protocol import MeshPacket


def data_packet(
    *,
    sender: int,
    to: int,
    portnum: int,
    payload: bytes,
    packet_id: int,
    want_ack: bool = False,
    want_response: bool = False,
    channel: int = 0,
    request_id: int = 0,
    hop_limit: int = 3,
    hop_start: int = 3,
    public_key: bytes | None = None,
) -> MeshPacket:
    packet = mesh_pb2.MeshPacket()
    setattr(packet, "from", sender)
    packet.to = to
    packet.id = packet_id
    packet.channel = channel
    packet.want_ack = want_ack
    packet.hop_limit = hop_limit
    packet.hop_start = hop_start
    packet.decoded.portnum = portnum
    packet.decoded.payload = payload
    packet.decoded.want_response = want_response
    if request_id:
        packet.decoded.request_id = request_id
    if public_key is not None:
        # What a receiving radio reports after decrypting a PKI direct message.
        packet.pki_encrypted = True
        packet.public_key = public_key
    return packet


def routing_packet(
    *,
    sender: int,
    to: int,
    request_id: int,
    packet_id: int,
    error: int = mesh_pb2.Routing.Error.NONE,
    channel: int = 0,
    hop_limit: int = 3,
    hop_start: int = 3,
) -> MeshPacket:
    routing = mesh_pb2.Routing(error_reason=error)
    return data_packet(
        sender=sender,
        to=to,
        portnum=portnums_pb2.PortNum.ROUTING_APP,
        payload=routing.SerializeToString(),
        packet_id=packet_id,
        channel=channel,
        request_id=request_id,
        hop_limit=hop_limit,
        hop_start=hop_start,
    )


def position_message(
    latitude: float,
    longitude: float,
    *,
    altitude: int = 0,
    time: int = 0,
    precision_bits: int = 32,
) -> mesh_pb2.Position:
    position = mesh_pb2.Position(
        latitude_i=round(latitude * 1e7),
        longitude_i=round(longitude * 1e7),
        altitude=altitude,
        time=time,
        location_source=mesh_pb2.Position.LocSource.LOC_INTERNAL,
        precision_bits=precision_bits,
    )
    return position


def sender_of(packet: MeshPacket) -> int:
    return int(getattr(packet, "from"))

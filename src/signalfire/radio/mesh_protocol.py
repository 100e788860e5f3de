"""The seam between an emulated radio and "the air" behind it.

An emulated device hands every packet it puts on the air to a `Mesh` and receives packets
from the air through `AirInterface.deliver`. The in-memory mesh in `virtual_mesh` is the
trivial implementation; a simulator with topology, loss and airtime plugs in here too.

Conventions, the same as on a real radio:
- packets are `meshtastic.protobuf.mesh_pb2.MeshPacket` with `decoded` payloads (channel
  and PKI encryption are not emulated; `pki_encrypted`/`public_key` carry what a radio
  would report after decrypting);
- `from` is always set; `to` is a node number or BROADCAST_NUM;
- a delivered packet whose `from` is the device itself is a neighbour's rebroadcast of
  the device's own packet (that is how a real radio learns of an implicit ack);
- acks travel as ordinary ROUTING_APP packets with `decoded.request_id`, so they can be
  delayed or lost like anything else on the air.
"""

from __future__ import annotations

from typing import Any, Protocol

BROADCAST_NUM = 0xFFFFFFFF

# Type alias for mesh_pb2.MeshPacket: the meshtastic package ships no py.typed marker.
MeshPacket = Any
NodeInfo = Any


class AirInterface(Protocol):
    """What a mesh may call on a device that is attached to it. Thread-safe."""

    @property
    def node_num(self) -> int: ...

    def deliver(self, packet: MeshPacket) -> None:
        """A packet arrives from the air (rx_snr, rx_rssi, hop_limit, hop_start set by the mesh)."""


class Mesh(Protocol):
    """What a device needs from the mesh behind it."""

    def attach(self, radio: AirInterface) -> None:
        """Called once the device is powered on; from then on the mesh may deliver to it."""

    def detach(self, radio: AirInterface) -> None:
        """The device was powered off: stop delivering to it."""

    def transmit(self, packet: MeshPacket) -> None:
        """The device puts a packet on the air. Must not block; may be called on any thread."""

    def node_infos(self) -> list[NodeInfo]:
        """What the device's node database holds about other nodes when it powers on."""


def node_id(num: int) -> str:
    return f"!{num:08x}"

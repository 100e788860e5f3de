"""What the gateway stores and hands to uplinks: a packet as heard, plus how it was heard."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Verified(enum.StrEnum):
    VERIFIED = "verified"  # the sender's signature checked out at this gateway
    UNKNOWN_SENDER = "unknown-sender"  # no announcement yet: kept, checked at the coordinator
    NOT_CHECKED = "not-checked"  # e.g. imported from a bundle, checked downstream


@dataclass(frozen=True, slots=True)
class StoredPacket:
    """A signalfire packet (report, attested report or announcement) the gateway accepted."""

    id: bytes  # 16-byte packet id (signalfire.wire.packet_id), the idempotency key everywhere
    raw: bytes  # the exact bytes heard on air
    kind: str  # "report" | "attested" | "announcement"
    priority: int  # 0 routine, 1 elevated, 2 life-safety (signalfire.wire.Priority)
    key_id: bytes  # sender key id
    seq: int | None  # sender sequence number; None for announcements
    received_at: float  # gateway clock, Unix seconds
    radio_node: int | None = None  # Meshtastic node that transmitted it; None if not from radio
    rx_snr: float | None = None
    rx_rssi: int | None = None
    hops: int | None = None
    verified: Verified = Verified.NOT_CHECKED

"""What the gateway stores and hands to uplinks: a packet as heard, plus how it was heard."""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass

COPY_ID_SIZE = 16


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

    @property
    def copy_id(self) -> bytes:
        """16-byte id of these exact bytes: the gateway store is unique on it.

        ``id`` leaves the signature out, so a forged copy (same header and body, bad
        signature) shares it with the genuine packet. Stored by ``id`` alone, whichever
        copy arrived first would suppress the other, and a gateway that cannot check
        the signature (sender unknown here) must not let a forger win that race: both
        copies are kept and delivered, and the coordinator keeps the valid one.
        """
        return hashlib.sha256(self.raw).digest()[:COPY_ID_SIZE]

"""Packets for gateway store tests: synthetic ones by the thousand, real ones from wire."""

from __future__ import annotations

import hashlib

from signalfire import wire
from signalfire.gateway.records import StoredPacket, Verified

ROUTINE, ELEVATED, LIFE = 0, 1, 2
T0 = 1_790_000_000.0  # a fixed "now" for tests that do not care about the clock


def key(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()[:8]


def packet(
    n: int,
    *,
    priority: int = ROUTINE,
    kind: str = "report",
    sender: str = "alice",
    seq: int | None = None,
    received_at: float | None = None,
    verified: Verified = Verified.VERIFIED,
    size: int = 120,
    signature: bytes = b"",
) -> StoredPacket:
    """A packet with plausible fields and unique bytes per (sender, n, kind, priority).

    The id covers everything but ``signature``, as the wire id covers everything
    but the signature: two packets differing only there share an id.
    """
    signed = f"{kind}/{priority}/{sender}/{n}".encode().ljust(size - 64, b".")
    sig = (signature or hashlib.sha512(signed).digest())[:64].ljust(64, b"\0")
    return StoredPacket(
        id=hashlib.sha256(b"id" + signed).digest()[:16],
        raw=signed + sig,
        kind=kind,
        priority=priority,
        key_id=key(sender),
        seq=(n if seq is None else seq) if kind != "announcement" else None,
        received_at=T0 + n if received_at is None else received_at,
        verified=verified,
    )


def from_wire(
    raw: bytes, *, received_at: float = T0, verified: Verified = Verified.VERIFIED
) -> StoredPacket:
    """A StoredPacket for real wire bytes, its fields read the way the daemon reads them."""
    parsed = wire.parse(raw)
    if isinstance(parsed, wire.Announcement):
        kind, seq = "announcement", None
    else:
        kind, seq = parsed.kind.label, parsed.seq
    return StoredPacket(
        id=parsed.id,
        raw=raw,
        kind=kind,
        priority=int(parsed.priority),
        key_id=parsed.key_id,
        seq=seq,
        received_at=received_at,
        verified=verified,
    )

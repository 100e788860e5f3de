"""The interface every uplink implements, and the errors the scheduler acts on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ..records import StoredPacket


class UplinkError(Exception):
    """Delivery failed; ``transient`` says whether retrying later can help."""

    def __init__(self, message: str, *, transient: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient


@dataclass
class Delivery:
    """What the far side answered, by copy id (StoredPacket.copy_id: one per distinct bytes).

    Only acknowledged copies are done for this uplink; rejected ones (the far side
    refused them for good, e.g. a forged signature) are not retried; anything
    else in the batch is retried later.
    """

    acknowledged: set[bytes] = field(default_factory=set)
    rejected: dict[bytes, str] = field(default_factory=dict)


class Uplink(Protocol):
    name: str
    # Largest single message the link carries (None: no practical limit). Satellite SBD
    # carries 340 bytes, SMS 140: the scheduler packs for them.
    max_message_bytes: int | None
    # Links that cost money per byte: the newest status of a sender supersedes an older
    # undelivered one on them (never in the durable log).
    costly: bool

    def probe(self) -> bool:
        """Cheap check that the link is usable now. Never raises."""
        ...

    def send(self, packets: Sequence[StoredPacket]) -> Delivery:
        """Deliver ``packets``; return those acknowledged. Raises UplinkError."""
        ...

    def close(self) -> None: ...

"""The small interface the gateway and the civilian client use to talk to a radio.

Nothing behind it may assume a particular transport: the real implementation
wraps the `meshtastic` library (serial, TCP, BLE), tests use the same one
against the device emulator.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

BROADCAST = 0xFFFFFFFF
TEXT_PORT = 1
POSITION_PORT = 3
ROUTING_PORT = 5
NODEINFO_PORT = 4
# Payload ceilings that really hold (meshtastic-notes.md, signalfire.airtime):
# the library only checks DATA_PAYLOAD_LEN (233), which the firmware then refuses.
MAX_CHANNEL_PAYLOAD = 231
MAX_PKI_PAYLOAD = 219


class RadioError(Exception):
    """The radio refused or could not do what was asked; the message says what to do."""


class RadioState(enum.Enum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"  # retrying with backoff
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Position:
    lat: float
    lon: float
    altitude: int | None = None
    time: int | None = None  # the radio's own timestamp of the fix, Unix seconds
    precision_bits: int | None = None


@dataclass(frozen=True, slots=True)
class Received:
    """One packet the radio heard, keyed on the integer node number (never the string id)."""

    from_node: int
    to_node: int
    packet_id: int
    portnum: int
    payload: bytes
    channel: int
    rx_time: int | None  # the device's receive time, Unix seconds (0/None if it has no clock)
    snr: float | None
    rssi: int | None
    hop_limit: int | None
    hop_start: int | None
    pki_encrypted: bool  # Meshtastic PKI authenticated the sender of this direct message
    text: str | None = None
    position: Position | None = None
    request_id: int = 0  # for ROUTING_APP acks and replies: the packet id they answer

    @property
    def hops(self) -> int | None:
        if self.hop_start is None or self.hop_limit is None or self.hop_start < self.hop_limit:
            return None
        return self.hop_start - self.hop_limit

    @property
    def is_broadcast(self) -> bool:
        return self.to_node == BROADCAST


class SendOutcome(enum.Enum):
    PENDING = "pending"
    ACKED = "acked"  # the destination itself acknowledged
    RELAYED = "relayed"  # implicit ack: a neighbour rebroadcast it (the best a broadcast gets)
    FAILED = "failed"  # the mesh reported an error (error_reason says which)
    TIMEOUT = "timeout"
    NOT_SENT = "not-sent"  # the radio was not connected


@dataclass
class Outgoing:
    """A packet handed to the radio; ``wait()`` blocks until the mesh answers or time runs out."""

    packet_id: int
    dest: int
    portnum: int
    want_ack: bool
    outcome: SendOutcome = SendOutcome.PENDING
    error_reason: str | None = None
    answered_by: int | None = None
    _done: threading.Event = field(default_factory=threading.Event, repr=False)

    def resolve(
        self, outcome: SendOutcome, by: int | None = None, reason: str | None = None
    ) -> None:
        if self._done.is_set():
            return
        self.outcome, self.answered_by, self.error_reason = outcome, by, reason
        self._done.set()

    def wait(self, timeout: float) -> SendOutcome:
        if not self._done.wait(timeout):
            # A relay took it but the destination never confirmed: still worth knowing.
            relayed = self.answered_by is not None
            self.resolve(SendOutcome.RELAYED if relayed else SendOutcome.TIMEOUT, self.answered_by)
        return self.outcome


ReceiveListener = Callable[[Received], object]
StateListener = Callable[[RadioState, str], None]


class Radio(Protocol):
    @property
    def state(self) -> RadioState: ...

    @property
    def my_node(self) -> int | None: ...

    def start(self) -> None: ...

    def close(self) -> None: ...

    def wait_connected(self, timeout: float) -> bool: ...

    def add_listener(self, listener: ReceiveListener) -> None: ...

    def add_state_listener(self, listener: StateListener) -> None: ...

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
    ) -> Outgoing: ...

    def send_text(
        self, text: str, *, dest: int = BROADCAST, want_ack: bool = False
    ) -> Outgoing: ...

    def public_key_of(self, node: int) -> bytes | None: ...

    def own_position(self) -> Position | None: ...

"""What the simulator counts, and the event log that makes a run comparable with another."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, fields

from signalfire.radio.mesh_sim.frames import Frame

# (virtual time in microseconds, kind, node, packet sender, packet id, detail)
LogEntry = tuple[int, str, int, int, int, str]


@dataclass(slots=True)
class NodeStats:
    originated: int = 0  # packets this node's application handed to its radio
    received: int = 0  # frames decoded, duplicates included
    delivered: int = 0  # first copies of packets for this node handed to its application
    duplicates: int = 0  # copies dropped by duplicate detection
    relays_queued: int = 0
    rebroadcasts_cancelled: int = 0  # a CLIENT heard someone else relay it first
    late_deferred: int = 0  # ROUTER_LATE moved a rebroadcast into the late window
    retransmissions: int = 0  # want_ack packets sent again for want of an ack
    acks_sent: int = 0
    acked: int = 0  # a real ack arrived from the destination
    implicit_acks: int = 0  # a neighbour's rebroadcast counted as an ack
    gave_up: int = 0  # retransmissions ran out
    backoffs: int = 0  # channel activity detection found the channel busy
    queue_full: int = 0
    duty_cycle_blocked: int = 0

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class EventLog:
    """Everything that happened, in order; two runs with one seed give equal logs.

    `limit` keeps only the newest entries, for runs in real time that last for hours.
    """

    def __init__(self, enabled: bool = True, limit: int | None = None) -> None:
        self.enabled = enabled
        self.entries: deque[LogEntry] = deque(maxlen=limit)

    def add(self, now: float, kind: str, node: int, frame: Frame | None, detail: str = "") -> None:
        if not self.enabled:
            return
        src, pid = (frame.src, frame.id) if frame is not None else (0, 0)
        self.entries.append((round(now * 1_000_000), kind, node, src, pid, detail))

    def __len__(self) -> int:
        return len(self.entries)

    def of_kind(self, kind: str) -> list[LogEntry]:
        return [entry for entry in self.entries if entry[1] == kind]

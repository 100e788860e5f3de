"""The costly-link container (docs/protocol.md section 16) and the packer that fills it.

Satellite SBD and SMS are paid by the byte (SBD in 50-byte credits of a message of at
most 340 bytes; SMS by the 140-octet message), so the signed JSON batch of section 15
(~700 bytes for one report) is far too dear. A container is just the packets:

    0xC1 || (length (1 byte, 1..219) || packet) *

Nothing else: the coordinator knows which gateway sent it from the modem's identity
(IMEI, phone number), every packet is signed by its own sender, and the link carries
its own checksum. Pure: bytes in, objects out; no I/O.

The packer chooses which of the due packets share one message, in the scheduler's
order (announcements, then life-safety, elevated, routine; oldest first), so that

- a packet is left out only if it does not fit beside the more urgent ones taken;
- within the least urgent class taken, the subset that wastes least of the paid units
  is chosen (a 50-byte credit half-used is paid in full);
- the first packet always goes (progress, whatever else happens).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..wire.packet import MAX_PACKET

MAGIC = 0xC1  # "container, version 1"; not 0x01, so it is never mistaken for a packet
HEADER_SIZE = 1
ENTRY_OVERHEAD = 1  # the length byte

SBD_MO_MAX = 340  # bytes in one mobile-originated SBD message (9602/9603)
SBD_CREDIT = 50  # RockBLOCK bills MO messages in credits of 50 bytes, rounded up
SMS_OCTETS = 140  # 8-bit user data of one SMS
SMS_CONCAT_UDH = 6  # UDHL + IEI 0x00 + IEDL + reference + total + sequence

# Subsets of the flexible pool tried per message: 2^POOL_WINDOW. 12 items are 4096
# subsets, well under a millisecond each; packets beyond the window wait their turn.
POOL_WINDOW = 12


class ContainerError(ValueError):
    """A container that cannot be read (entirely or from some entry on)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code  # "bad-container", "truncated", "oversize", "bad-field"


@dataclass(frozen=True)
class Unpacked:
    """The packets of a container, and what was wrong with it, if anything.

    A damaged tail does not lose the entries before it: ``packets`` holds every
    complete entry up to the damage and ``error`` says what came after.
    """

    packets: tuple[bytes, ...]
    error: ContainerError | None = None


def encode(packets: Sequence[bytes]) -> bytes:
    """The container holding ``packets`` in order. Raises ContainerError on a bad packet."""
    if not packets:
        raise ContainerError("a container holds at least one packet", "bad-field")
    out = bytearray([MAGIC])
    for n, packet in enumerate(packets):
        if not 1 <= len(packet) <= MAX_PACKET:
            raise ContainerError(
                f"packet {n} is {len(packet)} bytes; a packet is 1-{MAX_PACKET} bytes", "oversize"
            )
        out.append(len(packet))
        out += packet
    return bytes(out)


def decode(data: bytes) -> Unpacked:
    """The packets in ``data``; never raises for damage after the first entry (see Unpacked).

    Raises ContainerError only when nothing can be read: empty input or a wrong first
    byte (which also catches a bare packet sent without a container).
    """
    if not data:
        raise ContainerError("empty message: no container", "truncated")
    if data[0] != MAGIC:
        raise ContainerError(
            f"first byte is 0x{data[0]:02x}, not the container's 0x{MAGIC:02x}", "bad-container"
        )
    packets: list[bytes] = []
    at = HEADER_SIZE
    while at < len(data):
        length = data[at]
        if length == 0:
            return Unpacked(
                tuple(packets),
                ContainerError(f"entry {len(packets)} has length 0 (at byte {at})", "bad-field"),
            )
        if length > MAX_PACKET:
            return Unpacked(
                tuple(packets),
                ContainerError(
                    f"entry {len(packets)} claims {length} bytes; a packet is at most {MAX_PACKET}",
                    "oversize",
                ),
            )
        end = at + 1 + length
        if end > len(data):
            return Unpacked(
                tuple(packets),
                ContainerError(
                    f"entry {len(packets)} claims {length} bytes but only {len(data) - at - 1} "
                    "follow: the message was cut short",
                    "truncated",
                ),
            )
        packets.append(bytes(data[at + 1 : end]))
        at = end
    if not packets:
        return Unpacked((), ContainerError("container holds no packet", "truncated"))
    return Unpacked(tuple(packets))


def size(packet_sizes: Sequence[int]) -> int:
    """Bytes of a container holding packets of these sizes."""
    return HEADER_SIZE + sum(packet_sizes) + ENTRY_OVERHEAD * len(packet_sizes)


# -- what a message costs ------------------------------------------------------


def sbd_paid_bytes(message_bytes: int) -> int:
    """Bytes paid for one SBD MO message: whole 50-byte credits."""
    return SBD_CREDIT * max(1, math.ceil(message_bytes / SBD_CREDIT))


def sbd_credits(message_bytes: int) -> int:
    return sbd_paid_bytes(message_bytes) // SBD_CREDIT


def sms_parts(message_bytes: int) -> int:
    """SMS needed for ``message_bytes`` of 8-bit data: one, or concatenated parts of 134."""
    if message_bytes <= SMS_OCTETS:
        return 1
    return math.ceil(message_bytes / (SMS_OCTETS - SMS_CONCAT_UDH))


def sms_paid_bytes(message_bytes: int) -> int:
    return SMS_OCTETS * sms_parts(message_bytes)


# -- the packer ----------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """One due packet as the packer sees it: its size and how urgent (higher first)."""

    size: int
    rank: int


@dataclass(frozen=True)
class Packer:
    """Chooses the packets of one message for a link of ``capacity`` container bytes.

    ``paid(n)`` is what a message of ``n`` bytes costs, in bytes (whole credits or SMS).
    """

    capacity: int
    paid: Callable[[int], int]
    window: int = field(default=POOL_WINDOW)
    # Ranks from which a message takes as much as fits instead of what fits best: with
    # the scheduler's ranks (2 x priority, +1 for announcements), life-safety and above.
    urgent_rank: int = 4

    def choose(self, candidates: Sequence[Candidate]) -> list[int]:
        """Indexes (ascending) of the candidates to send in one message.

        ``candidates`` are in sending order. Empty input gives an empty choice; a first
        candidate too large for the link is still chosen alone (the link refuses it and
        the operator sees why).
        """
        if not candidates:
            return []
        first_fit = self._first_fit(candidates)
        boundary = min(candidates[i].rank for i in first_fit)
        # Fixed: everything more urgent than the least urgent class taken. First fit took
        # every one of those that fits; they stay.
        fixed = [i for i in first_fit if candidates[i].rank > boundary]
        # Flexible: the boundary class, in order, within the window. Swapping among them
        # delays an older report of the same class by one message at most.
        pool = [i for i, c in enumerate(candidates) if c.rank == boundary and i not in fixed]
        pool = pool[: self.window]
        must = {0} & set(pool)  # the head always goes
        best = self._best_subset(candidates, fixed, pool, must)
        chosen = sorted(set(fixed) | set(best))
        # Gap fill with less urgent packets that still fit (they displace nothing).
        used = size([candidates[i].size for i in chosen])
        for i, c in enumerate(candidates):
            if c.rank < boundary and used + c.size + ENTRY_OVERHEAD <= self.capacity:
                chosen.append(i)
                used += c.size + ENTRY_OVERHEAD
        return sorted(chosen)

    def _first_fit(self, candidates: Sequence[Candidate]) -> list[int]:
        taken = [0]
        used = size([candidates[0].size])
        for i in range(1, len(candidates)):
            need = candidates[i].size + ENTRY_OVERHEAD
            if used + need <= self.capacity:
                taken.append(i)
                used += need
        return taken

    def _best_subset(
        self,
        candidates: Sequence[Candidate],
        fixed: list[int],
        pool: list[int],
        must: set[int],
    ) -> list[int]:
        base = size([candidates[i].size for i in fixed])
        base_bytes = sum(candidates[i].size for i in fixed)
        best: tuple[int, ...] | None = None
        best_key: tuple[float, float, int] = (-1.0, 0.0, 0)
        urgent = bool(pool) and candidates[pool[0]].rank >= self.urgent_rank
        free = [i for i in pool if i not in must]
        for r in range(len(free) + 1):
            for combo in itertools.combinations(free, r):
                picked = tuple(sorted(must | set(combo)))
                if not picked and not fixed:
                    continue
                total = base + sum(candidates[i].size + ENTRY_OVERHEAD for i in picked)
                if total > self.capacity:
                    continue
                payload = base_bytes + sum(candidates[i].size for i in picked)
                efficiency = payload / self.paid(total)
                # Urgent classes: as much as fits now (an SOS does not wait for a better
                # fit). Others: least waste of what is paid, then more bytes. Ties: older.
                if urgent:
                    key = (float(payload), efficiency, -sum(picked))
                else:
                    key = (efficiency, float(payload), -sum(picked))
                if key > best_key:
                    best, best_key = picked, key
        if best is None:  # nothing fits beside the fixed ones
            return sorted(must)
        return list(best)


def sbd_packer() -> Packer:
    return Packer(SBD_MO_MAX, sbd_paid_bytes)


def sms_packer(max_parts: int) -> Packer:
    if not 1 <= max_parts <= 255:
        raise ValueError("an SMS message has 1-255 parts")
    capacity = SMS_OCTETS if max_parts == 1 else max_parts * (SMS_OCTETS - SMS_CONCAT_UDH)
    return Packer(capacity, sms_paid_bytes)

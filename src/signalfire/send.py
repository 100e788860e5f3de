"""The civilian side of the radio: seal, announce the key when needed, send, wait for the mesh.

The sequence number and key-tree state are persisted by `Identity.seal`
before anything is transmitted. Retries resend the very same bytes, so a
report heard twice is still one report (one id) everywhere downstream.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from . import wire
from .errors import SignalfireError
from .keyfiles import PRIVATE_MODE, atomic_write, dump_json, read_json
from .profile import NetworkProfile
from .radio.api import BROADCAST, Outgoing, Radio, SendOutcome
from .sender import Identity, Sealed

log = logging.getLogger(__name__)

GOOD = (SendOutcome.ACKED, SendOutcome.RELAYED)


@dataclass
class Attempt:
    what: str  # "announcement" or "report"
    outcome: SendOutcome
    packet_id: int
    answered_by: int | None
    error_reason: str | None


@dataclass
class SendResult:
    report_id: str
    seq: int
    size: int
    dest: int
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def outcome(self) -> SendOutcome:
        reports = [a for a in self.attempts if a.what == "report"]
        return reports[-1].outcome if reports else SendOutcome.NOT_SENT

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.report_id,
            "seq": self.seq,
            "size": self.size,
            "dest": None if self.dest == BROADCAST else f"!{self.dest:08x}",
            "outcome": self.outcome.value,
            "attempts": [
                {
                    "what": a.what,
                    "outcome": a.outcome.value,
                    "packet_id": a.packet_id,
                    "answered_by": None if a.answered_by is None else f"!{a.answered_by:08x}",
                    "error": a.error_reason,
                }
                for a in self.attempts
            ],
        }

    def in_words(self) -> str:
        """What happened, for a frightened person reading a small screen."""
        outcome = self.outcome
        if outcome is SendOutcome.ACKED:
            who = f" (radio !{self.dest:08x})" if self.dest != BROADCAST else ""
            return f"Delivered: the gateway's radio{who} confirmed your report."
        if outcome is SendOutcome.RELAYED:
            return (
                "Sent: a nearby radio passed your report on. There is no confirmation from a "
                "gateway yet; if you can, send again later."
            )
        if outcome is SendOutcome.FAILED:
            reason = next((a.error_reason for a in reversed(self.attempts) if a.error_reason), "")
            return f"Not delivered: the mesh reported {reason}. Your report is saved; try again."
        return (
            "Not confirmed: no radio answered in time. Your report is saved and was sent "
            f"{sum(1 for a in self.attempts if a.what == 'report')} time(s); try again from "
            "higher ground or closer to a relay."
        )


class AnnouncementLog:
    """Remembers which announcements the mesh has taken, beside the identity (0600)."""

    def __init__(self, identity: Identity) -> None:
        self.path = identity.path.with_name(identity.path.name + ".announced")

    def _load(self) -> dict[str, Any]:
        if not self.path.exists():
            return {}
        return read_json(self.path, "announcement log", "delete it; announcements will be resent")

    def done(self, announcement: bytes) -> bool:
        return bool(self._load().get(wire.packet_id(announcement[:-64]).hex()))

    def mark(self, announcement: bytes) -> None:
        data = self._load()
        data[wire.packet_id(announcement[:-64]).hex()] = True
        atomic_write(self.path, dump_json(data), PRIVATE_MODE)


def send_report(
    radio: Radio,
    identity: Identity,
    profile: NetworkProfile,
    report: wire.Report,
    *,
    dest: int = BROADCAST,
    ack_timeout: float = 60.0,
    tries: int = 3,
    force_announce: bool = False,
) -> SendResult:
    """Seal and send ``report``; the radio must already be connected."""
    sealed: Sealed = identity.seal(profile, report)
    parsed = wire.parse(sealed.packet)
    result = SendResult(parsed.id.hex(), sealed.seq, len(sealed.packet), dest)
    announcement, _ = identity.enrol(profile)
    announced = AnnouncementLog(identity)
    if force_announce or not announced.done(announcement):
        urgent = wire.reannounce(announcement, identity.key, wire.priority_of(report.status))
        out = _transmit(radio, urgent, profile, dest, ack_timeout)
        result.attempts.append(
            Attempt("announcement", out.outcome, out.packet_id, out.answered_by, out.error_reason)
        )
        if out.outcome in GOOD:
            announced.mark(announcement)
    for _ in range(max(1, tries)):
        out = _transmit(radio, sealed.packet, profile, dest, ack_timeout)
        result.attempts.append(
            Attempt("report", out.outcome, out.packet_id, out.answered_by, out.error_reason)
        )
        if out.outcome in GOOD:
            break
    return result


def _transmit(
    radio: Radio, payload: bytes, profile: NetworkProfile, dest: int, timeout: float
) -> Outgoing:
    pki = dest != BROADCAST and radio.public_key_of(dest) is not None
    out = radio.send(payload, portnum=profile.app_port, dest=dest, want_ack=True, pki=pki)
    out.wait(timeout)
    log.info("sent %d bytes to %s: %s", len(payload), dest, out.outcome.value)
    return out


def parse_node(text: str) -> int:
    """`!a1b2c3d4`, `0xa1b2c3d4` or a decimal node number."""
    t = text.strip().lower()
    try:
        if t.startswith("!"):
            return int(t[1:], 16)
        if t.startswith("0x"):
            return int(t, 16)
        return int(t)
    except ValueError:
        raise SignalfireError(f"{text!r} is not a node number (like !a1b2c3d4)") from None

"""Gateway side of stock-radio intake: text and positions in, attested reports and replies out.

The clock is passed in (``now``), so the rules are testable to the second;
sealing uses the gateway's Identity, which persists its sequence number.
What a gateway does with the results (store, forward, transmit the reply
through the radio's send queue) is the daemon's business.
"""

from __future__ import annotations

import base64
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import TypeVar

from signalfire import wire
from signalfire.profile import NetworkProfile
from signalfire.radio.api import Position, Received
from signalfire.sender import Identity

from .keywords import ParsedMessage, parse_message
from .lang import Lang
from .replies import Reply, reply_text

log = logging.getLogger(__name__)
_K = TypeVar("_K")
_V = TypeVar("_V")

# Defaults of the reply budget (docs/stock-radio.md): every reply is airtime on the
# channel everyone's calls for help share.
HELP_INTERVAL_S = 600.0  # one help reply per sender per 10 minutes
RECEIPT_INTERVAL_S = 60.0  # one received/cancelled reply per sender per minute
POSITION_MAX_AGE_S = 6 * 3600.0  # an older fix is not attached to a report
_REMEMBERED_NODES = 10_000  # bounded memory whatever a flood of node numbers does
_REMEMBERED_PACKETS = 4_096


@dataclass(frozen=True)
class StockResult:
    parsed: ParsedMessage
    packet: bytes | None  # the sealed attested report, None for a message that is not one
    report_id: str | None
    reply: str | None  # text to send back as a direct message, None when the budget says no
    reply_to: int


class _Lru(OrderedDict[int, tuple[Position, float]]):
    def put(self, key: int, value: tuple[Position, float], limit: int) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > limit:
            self.popitem(last=False)


def reference_for(report_id: bytes) -> str:
    """A short code a person can read out: 5 base32 characters of the report id."""
    return base64.b32encode(report_id[:5]).decode()[:5]


class StockIntake:
    def __init__(
        self,
        gateway: Identity,
        profile: NetworkProfile,
        *,
        help_interval_s: float = HELP_INTERVAL_S,
        receipt_interval_s: float = RECEIPT_INTERVAL_S,
        position_max_age_s: float = POSITION_MAX_AGE_S,
    ) -> None:
        self.gateway = gateway
        self.profile = profile
        self.help_interval_s = help_interval_s
        self.receipt_interval_s = receipt_interval_s
        self.position_max_age_s = position_max_age_s
        self._positions = _Lru()
        self._last_help: OrderedDict[int, float] = OrderedDict()
        self._last_receipt: OrderedDict[int, float] = OrderedDict()
        self._seen: OrderedDict[tuple[int, int], None] = OrderedDict()

    def on_position(self, received: Received, now: float) -> None:
        if received.position is None:
            return
        self._positions.put(received.from_node, (received.position, now), _REMEMBERED_NODES)

    def on_text(self, received: Received, now: float) -> StockResult | None:
        """None for a copy of a message already handled (heard again through another relay)."""
        key = (received.from_node, received.packet_id)
        if key in self._seen:
            return None
        self._remember(self._seen, key, None, _REMEMBERED_PACKETS)
        parsed = parse_message(received.text or "")
        sender = received.from_node
        if parsed.status is None:
            reply = None
            if self._allowed(self._last_help, sender, now, self.help_interval_s):
                reply = reply_text(Reply.HELP, parsed.lang, "")
            return StockResult(parsed, None, None, reply, sender)
        report = self._report(parsed, received, now)
        sealed = self.gateway.seal(self.profile, report)
        report_id = wire.parse(sealed.packet).id
        reply = None
        if self._allowed(self._last_receipt, sender, now, self.receipt_interval_s):
            reply = self._receipt(parsed, reference_for(report_id))
        log.info(
            "stock message from !%08x read as %s (%d people): report %s",
            sender, parsed.status.label, parsed.people, report_id.hex(),
        )  # fmt: skip
        return StockResult(parsed, sealed.packet, report_id.hex(), reply, sender)

    def _report(self, parsed: ParsedMessage, received: Received, now: float) -> wire.Report:
        assert parsed.status is not None
        location = None
        age: int | None = None
        fix = self._positions.get(received.from_node)
        if fix is not None:
            position, heard_at = fix
            age = max(0, int(now - heard_at))
            if age <= self.position_max_age_s:
                location = wire.Location.from_degrees(
                    position.lat, position.lon, accuracy_m=_accuracy(position)
                )
            else:
                age = None
        rx_time = int(now)
        text = parsed.text or None
        report = wire.Report(
            status=parsed.status,
            time=received.rx_time or rx_time,
            people=parsed.people,
            needs=parsed.needs,
            location=location,
            text=text,
            attestation=wire.Attestation(
                node_num=received.from_node,
                packet_id=received.packet_id,
                rx_time=rx_time,
                pki_authenticated=received.pki_encrypted,
                direct_message=not received.is_broadcast,
                hops=received.hops if received.hops is not None else 0xFF,
                position_age=age if location is not None else None,
            ),
        )
        return _fit(report)

    @staticmethod
    def _receipt(parsed: ParsedMessage, reference: str) -> str:
        assert parsed.status is not None
        lang: Lang = parsed.lang
        if parsed.status is wire.Status.CANCEL:
            return reply_text(Reply.CANCELLED, lang, reference)
        people = parsed.people if parsed.people_stated else None
        return reply_text(Reply.RECEIVED, lang, reference, status=parsed.status, people=people)

    def _allowed(self, last: OrderedDict[int, float], sender: int, now: float, gap: float) -> bool:
        before = last.get(sender)
        if before is not None and now - before < gap:
            return False
        self._remember(last, sender, now, _REMEMBERED_NODES)
        return True

    @staticmethod
    def _remember(table: OrderedDict[_K, _V], key: _K, value: _V, limit: int) -> None:
        table[key] = value
        table.move_to_end(key)
        while len(table) > limit:
            table.popitem(last=False)


def _accuracy(position: Position) -> float | None:
    """Meshtastic's precision bits as metres (32 bits: exact; 13 bits: about 2.9 km)."""
    bits = position.precision_bits
    if not bits or bits >= 32:
        return None
    # The radio keeps the top `bits` bits of latitude_i (1e-7 degrees): the cell is
    # 2**(32 - bits) * 1e-7 degrees; half of it, in metres, bounds the error.
    return float(2 ** (32 - bits)) * 1e-7 * 111_320 / 2


def _fit(report: wire.Report) -> wire.Report:
    """Clean and cut the free text (never the status, count or place) so the report fits."""
    if not report.text:
        return report
    # The wire refuses control characters; a stock app can send \r or worse.
    clean = "".join(
        " " if (ord(c) < 0x20 and c not in "\n\t") or c == "\x7f" else c for c in report.text
    ).strip()
    base = wire.report_size(_with_text(report, None))
    budget = max(0, min(255, wire.MAX_PACKET - base - 2))  # 2: the extension's header
    data = clean.encode("utf-8")
    if len(data) > budget:
        clean = data[:budget].decode("utf-8", errors="ignore").rstrip()
    return _with_text(report, clean or None)


def _with_text(report: wire.Report, text: str | None) -> wire.Report:
    return wire.Report(
        report.status, report.time, report.people, report.needs, report.location, text,
        report.attestation,
    )  # fmt: skip

"""What the gateway does with each packet its radio hears.

signalfire packets (app port): parsed, checked as far as this gateway can
(signature when the sender's announcement is known; a forged one is counted
and dropped), rate-limited per radio node and per sender key, then committed
to the store before anything is acknowledged. Stock-radio text: read by
StockIntake into a gateway-attested report, stored, then answered. Positions
feed StockIntake's cache.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from .. import wire
from ..intake.stock import StockIntake
from ..radio.api import POSITION_PORT, TEXT_PORT, Radio, Received
from .ratelimit import Buckets
from .records import StoredPacket, Verified

log = logging.getLogger(__name__)

REPLY_SPACING_S = 2.5  # the firmware drops a client's texts sent less than 2 s apart
# Gateway-wide budgets against floods that forge node numbers or mint identities. A
# LONG_FAST channel carries well under one report a second, so these only bite on abuse.
NEW_IDENTITIES_PER_NODE_PER_MINUTE = 2
NEW_IDENTITIES_PER_MINUTE = 30
UNVERIFIED_PER_MINUTE = 120


class PacketStore(Protocol):
    def add(self, packet: StoredPacket, uplinks: Sequence[str]) -> bool: ...


class StoreRefused(Exception):
    """Raised by a store that sheds or is full; the intake counts it and carries on."""


def stored_packet(
    raw: bytes, parsed: wire.SealedReport | wire.Announcement, item: Received | None, now: float,
    verified: Verified,
) -> StoredPacket:  # fmt: skip
    if isinstance(parsed, wire.Announcement):
        kind, key_id, seq = "announcement", parsed.key_id, None
    else:
        kind = "attested" if parsed.kind is wire.Kind.ATTESTED else "report"
        key_id, seq = parsed.key_id, parsed.seq
    return StoredPacket(
        id=parsed.id,
        raw=raw,
        kind=kind,
        priority=int(parsed.priority),
        key_id=key_id,
        seq=seq,
        received_at=now,
        radio_node=item.from_node if item else None,
        rx_snr=item.snr if item else None,
        rx_rssi=item.rssi if item else None,
        hops=item.hops if item else None,
        verified=verified,
    )


class ReplySender:
    """Sends stock-radio replies through the radio, paced, on its own thread."""

    def __init__(self, radio: Radio, spacing: float = REPLY_SPACING_S) -> None:
        self.radio = radio
        self.spacing = spacing
        self._queue: collections.deque[tuple[int, str]] = collections.deque(maxlen=500)
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="replies", daemon=True)
        self.sent = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(5)

    def put(self, dest: int, text: str) -> None:
        with self._cond:
            self._queue.append((dest, text))
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                dest, text = self._queue.popleft()
            try:
                self.radio.send_text(text, dest=dest, want_ack=True)
                self.sent += 1
            except Exception:
                log.exception("could not send a reply to !%08x", dest)
            with self._cond:
                if self._cond.wait_for(lambda: self._stopping, self.spacing):
                    return


class GatewayIntake:
    def __init__(
        self,
        store: PacketStore,
        keyring: wire.Keyring,
        uplinks: Sequence[str],
        *,
        app_port: int,
        stock: StockIntake | None = None,
        replies: ReplySender | None = None,
        per_node_per_minute: float = 30,
        per_key_per_minute: float = 12,
        on_stored: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.keyring = keyring
        self.uplinks = list(uplinks)
        self.app_port = app_port
        self.stock = stock
        self.replies = replies
        self.on_stored = on_stored
        self.clock = clock
        self.per_node = Buckets(per_node_per_minute, burst=max(5.0, per_node_per_minute / 2))
        self.per_key = Buckets(per_key_per_minute, burst=max(3.0, per_key_per_minute / 2))
        self.per_key_urgent = Buckets(per_key_per_minute * 2, burst=max(6.0, per_key_per_minute))
        self.per_node_urgent = Buckets(
            per_node_per_minute * 2, burst=max(10.0, per_node_per_minute)
        )
        self.new_identity_per_node = Buckets(NEW_IDENTITIES_PER_NODE_PER_MINUTE, burst=5)
        self.new_identity_global = Buckets(
            NEW_IDENTITIES_PER_MINUTE, burst=NEW_IDENTITIES_PER_MINUTE
        )
        self.unverified_global = Buckets(UNVERIFIED_PER_MINUTE, burst=UNVERIFIED_PER_MINUTE / 2)
        self.counts: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()  # radio listeners run on one thread, but be sure

    def handle(self, item: Received) -> str:
        """Process one received packet; returns what happened (also counted in ``counts``)."""
        with self._lock:
            try:
                outcome = self._handle(item)
            except StoreRefused as exc:
                outcome = "store-refused"
                log.error("store refused a packet from !%08x: %s", item.from_node, exc)
            except Exception:
                outcome = "error"
                log.exception(
                    "intake failed on packet %08x from !%08x", item.packet_id, item.from_node
                )
            self.counts[outcome] += 1
            return outcome

    def _handle(self, item: Received) -> str:
        now = self.clock()
        if item.portnum == self.app_port:
            return self._signalfire(item, now)
        if item.portnum == POSITION_PORT and self.stock is not None:
            self.stock.on_position(item, now)
            return "position"
        if item.portnum == TEXT_PORT and self.stock is not None:
            return self._text(item, now)
        return "ignored"

    def _signalfire(self, item: Received, now: float) -> str:
        try:
            parsed = wire.parse(item.payload)
        except wire.WireError as exc:
            self.per_node.allow(item.from_node, now)  # junk spends the sender's tokens too
            log.debug("malformed packet from !%08x: %s", item.from_node, exc.message)
            return f"malformed:{exc.code}"
        verified = Verified.NOT_CHECKED
        if isinstance(parsed, wire.Announcement):
            # Identities cost nothing to make: a flood of fresh ones (each with its own
            # per-key allowance) is bounded per radio node and for the whole gateway.
            if not self.keyring.knows(parsed.key_id) and not (
                self.new_identity_per_node.allow(item.from_node, now)
                and self.new_identity_global.allow("all", now)
            ):
                return "rate-limited:new-identity"
            try:
                self.keyring.add(parsed)
            except wire.WireError as exc:
                log.info("announcement from !%08x refused: %s", item.from_node, exc.message)
                return f"refused:{exc.code}"
            verified = Verified.VERIFIED
        else:
            try:
                self.keyring.verify(parsed)
                verified = Verified.VERIFIED
            except wire.UnknownSender:
                verified = Verified.UNKNOWN_SENDER
            except wire.BadSignature:
                log.warning("forged or damaged report from radio !%08x dropped", item.from_node)
                self.per_node.allow(item.from_node, now, cost=2)
                return "forged"
        # Meshtastic keeps the originator in `from` across relays, so the node bucket is
        # per originating radio. A verified life-safety report draws on a separate,
        # larger allowance: routine chatter from the same radio never blocks its SOS.
        urgent = verified is Verified.VERIFIED and parsed.priority is wire.Priority.LIFE_SAFETY
        node_bucket = self.per_node_urgent if urgent else self.per_node
        if not node_bucket.allow(item.from_node, now):
            return "rate-limited:node"
        if verified is Verified.VERIFIED:
            bucket = self.per_key_urgent if urgent else self.per_key
            if not bucket.allow(parsed.key_id, now):
                return "rate-limited:key"
        elif verified is Verified.UNKNOWN_SENDER and not self.unverified_global.allow("all", now):
            # Nobody can check these here, whatever priority they claim: a gateway-wide
            # budget stops forged node numbers from filling the life-safety queue.
            return "rate-limited:unverified"
        new = self.store.add(stored_packet(item.payload, parsed, item, now, verified), self.uplinks)
        if new:
            self.on_stored()
        return "stored" if new else "duplicate"

    def _text(self, item: Received, now: float) -> str:
        assert self.stock is not None
        if not self.per_node.allow(item.from_node, now):
            return "rate-limited:node"
        result = self.stock.on_text(item, now)
        if result is None:
            return "duplicate"
        if result.packet is not None:
            parsed = wire.parse(result.packet)
            self.store.add(
                stored_packet(result.packet, parsed, item, now, Verified.VERIFIED), self.uplinks
            )
            self.on_stored()
        if result.reply and self.replies is not None:
            self.replies.put(result.reply_to, result.reply)  # only after the store committed
        return "stock" if result.packet is not None else "help"

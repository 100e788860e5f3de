"""Iridium SBD uplink: packed containers over a satellite modem on a serial port.

One ``send`` is one SBD session: the scheduler has already chosen packets that fit one
340-byte mobile-originated message (``packer``) and within the daily credit budget
(``budget_per_day``; life-safety reports may exceed it, routine ones may not). The
uplink writes the container (docs/protocol.md section 16) with AT+SBDWB, runs AT+SBDIX
and reads the answer:

- MO status 0-4: the Iridium gateway has the message; the packets are done on this
  uplink. RockBLOCK then POSTs it to the coordinator's webhook and retries that itself;
  the coordinator ingests idempotently. (There is no end-to-end acknowledgement on this
  link yet: a later issue will use mobile-terminated messages for that.)
- any other status: nothing went; the packets stay pending. Codes that ask for a wait
  (36 "wait 3 minutes since last registration", 38 traffic management, 11 queue full,
  37 service disabled) hold the uplink off for that long (:data:`MO_HOLD_S`); hardware
  and subscription faults are reported as not transient.

Before each session the signal is read (AT+CSQ); below ``min_signal`` bars the uplink
does not try (a session would very likely fail and costs power and time). A
mobile-terminated message fetched by the session is read (AT+SBDRB), logged and handed
to ``on_mt``. Credits are counted for successful sessions only: Iridium bills delivered
MO messages, in 50-byte units.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence

from ...modem import container
from ...modem.at import AtChannel, ModemError, ModemGone
from ...modem.sbd import MO_HOLD_S, MO_PERMANENT, SbdModem, describe_mo
from ..records import StoredPacket
from .base import Delivery, UplinkError

log = logging.getLogger(__name__)

DEFAULT_MIN_SIGNAL = 2


class CostlyUplinkError(UplinkError):
    """A failure after which the link wants ``hold_s`` seconds of quiet (the scheduler obeys)."""

    def __init__(self, message: str, *, transient: bool = True, hold_s: float = 0.0) -> None:
        super().__init__(message, transient=transient)
        self.hold_s = hold_s


class SbdUplink:
    max_message_bytes: int | None = container.SBD_MO_MAX
    costly = True
    budget_unit = "credits"

    def __init__(
        self,
        port: str,
        *,
        name: str = "sbd",
        baudrate: int = 19200,
        min_signal: int = DEFAULT_MIN_SIGNAL,
        credits_per_day: int | None = None,
        session_timeout_s: float = 90.0,
        on_mt: Callable[[int, bytes], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 <= min_signal <= 5:
            raise ValueError("min_signal is 0-5 bars")
        self.name = name
        self.port = port
        self.min_signal = min_signal
        self.budget_per_day = credits_per_day
        self.session_timeout_s = session_timeout_s
        self.on_mt = on_mt
        self.clock = clock
        self.packer = container.sbd_packer()
        self.modem = SbdModem(AtChannel(port, baudrate=baudrate))
        self.last_spent = 0  # credits the last send cost (the scheduler records them)
        self.credits_used = 0
        self.sessions = 0
        self.mt_received: deque[tuple[int, bytes]] = deque(maxlen=100)
        self._hold_until = 0.0

    def cost(self, packets: Sequence[StoredPacket]) -> int:
        """Credits one message holding ``packets`` costs."""
        return container.sbd_credits(container.size([len(p.raw) for p in packets]))

    def probe(self) -> bool:
        if self.clock() < self._hold_until:
            return False
        try:
            bars = self.modem.signal()
        except ModemError as exc:
            log.debug("sbd %s: probe failed: %s", self.name, exc.message)
            self.modem.close()
            return False
        return bars >= self.min_signal

    def send(self, packets: Sequence[StoredPacket]) -> Delivery:
        self.last_spent = 0
        wait = self._hold_until - self.clock()
        if wait > 0:
            raise CostlyUplinkError(f"holding off for {wait:.0f} s more", hold_s=wait)
        try:
            data = container.encode([p.raw for p in packets])
        except container.ContainerError as exc:
            raise UplinkError(
                f"cannot pack these packets: {exc.message}", transient=False
            ) from None
        if len(data) > container.SBD_MO_MAX:
            raise UplinkError(
                f"{len(data)} bytes do not fit one SBD message ({container.SBD_MO_MAX})",
                transient=False,
            )
        try:
            bars = self.modem.signal()
            if bars < self.min_signal:
                raise CostlyUplinkError(
                    f"signal {bars} bars, below min_signal {self.min_signal}: not trying "
                    "(move the antenna to see more of the sky)"
                )
            self.modem.write_mo(data)
            self.sessions += 1
            result = self.modem.session(self.session_timeout_s)
        except ModemGone as exc:
            self.modem.close()
            raise UplinkError(f"modem unreachable: {exc.message}") from None
        except ModemError as exc:
            # A modem that timed out may still be mid-session: start clean next time. If
            # the message did go, the coordinator drops the second copy (same report ids).
            self.modem.close()
            raise UplinkError(f"modem: {exc.message}", transient=exc.transient) from None
        if not result.mo_ok:
            code = result.mo_status
            hold = MO_HOLD_S.get(code, 0.0)
            if hold:
                self._hold_until = self.clock() + hold
            raise CostlyUplinkError(
                f"SBD session failed, MO status {code}: {describe_mo(code)}",
                transient=code not in MO_PERMANENT,
                hold_s=hold,
            )
        self.last_spent = container.sbd_credits(len(data))
        self.credits_used += self.last_spent
        log.info(
            "sbd %s: sent %d packets in %d bytes (%d credits), MOMSN %d",
            self.name, len(packets), len(data), self.last_spent, result.momsn,
        )  # fmt: skip
        self._after_session(result.mt_status, result.mtmsn, result.mt_queued)
        return Delivery(acknowledged={p.copy_id for p in packets})

    def _after_session(self, mt_status: int, mtmsn: int, mt_queued: int) -> None:
        """Fetch an MT message the session brought, then clear the MO buffer.

        The MO went already: a failure here must not undo that, so it is only logged.
        """
        try:
            if mt_status == 1:
                message = self.modem.read_mt()
                self.mt_received.append((mtmsn, message))
                log.info(
                    "sbd %s: mobile-terminated message MTMSN %d, %d bytes (%d more queued)",
                    self.name, mtmsn, len(message), mt_queued,
                )  # fmt: skip
                if self.on_mt is not None:
                    self.on_mt(mtmsn, message)
            elif mt_status == 2:
                log.info("sbd %s: the mailbox check failed (MT status 2)", self.name)
            self.modem.clear_mo()
        except ModemError as exc:
            log.warning("sbd %s: after a successful session: %s", self.name, exc.message)
            self.modem.close()
        except Exception:
            log.exception("sbd %s: handling the MT message failed", self.name)

    def close(self) -> None:
        self.modem.close()

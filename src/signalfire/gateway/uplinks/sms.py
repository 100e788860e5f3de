"""SMS uplink: packed containers as 8-bit SMS through a GSM modem on a serial port.

One ``send`` is one message: the scheduler has already chosen packets that fit
``max_parts`` SMS (``packer``) and the daily budget in SMS parts (``budget_per_day``;
life-safety reports may exceed it, routine ones may not). The uplink builds the
container (docs/protocol.md section 16), splits it as section 16 says (one SMS up to
140 octets, else concatenated parts of 134 with an 8-bit reference), submits every part
with a status report requested (AT+CMGS in PDU mode) and waits for the reports:

- **done** means every part's SMS-STATUS-REPORT says delivered (TP-ST 0x00-0x1F): the
  SMSC handed it to the coordinator's SMS modem, whose forwarder (Kannel) passes it to
  the coordinator's webhook. Only then are the packets acknowledged on this uplink.
- a report that says failed, or none within ``status_report_timeout_s``: the packets stay
  pending and go again later, as a new message (a new concatenation reference). If the
  first copy did arrive, the coordinator recognises the reports again by their ids.
- ``+CMS ERROR`` from the modem: congestion (42), network out of order (38) and the like
  back off, at least :data:`~signalfire.modem.gsm.CMS_HOLD_S`; an unknown SMSC (330), a
  barred SIM and such are reported as not transient (the operator must act).

Before each message the signal (AT+CSQ, below ``min_signal`` no try) and the network
registration (AT+CREG?: home or roaming; roaming is normal near a border) are read.
Parts the SMSC accepted are paid whether or not a report comes, so ``last_spent``
counts accepted parts even when the send fails.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence

from ...modem import container
from ...modem.at import ModemError, ModemGone
from ...modem.gsm import (
    ST_PERMANENT,
    GsmModem,
    SmsRefused,
    describe_status,
    split_container,
)
from ...modem.pdu import StatusReport
from ..records import StoredPacket
from .base import Delivery, UplinkError
from .sbd import CostlyUplinkError

log = logging.getLogger(__name__)

DEFAULT_MAX_PARTS = 8  # bench/packing.py: more parts buy little and risk more
DEFAULT_MIN_SIGNAL = 5  # AT+CSQ 5 is about -103 dBm: SMS still gets through
DEFAULT_REPORT_TIMEOUT_S = 120.0


def max_message_bytes(max_parts: int) -> int:
    if not 1 <= max_parts <= 255:
        raise ValueError("max_parts is 1-255")
    if max_parts == 1:
        return container.SMS_OCTETS
    return max_parts * (container.SMS_OCTETS - container.SMS_CONCAT_UDH)


class NotDelivered(ModemError):
    """A part reported failed, or not reported in time. The modem itself is fine."""


class SmsUplink:
    costly = True
    budget_unit = "SMS parts"

    def __init__(
        self,
        port: str,
        *,
        to: str,
        name: str = "sms",
        baudrate: int = 115200,
        smsc: str | None = None,
        max_parts: int = DEFAULT_MAX_PARTS,
        parts_per_day: int | None = None,
        min_signal: int = DEFAULT_MIN_SIGNAL,
        status_report_timeout_s: float = DEFAULT_REPORT_TIMEOUT_S,
        send_timeout_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        if max_parts < 2:
            # A key announcement (142 bytes) and the largest packets need two parts; with
            # one, a new sender's reports could never go.
            raise ValueError("max_parts must be at least 2: one SMS cannot carry every packet")
        if not 0 <= min_signal <= 31:
            raise ValueError("min_signal is 0-31 (AT+CSQ)")
        self.name = name
        self.port = port
        self.to = to
        self.max_parts = max_parts
        self.max_message_bytes: int | None = max_message_bytes(max_parts)
        self.packer = container.sms_packer(max_parts)
        self.budget_per_day = parts_per_day
        self.min_signal = min_signal
        self.status_report_timeout_s = status_report_timeout_s
        self.send_timeout_s = send_timeout_s
        self.clock = clock
        self.modem = GsmModem.on_port(port, baudrate=baudrate, smsc=smsc)
        self.last_spent = 0  # parts the last send paid for (the scheduler records them)
        self.parts_sent = 0
        self.messages_sent = 0
        # Concatenation reference: a random start, so that a restarted gateway does not
        # reuse the reference of parts the coordinator may still hold from before.
        self._reference = (rng or random.SystemRandom()).randrange(256)
        self._hold_until = 0.0

    def cost(self, packets: Sequence[StoredPacket]) -> int:
        """SMS parts one message holding ``packets`` costs."""
        return container.sms_parts(container.size([len(p.raw) for p in packets]))

    def packer_within(self, parts: int) -> container.Packer | None:
        """A packer for a message of at most ``parts`` SMS (what the budget has left)."""
        if parts < 1:
            return None
        return container.sms_packer(min(self.max_parts, parts))

    def probe(self) -> bool:
        if self.clock() < self._hold_until:
            return False
        try:
            self._check_network()
        except (ModemError, UplinkError) as exc:
            log.debug("sms %s: probe failed: %s", self.name, exc)
            if isinstance(exc, ModemError):
                self.modem.close()
            return False
        return True

    def _check_network(self) -> None:
        rssi = self.modem.signal()
        if rssi == 99 or rssi < self.min_signal:
            shown = "unknown" if rssi == 99 else str(rssi)
            raise CostlyUplinkError(
                f"signal {shown} (AT+CSQ), below min_signal {self.min_signal}: not trying "
                "(move the modem or its antenna)"
            )
        reg = self.modem.registration()
        if not reg.registered:
            raise CostlyUplinkError(f"not registered on a GSM network: {reg.describe()}")

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
        assert self.max_message_bytes is not None
        if len(data) > self.max_message_bytes:
            raise UplinkError(
                f"{len(data)} bytes do not fit {self.max_parts} SMS "
                f"({self.max_message_bytes} bytes)",
                transient=False,
            )
        parts = split_container(data, self._reference)
        if len(parts) > 1:
            self._reference = (self._reference + 1) & 0xFF
        try:
            self._check_network()
            # Reports of earlier messages that came late: not for this one (see below).
            self._late(self.modem.status_reports())
            refs: list[int] = []
            for part in parts:
                refs.append(
                    self.modem.send_sms(
                        self.to, part, total=len(parts), timeout=self.send_timeout_s
                    )
                )
                self.last_spent += 1
                self.parts_sent += 1
            self.messages_sent += 1
            self._await_reports(refs, len(data))
        except SmsRefused as exc:
            if exc.hold_s:
                self._hold_until = self.clock() + exc.hold_s
            raise CostlyUplinkError(
                f"{exc.message}{self._paid_note()}", transient=exc.transient, hold_s=exc.hold_s
            ) from None
        except NotDelivered as exc:
            raise UplinkError(exc.message, transient=exc.transient) from None
        except ModemGone as exc:
            self.modem.close()
            raise UplinkError(f"modem unreachable: {exc.message}{self._paid_note()}") from None
        except ModemError as exc:
            # A modem that timed out may be mid-command: start clean next time.
            self.modem.close()
            raise UplinkError(
                f"modem: {exc.message}{self._paid_note()}", transient=exc.transient
            ) from None
        log.info(
            "sms %s: %d packets in %d bytes, %d SMS, all delivered",
            self.name, len(packets), len(data), len(parts),
        )  # fmt: skip
        return Delivery(acknowledged={p.copy_id for p in packets})

    def _paid_note(self) -> str:
        if self.last_spent:
            return f" ({self.last_spent} part(s) already sent and paid; all go again)"
        return ""

    def _await_reports(self, refs: list[int], size: int) -> None:
        """Return once every part is reported delivered; raise if one failed or none came.

        Real time (not ``clock``): this waits on the serial port, for the network.
        """
        waiting = set(refs)
        deadline = time.monotonic() + self.status_report_timeout_s
        while waiting:
            for report in self.modem.status_reports():
                if report.reference not in waiting:
                    self._late([report])
                    continue
                if not report.final:
                    log.info(
                        "sms %s: MR %d: %s", self.name, report.reference,
                        describe_status(report.status),
                    )  # fmt: skip
                    continue
                if not report.delivered:
                    raise NotDelivered(
                        f"the SMSC reports part MR {report.reference} not delivered: "
                        f"{describe_status(report.status)} (TP-ST 0x{report.status:02x})",
                        transient=report.status not in ST_PERMANENT,
                    )
                waiting.discard(report.reference)
            left = deadline - time.monotonic()
            if not waiting:
                break
            if left <= 0:
                raise NotDelivered(
                    f"no delivery report for {len(waiting)} of {len(refs)} SMS "
                    f"({size} bytes) within {self.status_report_timeout_s:g} s; "
                    "sending again (the coordinator drops what it already has)"
                )
            self.modem.channel.poll_unsolicited(min(0.05, left))

    def _late(self, reports: Sequence[StatusReport]) -> None:
        # That message was given up on (and sent again, or about to be): the report
        # changes nothing now, but the operator may want to see how late reports come.
        for report in reports:
            log.info(
                "sms %s: late status report for MR %d: %s", self.name, report.reference,
                describe_status(report.status),
            )  # fmt: skip

    def close(self) -> None:
        self.modem.close()

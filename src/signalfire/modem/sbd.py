"""Iridium SBD over AT commands (RockBLOCK 9602/9603 and other 960x transceivers).

The commands and codes follow the Iridium "ISU AT Command Reference" (Iridium
Satellite LLC; 9601/9602/9603 SBD transceivers), sections +SBDWB, +SBDIX, +SBDRB, +SBDD
and +CSQ:

- ``AT+SBDWB=<len>`` (1-340): the modem answers ``READY``; the DTE writes <len> bytes
  and a 2-byte checksum (the low 16 bits of the sum of the message bytes, high byte
  first); the modem answers 0 (written), 1 (timeout: not enough bytes within 60 s),
  2 (checksum mismatch) or 3 (size not 1-340), then ``OK``.
- ``AT+SBDIX``: one SBD session; ``+SBDIX: <MO status>, <MOMSN>, <MT status>, <MTMSN>,
  <MT length>, <MT queued>``. MO status 0-4 is success (:data:`MO_STATUS`); MT status 0
  no message, 1 received, 2 mailbox check failed.
- ``AT+SBDRB``: the MT buffer as <2-byte length> <message> <2-byte checksum>.
- ``AT+SBDD0``: clear the MO buffer (0 cleared, 1 error).
- ``AT+CSQ``: ``+CSQ:<0-5>``, signal bars; a session needs at least 1, and 2 or more
  to be likely to succeed (RockBLOCK's guidance).
- ``AT&K0``: no RTS/CTS flow control (a RockBLOCK's serial lines carry only TX/RX).
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass

from .at import AtChannel, ModemError

log = logging.getLogger(__name__)

MO_MAX = 340
MT_MAX = 270
SESSION_TIMEOUT_S = 90.0  # a session takes 10-60 s; the modem gives up by itself before this
WRITE_TIMEOUT_S = 10.0

# The +SBDIX MO status table (ISU AT Command Reference, +SBDIX). 0-4: the MO message, if
# any, went; anything else: it did not, and it is still in the MO buffer.
MO_STATUS: dict[int, str] = {
    0: "MO message transferred successfully",
    1: "MO message transferred, but the MT message in the queue was too big to transfer",
    2: "MO message transferred, but the requested location update was not accepted",
    3: "reserved, but indicates MO session success",
    4: "reserved, but indicates MO session success",
    10: "gateway reported that the call did not complete in the allowed time",
    11: "MO message queue at the gateway is full",
    12: "MO message has too many segments",
    13: "gateway reported that the session did not complete",
    14: "invalid segment size",
    15: "access is denied (is the modem's line rental active?)",
    16: "modem has been locked and may not make SBD calls (see +CULK)",
    17: "gateway not responding (local session timeout)",
    18: "connection lost (RF drop)",
    19: "link failure (a protocol error caused termination of the call)",
    32: "no network service, unable to initiate call",
    33: "antenna fault, unable to initiate call",
    34: "radio is disabled, unable to initiate call (see *Rn)",
    35: "modem is busy, unable to initiate call",
    36: "try later, must wait 3 minutes since last registration",
    37: "SBD service is temporarily disabled",
    38: "try later, traffic management period (see +SBDLOE)",
    64: "band violation (attempt to transmit outside permitted frequency band)",
    65: "PLL lock failure; hardware error during attempted transmit",
}
# Codes that need a wait longer than the scheduler's first back-off steps, in seconds.
MO_HOLD_S: dict[int, float] = {
    11: 60.0,  # the gateway's queue is full: give it a minute
    36: 180.0,  # "must wait 3 minutes since last registration"
    37: 600.0,  # service disabled for a while
    38: 300.0,  # traffic management: +SBDLOE would say how long; assume 5 minutes
}
# Codes that retrying cannot fix without the operator (hardware, subscription, settings).
MO_PERMANENT = frozenset({12, 14, 15, 16, 33, 34, 64, 65})
MIN_SIGNAL_FOR_SESSION = 1

_SBDIX_RE = re.compile(r"^\+SBDIX:\s*(\d+),\s*(\d+),\s*(\d+),\s*(\d+),\s*(\d+),\s*(\d+)$")
_CSQ_RE = re.compile(r"^\+CSQF?:\s*(\d)$")


def mo_ok(status: int) -> bool:
    return 0 <= status <= 4


def describe_mo(status: int) -> str:
    if status in MO_STATUS:
        return MO_STATUS[status]
    return "reserved, indicates MO session failure"


def checksum(data: bytes) -> bytes:
    """SBD checksum: the least significant 2 bytes of the sum of the bytes, high byte first."""
    return (sum(data) & 0xFFFF).to_bytes(2, "big")


@dataclass(frozen=True)
class SbdixResult:
    mo_status: int
    momsn: int
    mt_status: int
    mtmsn: int
    mt_length: int
    mt_queued: int

    @property
    def mo_ok(self) -> bool:
        return mo_ok(self.mo_status)


def parse_sbdix(line: str) -> SbdixResult:
    m = _SBDIX_RE.match(line.strip())
    if m is None:
        raise ModemError(f"not a +SBDIX answer: {line!r}")
    values = [int(v) for v in m.groups()]
    return SbdixResult(*values)


class SbdSessionFailed(ModemError):
    """+SBDIX reported an MO failure; ``hold_s`` says how long to wait before the next try."""

    def __init__(self, result: SbdixResult) -> None:
        code = result.mo_status
        super().__init__(
            f"SBD session failed: MO status {code}: {describe_mo(code)}",
            transient=code not in MO_PERMANENT,
        )
        self.result = result
        self.code = code
        self.hold_s = MO_HOLD_S.get(code, 0.0)


class SbdModem:
    """An Iridium SBD transceiver on an AT channel."""

    def __init__(self, channel: AtChannel) -> None:
        self.channel = channel
        self._ready = False

    def open(self) -> None:
        """Open the port and set the modem up (echo off, no flow control)."""
        if self._ready and self.channel.is_open:
            return
        self.channel.open()
        self._ready = False
        # A modem left in SBD data mode by a crash mid-write answers its timeout first;
        # one bare AT lets that settle.
        try:
            self.channel.command("AT", timeout=2.0)
        except ModemError:
            self.channel.command("AT", timeout=2.0)
        self.channel.command("ATE0")
        self.channel.command("AT&K0")
        self._ready = True

    def close(self) -> None:
        self._ready = False
        self.channel.close()

    def imei(self) -> str:
        self.open()
        lines = self.channel.command("AT+CGSN")
        return lines[0] if lines else ""

    def signal(self) -> int:
        """Signal bars 0-5 (AT+CSQ)."""
        self.open()
        for line in self.channel.command("AT+CSQ", timeout=15.0):
            m = _CSQ_RE.match(line)
            if m:
                return int(m.group(1))
        raise ModemError("modem did not report its signal (+CSQ)")

    def write_mo(self, data: bytes) -> None:
        """Put ``data`` in the MO buffer (AT+SBDWB)."""
        if not 1 <= len(data) <= MO_MAX:
            raise ModemError(
                f"an SBD message is 1-{MO_MAX} bytes, not {len(data)}", transient=False
            )
        self.open()
        ch = self.channel
        ch.send_line(f"AT+SBDWB={len(data)}")
        deadline = time.monotonic() + WRITE_TIMEOUT_S
        ch.expect("READY", deadline)
        ch.write(data + checksum(data))
        lines = ch.final(f"AT+SBDWB={len(data)}", time.monotonic() + 65.0)
        status = lines[-1] if lines else ""
        if status != "0":
            meaning = {
                "1": "timeout: the modem did not get all the bytes",
                "2": "checksum mismatch: bytes were damaged on the serial line",
                "3": "message size not accepted",
            }.get(status, f"unexpected answer {status!r}")
            raise ModemError(f"AT+SBDWB failed: {meaning}")

    def session(self, timeout: float = SESSION_TIMEOUT_S) -> SbdixResult:
        """One SBD session (AT+SBDIX): sends the MO buffer, fetches an MT message if any."""
        self.open()
        lines = self.channel.command("AT+SBDIX", timeout=timeout)
        for line in lines:
            if line.startswith("+SBDIX"):
                return parse_sbdix(line)
        raise ModemError(f"no +SBDIX line in the answer {lines!r}")

    def read_mt(self) -> bytes:
        """The MT buffer (AT+SBDRB), its checksum checked."""
        self.open()
        ch = self.channel
        ch.send_line("AT+SBDRB")
        deadline = time.monotonic() + WRITE_TIMEOUT_S
        ch.skip_line_ends(deadline)
        length = int.from_bytes(ch.read_exact(2, deadline), "big")
        if length > MT_MAX:
            raise ModemError(f"MT message claims {length} bytes; at most {MT_MAX}")
        message = ch.read_exact(length, deadline)
        got = ch.read_exact(2, deadline)
        ch.final("AT+SBDRB", deadline)
        if got != checksum(message):
            raise ModemError("MT message checksum mismatch: damaged on the serial line")
        return message

    def clear_mo(self) -> None:
        self.open()
        lines = self.channel.command("AT+SBDD0")
        if lines and lines[-1] != "0":
            raise ModemError("AT+SBDD0: the modem could not clear its MO buffer")

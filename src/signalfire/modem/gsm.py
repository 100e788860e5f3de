"""A GSM modem sending 8-bit SMS in PDU mode, with delivery reports (3GPP TS 27.005/27.007).

The conversation, on the AT channel of :mod:`.at`:

- set up: ``AT``, ``ATE0`` (no echo), ``AT+CMEE=1`` (numeric ``+CME ERROR`` codes),
  ``AT+CPIN?`` (the SIM must say ``READY``; a SIM that wants its PIN is an error for the
  operator: we keep no PIN on the gateway's disk), ``AT+CMGF=0`` (PDU mode),
  ``AT+CNMI=2,0,0,1,0`` (status reports straight to us as ``+CDS``; modems that refuse
  that get ``AT+CNMI=2,0,0,2,0``, which stores them and says ``+CDSI: <mem>,<index>``,
  read with ``AT+CPMS``/``AT+CMGR`` and deleted with ``AT+CMGD``), and ``AT+CSCA`` when
  an SMSC number is configured (otherwise the SIM's own);
- before sending: ``AT+CSQ`` (``+CSQ: <rssi 0-31, 99 unknown>,<ber>``) and ``AT+CREG?``
  (``+CREG: <n>,<stat>``: 1 registered at home, 5 roaming, which is the normal case for
  a gateway near a border; 0, 2, 3, 4 not registered);
- sending one SMS: ``AT+CMGS=<TPDU length>``, the prompt ``> ``, the PDU in hex and
  Ctrl-Z, then ``+CMGS: <mr>`` and ``OK``; <mr> is the message reference the status
  report will carry. ``+CMS ERROR: <n>`` says why not (:data:`CMS_ERRORS`).

A container (docs/protocol.md section 16) longer than 140 octets goes as concatenated
parts of 134 octets with the user data header ``05 00 03 <ref> <total> <seq>``
(:func:`split_container`); the coordinator's SMS webhook joins them again.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass

from . import container
from .at import AtChannel, ModemError
from .pdu import (
    MAX_UD,
    Concat,
    PduError,
    StatusReport,
    Submit,
    decode_status_report,
    encode_submit,
)

log = logging.getLogger(__name__)

CONCAT_SLICE = container.SMS_OCTETS - container.SMS_CONCAT_UDH  # 134
MAX_PARTS = 255  # the concatenation element counts parts in one octet
SEND_TIMEOUT_S = 60.0  # AT+CMGS: the network answers within seconds, 60 s at the worst
CTRL_Z = b"\x1a"  # ends the PDU after the "> " prompt
ESC = b"\x1b"  # cancels it
UNSOLICITED = ("+CDS:", "+CDSI:", "+CMTI:", "+CMT:", "RING")

# +CMS ERROR codes (TS 27.005 3.2.5; 1-127 are the network's RP/CP causes of TS 24.011).
CMS_ERRORS: dict[int, str] = {
    1: "unassigned (unallocated) number",
    8: "operator determined barring",
    10: "call barred",
    21: "short message transfer rejected",
    27: "destination out of service",
    28: "unidentified subscriber",
    29: "facility rejected",
    30: "unknown subscriber",
    38: "network out of order",
    41: "temporary failure",
    42: "congestion",
    47: "resources unavailable, unspecified",
    50: "requested facility not subscribed",
    69: "requested facility not implemented",
    81: "invalid short message transfer reference value",
    95: "invalid message, unspecified",
    96: "invalid mandatory information",
    111: "protocol error, unspecified",
    127: "interworking, unspecified",
    300: "ME failure",
    301: "SMS service of ME reserved",
    302: "operation not allowed",
    303: "operation not supported",
    304: "invalid PDU mode parameter",
    305: "invalid text mode parameter",
    310: "SIM not inserted",
    311: "SIM PIN required",
    312: "PH-SIM PIN required",
    313: "SIM failure",
    314: "SIM busy",
    315: "SIM wrong",
    316: "SIM PUK required",
    320: "memory failure",
    321: "invalid memory index",
    322: "memory full",
    330: "SMSC address unknown",
    331: "no network service",
    332: "network timeout",
    340: "no +CNMA acknowledgement expected",
    500: "unknown error",
}
# Worth trying again as they are: the network or the modem is busy or briefly away.
# 500 "unknown error" is what many modems say for a network hiccup, so it is here too.
CMS_TRANSIENT = frozenset({27, 38, 41, 42, 47, 111, 127, 300, 314, 320, 322, 331, 332, 500})
# Causes that ask for a longer pause than the scheduler's first back-off steps (seconds):
# hammering a congested cell with retries is what keeps it congested.
CMS_HOLD_S: dict[int, float] = {38: 60.0, 41: 30.0, 42: 60.0, 47: 30.0}

# +CME ERROR codes about the SIM (TS 27.007 9.2.1).
CME_SIM: dict[int, str] = {
    10: "SIM not inserted",
    11: "SIM PIN required",
    12: "SIM PUK required",
    13: "SIM failure",
    14: "SIM busy",
    15: "SIM wrong",
    16: "incorrect password",
    17: "SIM PIN2 required",
    18: "SIM PUK2 required",
}

# +CREG <stat> (TS 27.007 7.2).
CREG_STATES: dict[int, str] = {
    0: "not registered, not searching",
    1: "registered, home network",
    2: "not registered, searching",
    3: "registration denied",
    4: "unknown",
    5: "registered, roaming",
}

# TP-ST of a status report (TS 23.040 9.2.3.15) that mean "this number will not take it":
# retrying does not help until someone fixes the number or the recipient's side.
ST_PERMANENT = frozenset({0x41, 0x42, 0x43, 0x45})

_CMS_RE = re.compile(r"\+CMS ERROR:\s*(\d+)")
_CME_RE = re.compile(r"\+CME ERROR:\s*(\d+)")
_CSQ_RE = re.compile(r"^\+CSQ:\s*(\d+)\s*,\s*(\d+)$")
_CREG_RE = re.compile(r"^\+CREG:\s*(\d+)\s*,\s*(\d+)")
_CMGS_RE = re.compile(r"^\+CMGS:\s*(\d+)")
_CPIN_RE = re.compile(r"^\+CPIN:\s*(.+)$")
_CDS_RE = re.compile(r"^\+CDS:\s*(\d+)$")
_CDSI_RE = re.compile(r'^\+CDSI:\s*"?([A-Z]{2})"?\s*,\s*(\d+)$')
_CMGR_RE = re.compile(r"^\+CMGR:\s*(\d+)\s*,[^,]*,\s*(\d+)$")
_E164_RE = re.compile(r"^\+[1-9][0-9]{6,14}$")


def is_e164(number: str) -> bool:
    """``+`` and 7-15 digits, no leading zero: what the SMS network routes anywhere."""
    return bool(_E164_RE.match(number))


def describe_cms(code: int) -> str:
    return CMS_ERRORS.get(code, "manufacturer-specific error")


def describe_status(status: int) -> str:
    """A status report's TP-ST in words (TS 23.040 9.2.3.15)."""
    if status == 0x00:
        return "received by the recipient"
    if status <= 0x1F:
        return "delivered (forwarded or replaced by the service centre)"
    words = {
        0x20: "congestion", 0x21: "recipient busy", 0x22: "no response from recipient",
        0x23: "service rejected", 0x24: "quality of service not available",
        0x25: "error in recipient", 0x40: "remote procedure error",
        0x41: "incompatible destination", 0x42: "connection rejected by recipient",
        0x43: "not obtainable", 0x44: "quality of service not available",
        0x45: "no interworking available", 0x46: "validity period expired",
        0x47: "deleted by the sender", 0x48: "deleted by service centre administration",
        0x49: "message does not exist", 0x60: "congestion", 0x61: "recipient busy",
        0x62: "no response from recipient", 0x63: "service rejected",
        0x64: "quality of service not available", 0x65: "error in recipient",
    }  # fmt: skip
    base = words.get(status, "reserved")
    if 0x20 <= status <= 0x3F:
        return f"temporary error, still trying: {base}"
    if 0x60 <= status <= 0x7F:
        return f"temporary error, service centre gave up: {base}"
    return f"permanent error: {base}"


class SmsRefused(ModemError):
    """``+CMS ERROR`` from AT+CMGS; ``hold_s``: how long the link wants to be left alone."""

    def __init__(self, code: int, part: int, total: int) -> None:
        where = f"part {part} of {total}" if total > 1 else "the SMS"
        super().__init__(
            f"sending {where} failed: +CMS ERROR {code}: {describe_cms(code)}",
            transient=code in CMS_TRANSIENT,
        )
        self.code = code
        self.hold_s = CMS_HOLD_S.get(code, 0.0)


@dataclass(frozen=True)
class Part:
    """One SMS of a message: 8-bit data and its concatenation element (None: alone)."""

    data: bytes
    concat: Concat | None


def split_container(data: bytes, reference: int) -> list[Part]:
    """docs/protocol.md section 16: one SMS up to 140 octets, else consecutive 134s.

    ``reference`` (0-255) must differ between messages in flight to the same number:
    the receiver groups parts by sender, reference and total.
    """
    if not data:
        raise ValueError("nothing to send")
    if len(data) <= MAX_UD:
        return [Part(data, None)]
    slices = [data[i : i + CONCAT_SLICE] for i in range(0, len(data), CONCAT_SLICE)]
    if len(slices) > MAX_PARTS:
        raise ValueError(f"{len(data)} bytes need {len(slices)} parts; at most {MAX_PARTS}")
    total = len(slices)
    return [Part(s, Concat(reference & 0xFF, total, n)) for n, s in enumerate(slices, start=1)]


@dataclass(frozen=True)
class Registration:
    stat: int

    @property
    def registered(self) -> bool:
        return self.stat in (1, 5)

    @property
    def roaming(self) -> bool:
        return self.stat == 5

    def describe(self) -> str:
        return CREG_STATES.get(self.stat, f"state {self.stat}")


def _cms_code(exc: ModemError) -> int | None:
    m = _CMS_RE.search(exc.message)
    return int(m.group(1)) if m else None


def _cme_code(exc: ModemError) -> int | None:
    m = _CME_RE.search(exc.message)
    return int(m.group(1)) if m else None


class GsmModem:
    """A GSM modem on an AT channel: set-up, signal, registration, SMS-SUBMIT, reports."""

    def __init__(self, channel: AtChannel, *, smsc: str | None = None) -> None:
        self.channel = channel
        self.smsc = smsc
        self.report_mode = ""  # "direct" (+CDS) or "stored" (+CDSI), once set up
        self._ready = False
        self._storage = ""  # the read storage last chosen with AT+CPMS

    @classmethod
    def on_port(cls, port: str, *, baudrate: int = 115200, smsc: str | None = None) -> GsmModem:
        """A modem on ``port``, its channel set to keep delivery reports that come unasked."""
        return cls(AtChannel(port, baudrate=baudrate, unsolicited_prefixes=UNSOLICITED), smsc=smsc)

    # -- set-up ------------------------------------------------------------------

    def open(self) -> None:
        if self._ready and self.channel.is_open:
            return
        self.channel.open()
        self._ready = False
        ch = self.channel
        # A gateway that died between "> " and Ctrl-Z leaves the modem waiting for a PDU:
        # ESC cancels that (and is ignored otherwise), then one bare AT settles the rest.
        ch.write(ESC)
        try:
            ch.command("AT", timeout=2.0)
        except ModemError:
            ch.command("AT", timeout=2.0)
        ch.command("ATE0")
        ch.command("AT+CMEE=1")
        self._check_sim()
        ch.command("AT+CMGF=0")
        try:
            ch.command("AT+CNMI=2,0,0,1,0")
            self.report_mode = "direct"
        except ModemError:
            # Some modems only store status reports (and announce them with +CDSI).
            ch.command("AT+CNMI=2,0,0,2,0")
            self.report_mode = "stored"
        if self.smsc:
            toa = 145 if self.smsc.startswith("+") else 129
            try:
                ch.command(f'AT+CSCA="{self.smsc}",{toa}')
            except ModemError as exc:
                raise ModemError(
                    f"the modem refused SMSC {self.smsc}: {exc.message}", transient=False
                ) from None
        self._storage = ""
        self._ready = True

    def _check_sim(self) -> None:
        try:
            lines = self.channel.command("AT+CPIN?")
        except ModemError as exc:
            code = _cme_code(exc)
            if code in CME_SIM:
                raise ModemError(
                    f"SIM: {CME_SIM[code]} (+CME ERROR {code}); check the SIM card",
                    transient=code == 14,
                ) from None
            raise
        state = ""
        for line in lines:
            m = _CPIN_RE.match(line)
            if m:
                state = m.group(1).strip().strip('"')
        if state == "READY":
            return
        if state == "SIM PIN":
            raise ModemError(
                "the SIM wants its PIN (+CPIN: SIM PIN): switch the PIN request off in a "
                "phone (Settings > SIM lock) and put the SIM back in the modem",
                transient=False,
            )
        raise ModemError(
            f"the SIM is not ready (+CPIN: {state or 'no answer'}); check the SIM card",
            transient=False,
        )

    def close(self) -> None:
        self._ready = False
        self.channel.close()

    # -- state -------------------------------------------------------------------

    def signal(self) -> int:
        """Received signal strength, 0-31 (99: unknown), from AT+CSQ."""
        self.open()
        for line in self.channel.command("AT+CSQ"):
            m = _CSQ_RE.match(line)
            if m:
                return int(m.group(1))
        raise ModemError("modem did not report its signal (+CSQ)")

    def registration(self) -> Registration:
        self.open()
        for line in self.channel.command("AT+CREG?"):
            m = _CREG_RE.match(line)
            if m:
                return Registration(int(m.group(2)))
        raise ModemError("modem did not report its registration (+CREG)")

    # -- sending -------------------------------------------------------------------

    def send_sms(
        self, destination: str, part: Part, *, total: int = 1, timeout: float = SEND_TIMEOUT_S
    ) -> int:
        """Submit one SMS with a status report requested; returns its message reference."""
        try:
            pdu, length = encode_submit(
                Submit(destination, part.data, status_report=True, concat=part.concat)
            )
        except PduError as exc:
            raise ModemError(f"cannot encode the SMS: {exc}", transient=False) from None
        seq = part.concat.seq if part.concat else 1
        self.open()
        ch = self.channel
        cmd = f"AT+CMGS={length}"
        deadline = time.monotonic() + timeout
        ch.send_line(cmd)
        try:
            ch.expect_prompt(b"> ", deadline)
        except ModemError as exc:
            code = _cms_code(exc)
            if code is not None:
                raise SmsRefused(code, seq, total) from None
            ch.write(ESC)  # no prompt: make sure the modem is not left waiting for a PDU
            raise
        ch.write(pdu.hex().upper().encode("ascii") + CTRL_Z)
        try:
            lines = ch.final(cmd, deadline)
        except ModemError as exc:
            code = _cms_code(exc)
            if code is not None:
                raise SmsRefused(code, seq, total) from None
            raise
        for line in lines:
            m = _CMGS_RE.match(line)
            if m:
                return int(m.group(1))
        raise ModemError(f"no +CMGS line in the answer {lines!r}")

    # -- status reports --------------------------------------------------------------

    def status_reports(self, timeout: float = 0.0) -> list[StatusReport]:
        """Status reports that arrived (reading for up to ``timeout`` seconds)."""
        self.open()
        if timeout > 0:
            self.channel.poll_unsolicited(timeout)
        out: list[StatusReport] = []
        pending = self.channel.unsolicited
        keep: list[tuple[str, str]] = []
        while pending:
            line, follow = pending.popleft()
            report: StatusReport | None = None
            if line.startswith("+CDS:"):
                report = self._decode_report(follow, _CDS_RE.match(line))
            elif line.startswith("+CDSI:"):
                m = _CDSI_RE.match(line)
                if m is None:
                    log.warning("gsm: cannot read %r", line)
                    continue
                report = self._read_stored(m.group(1), int(m.group(2)))
            else:
                keep.append((line, follow))  # not ours to handle (an incoming SMS)
                continue
            if report is not None:
                out.append(report)
        pending.extend(keep)
        return out

    def _decode_report(self, hex_pdu: str, header: re.Match[str] | None) -> StatusReport | None:
        try:
            pdu = bytes.fromhex(hex_pdu)
            report = decode_status_report(pdu)
        except (ValueError, PduError) as exc:
            # A damaged report is as good as a lost one: the message is sent again.
            log.warning("gsm: unreadable status report %r: %s", hex_pdu[:80], exc)
            return None
        if header is not None and int(header.group(1)) != len(pdu) - 1 - pdu[0]:
            log.debug("gsm: +CDS length %s differs from the PDU's", header.group(1))
        return report

    def _read_stored(self, storage: str, index: int) -> StatusReport | None:
        ch = self.channel
        if storage != self._storage:
            ch.command(f'AT+CPMS="{storage}"')
            self._storage = storage
        lines = ch.command(f"AT+CMGR={index}")
        report = None
        for n, line in enumerate(lines):
            m = _CMGR_RE.match(line)
            if m and n + 1 < len(lines):
                report = self._decode_report(lines[n + 1], None)
        try:
            ch.command(f"AT+CMGD={index}")  # the storage is small; a full one stops reports
        except ModemError as exc:
            log.warning("gsm: could not delete status report %d: %s", index, exc.message)
        return report

"""SMS PDUs for 8-bit data, per 3GPP TS 23.040 (SMS-SUBMIT, SMS-DELIVER, SMS-STATUS-REPORT).

Written here rather than taken from PyPI: ``smspdudecoder`` decodes only (no
SMS-SUBMIT encoder), and ``python-gsmmodem-new`` bundles its PDU code with a modem
driver and threads of its own; we need both directions, 8-bit data with a user data
header, and errors that say what is wrong. The subset is small: 8-bit user data (DCS
0x04) only, which is all a signalfire container is. Pure: no I/O.

PDUs here include the SMSC address field in front of the TPDU, as AT+CMGS, +CMT and
+CDS carry them in PDU mode (AT+CMGF=0); ``00`` means "the SMSC stored in the SIM".

Section numbers below are those of TS 23.040 (9.2.2 PDU types, 9.2.3 fields, 9.1.2.5
addresses).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

MAX_UD = 140  # octets of user data (with its header) in one SMS
IEI_CONCAT_8BIT = 0x00  # 9.2.3.24.1: concatenated short messages, 8-bit reference
DCS_8BIT = 0x04  # 4.x general data coding, no class, 8-bit data
TOA_INTERNATIONAL = 0x91
TOA_UNKNOWN = 0x81
_MTI_DELIVER, _MTI_SUBMIT, _MTI_STATUS = 0, 1, 2


class PduError(ValueError):
    """A PDU that cannot be decoded or encoded; the message says which field."""


@dataclass(frozen=True)
class Concat:
    reference: int  # 0-255, the same in every part of one message
    total: int  # 1-255
    seq: int  # 1..total


@dataclass(frozen=True)
class Submit:
    """SMS-SUBMIT (9.2.2.2): what the gateway's modem sends."""

    destination: str  # "+15551234567" or national digits
    data: bytes  # 8-bit user data, without the header
    reference: int = 0  # TP-MR; the modem usually sets its own
    status_report: bool = True  # TP-SRR
    concat: Concat | None = None
    validity_minutes: int | None = 24 * 60  # relative TP-VP; None: no validity period


@dataclass(frozen=True)
class Deliver:
    """SMS-DELIVER (9.2.2.1): what a receiving phone or modem gets."""

    originator: str
    data: bytes
    timestamp: dt.datetime
    concat: Concat | None = None


@dataclass(frozen=True)
class StatusReport:
    """SMS-STATUS-REPORT (9.2.2.3): what became of a message sent with TP-SRR."""

    reference: int  # TP-MR of the SMS-SUBMIT it reports on
    recipient: str
    service_centre_time: dt.datetime
    discharge_time: dt.datetime
    status: int  # TP-ST (9.2.3.15)

    @property
    def delivered(self) -> bool:
        """0x00-0x1F: short message transaction completed (0x00: received by the SME)."""
        return self.status <= 0x1F

    @property
    def final(self) -> bool:
        """False for 0x20-0x3F: temporary error, the SC is still trying."""
        return not 0x20 <= self.status <= 0x3F


# -- addresses (9.1.2.5) ---------------------------------------------------------


def _encode_address(number: str) -> bytes:
    toa = TOA_INTERNATIONAL if number.startswith("+") else TOA_UNKNOWN
    digits = number.lstrip("+")
    if not digits or not digits.isdigit() or len(digits) > 20:
        raise PduError(f"phone number {number!r} must be 1-20 digits, optionally after '+'")
    return bytes([len(digits), toa]) + _semi_octets(digits)


def _semi_octets(digits: str) -> bytes:
    padded = digits + ("F" if len(digits) % 2 else "")
    return bytes(int(padded[i + 1] + padded[i], 16) for i in range(0, len(padded), 2))


def _decode_digits(raw: bytes, count: int) -> str:
    out = []
    for byte in raw:
        out.append(byte & 0x0F)
        out.append(byte >> 4)
    digits = out[:count]
    if any(d > 9 for d in digits):
        raise PduError("address holds a non-digit semi-octet")
    return "".join(str(d) for d in digits)


class _Reader:
    def __init__(self, data: bytes, what: str) -> None:
        self.data = data
        self.at = 0
        self.what = what

    def take(self, n: int, field: str) -> bytes:
        if self.at + n > len(self.data):
            raise PduError(f"{self.what} cut short in {field} (at octet {self.at})")
        out = self.data[self.at : self.at + n]
        self.at += n
        return out

    def byte(self, field: str) -> int:
        return self.take(1, field)[0]

    def address(self, field: str) -> str:
        count = self.byte(field)
        if count > 20:
            raise PduError(f"{field} claims {count} digits; at most 20")
        toa = self.byte(field)
        if toa & 0x70 == 0x50:  # alphanumeric sender (a company name): keep it as hex
            return "alnum:" + self.take((count + 1) // 2, field).hex()
        digits = _decode_digits(self.take((count + 1) // 2, field), count)
        return ("+" if toa & 0x70 == 0x10 else "") + digits

    def timestamp(self, field: str) -> dt.datetime:
        raw = self.take(7, field)
        sw = [((b & 0x0F) * 10 + (b >> 4)) for b in raw[:6]]
        tz = raw[6]
        quarters = (tz & 0x07) * 10 + (tz >> 4)
        sign = -1 if tz & 0x08 else 1
        try:
            zone = dt.timezone(dt.timedelta(minutes=sign * quarters * 15))
            return dt.datetime(2000 + sw[0], sw[1], sw[2], sw[3], sw[4], sw[5], tzinfo=zone)
        except ValueError as exc:
            raise PduError(f"{field} is not a valid time: {exc}") from None


def _encode_timestamp(when: dt.datetime) -> bytes:
    when = when.astimezone(dt.UTC)
    parts = [when.year % 100, when.month, when.day, when.hour, when.minute, when.second, 0]
    return bytes(((p % 10) << 4) | (p // 10) for p in parts)


def _smsc(r: _Reader) -> None:
    length = r.byte("SMSC address length")
    r.take(length, "SMSC address")


# -- user data header (9.2.3.24) -----------------------------------------------------


def encode_udh(concat: Concat | None) -> bytes:
    if concat is None:
        return b""
    if not (1 <= concat.total <= 255 and 1 <= concat.seq <= concat.total):
        raise PduError(f"concatenation part {concat.seq} of {concat.total} is not valid")
    ie = bytes([IEI_CONCAT_8BIT, 3, concat.reference & 0xFF, concat.total, concat.seq])
    return bytes([len(ie)]) + ie


def parse_udh(udh: bytes) -> Concat | None:
    """The concatenation element of a user data header (UDHL included), if there is one."""
    if not udh:
        return None
    length = udh[0]
    if length + 1 != len(udh):
        raise PduError(f"user data header says {length} octets but has {len(udh) - 1}")
    at, concat = 1, None
    while at < len(udh):
        if at + 2 > len(udh):
            raise PduError("user data header cut short in an element")
        iei, iel = udh[at], udh[at + 1]
        value = udh[at + 2 : at + 2 + iel]
        if len(value) != iel:
            raise PduError(f"user data header element 0x{iei:02x} cut short")
        if iei == IEI_CONCAT_8BIT:
            if iel != 3:
                raise PduError("concatenation element must be 3 octets")
            ref, total, seq = value
            if total == 0 or not 1 <= seq <= total:
                raise PduError(f"concatenation part {seq} of {total} is not valid")
            concat = Concat(ref, total, seq)
        at += 2 + iel
    return concat


def split_user_data(ud: bytes, has_udh: bool) -> tuple[bytes, Concat | None]:
    """User data without its header, and the header's concatenation element."""
    if not has_udh:
        return ud, None
    if not ud:
        raise PduError("TP-UDHI is set but the user data is empty")
    end = 1 + ud[0]
    if end > len(ud):
        raise PduError("user data header is longer than the user data")
    return ud[end:], parse_udh(ud[:end])


# -- SMS-SUBMIT ------------------------------------------------------------------


def encode_submit(msg: Submit) -> tuple[bytes, int]:
    """The PDU (with a ``00`` SMSC field) and its TPDU length, for AT+CMGS=<length>."""
    udh = encode_udh(msg.concat)
    ud = udh + msg.data
    if len(ud) > MAX_UD:
        raise PduError(f"user data is {len(ud)} octets; one SMS carries {MAX_UD}")
    first = _MTI_SUBMIT
    if msg.validity_minutes is not None:
        first |= 0x10  # TP-VPF relative
    if msg.status_report:
        first |= 0x20
    if udh:
        first |= 0x40
    tpdu = bytes([first, msg.reference & 0xFF]) + _encode_address(msg.destination)
    tpdu += bytes([0x00, DCS_8BIT])
    if msg.validity_minutes is not None:
        tpdu += bytes([_relative_vp(msg.validity_minutes)])
    tpdu += bytes([len(ud)]) + ud
    return b"\x00" + tpdu, len(tpdu)


def _relative_vp(minutes: int) -> int:
    # 9.2.3.12.1: 0-143 five-minute steps up to 12 h, then half hours to 24 h, then days.
    if minutes <= 720:
        return max(0, min(143, minutes // 5 - 1))
    if minutes <= 1440:
        return 143 + (minutes - 720) // 30
    return min(255, 166 + minutes // 1440)


def _vp_minutes(vp: int) -> int:
    if vp <= 143:
        return (vp + 1) * 5
    if vp <= 167:
        return 720 + (vp - 143) * 30
    if vp <= 196:
        return (vp - 166) * 1440
    return (vp - 192) * 7 * 1440


def decode_submit(pdu: bytes) -> Submit:
    r = _Reader(pdu, "SMS-SUBMIT")
    _smsc(r)
    first = r.byte("first octet")
    if first & 0x03 != _MTI_SUBMIT:
        raise PduError(f"not an SMS-SUBMIT (TP-MTI {first & 0x03})")
    reference = r.byte("TP-MR")
    destination = r.address("TP-DA")
    r.byte("TP-PID")
    dcs = r.byte("TP-DCS")
    vpf = (first >> 3) & 0x03
    validity = None
    if vpf == 2:
        validity = r.byte("TP-VP")
    elif vpf in (1, 3):
        r.take(7, "TP-VP")
    data, concat = _user_data(r, dcs, bool(first & 0x40))
    return Submit(
        destination,
        data,
        reference,
        status_report=bool(first & 0x20),
        concat=concat,
        validity_minutes=None if validity is None else _vp_minutes(validity),
    )


def _user_data(r: _Reader, dcs: int, udhi: bool) -> tuple[bytes, Concat | None]:
    if dcs & 0x0C != 0x04:
        raise PduError(f"TP-DCS 0x{dcs:02x} is not 8-bit data; signalfire sends only 8-bit")
    udl = r.byte("TP-UDL")
    if udl > MAX_UD:
        raise PduError(f"TP-UDL is {udl}; at most {MAX_UD} octets of 8-bit data")
    ud = r.take(udl, "TP-UD")
    if r.at != len(r.data):
        raise PduError(f"{len(r.data) - r.at} octets after the user data")
    return split_user_data(ud, udhi)


# -- SMS-DELIVER -------------------------------------------------------------------


def encode_deliver(msg: Deliver) -> bytes:
    udh = encode_udh(msg.concat)
    ud = udh + msg.data
    if len(ud) > MAX_UD:
        raise PduError(f"user data is {len(ud)} octets; one SMS carries {MAX_UD}")
    first = _MTI_DELIVER | 0x04 | (0x40 if udh else 0)  # TP-MMS: no more messages waiting
    tpdu = bytes([first]) + _encode_address(msg.originator) + bytes([0x00, DCS_8BIT])
    tpdu += _encode_timestamp(msg.timestamp) + bytes([len(ud)]) + ud
    return b"\x00" + tpdu


def decode_deliver(pdu: bytes) -> Deliver:
    r = _Reader(pdu, "SMS-DELIVER")
    _smsc(r)
    first = r.byte("first octet")
    if first & 0x03 != _MTI_DELIVER:
        raise PduError(f"not an SMS-DELIVER (TP-MTI {first & 0x03})")
    originator = r.address("TP-OA")
    r.byte("TP-PID")
    dcs = r.byte("TP-DCS")
    when = r.timestamp("TP-SCTS")
    data, concat = _user_data(r, dcs, bool(first & 0x40))
    return Deliver(originator, data, when, concat)


# -- SMS-STATUS-REPORT -------------------------------------------------------------


def encode_status_report(msg: StatusReport) -> bytes:
    tpdu = bytes([_MTI_STATUS, msg.reference & 0xFF]) + _encode_address(msg.recipient)
    tpdu += _encode_timestamp(msg.service_centre_time) + _encode_timestamp(msg.discharge_time)
    tpdu += bytes([msg.status & 0xFF])
    return b"\x00" + tpdu


def decode_status_report(pdu: bytes) -> StatusReport:
    r = _Reader(pdu, "SMS-STATUS-REPORT")
    _smsc(r)
    first = r.byte("first octet")
    if first & 0x03 != _MTI_STATUS:
        raise PduError(f"not an SMS-STATUS-REPORT (TP-MTI {first & 0x03})")
    reference = r.byte("TP-MR")
    recipient = r.address("TP-RA")
    scts = r.timestamp("TP-SCTS")
    discharge = r.timestamp("TP-DT")
    status = r.byte("TP-ST")
    # TP-PI and what it announces (PID, DCS, UD) may follow; we do not need them.
    return StatusReport(reference, recipient, scts, discharge, status)


def tpdu_length(pdu: bytes) -> int:
    """The <length> AT+CMGS and +CDS give: the PDU without its SMSC field."""
    if not pdu:
        raise PduError("empty PDU")
    return len(pdu) - 1 - pdu[0]

"""The report body: the plaintext that is sealed inside every report.

Layout (all integers big-endian)::

    status/flags  1   status << 4 | has_needs << 1 | has_location
    time          4   creation time, Unix seconds
    people        1   0-255
    needs         1   only if has_needs; bit set per Need, never 0
    location      7   only if has_location; see location.py
    extensions    *   type(1) length(1) value, types strictly ascending

Extension types below 0x80 are critical (a decoder that does not know one
must reject the body); 0x80 and above may be skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import location as _location
from .errors import BadField, EncodeError, Truncated
from .location import Location
from .vocab import ALL_NEEDS, NO_NEEDS, Need, Status

EXT_TEXT = 0x01
EXT_ATTESTATION = 0x02
FIRST_IGNORABLE_EXT = 0x80

_FLAG_LOCATION = 0x01
_FLAG_NEEDS = 0x02
_FLAGS_RESERVED = 0x0C

FIXED_SIZE = 6
ATTESTATION_SIZE = 16
POSITION_AGE_MAX = 0xFFFF  # saturates: "this old or older"
U32_MAX = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class Attestation:
    """What a gateway vouches for when it wraps a stock-radio message into a report."""

    node_num: int  # Meshtastic node number of the radio that sent the text
    packet_id: int  # Meshtastic packet id of that text, for cross-gateway dedupe
    rx_time: int  # when the gateway received it, Unix seconds
    pki_authenticated: bool = False  # Meshtastic PKI authenticated the DM
    direct_message: bool = False  # sent to the gateway node, not on the channel
    hops: int = 0xFF  # hops the packet travelled (hop_start - hop_limit); 255 unknown
    position_age: int | None = None  # seconds between the radio's position and rx_time

    def encode(self) -> bytes:
        _check_range("attestation node number", self.node_num, 0, U32_MAX)
        _check_range("attestation packet id", self.packet_id, 0, U32_MAX)
        _check_range("attestation receive time", self.rx_time, 0, U32_MAX)
        _check_range("attestation hops", self.hops, 0, 0xFF)
        flags = int(self.pki_authenticated) | int(self.direct_message) << 1
        age = 0
        if self.position_age is not None:
            if self.position_age < 0:
                raise EncodeError("attestation position age cannot be negative")
            flags |= 0x04
            age = min(self.position_age, POSITION_AGE_MAX)
        return (
            self.node_num.to_bytes(4, "big")
            + self.packet_id.to_bytes(4, "big")
            + bytes([flags, self.hops])
            + self.rx_time.to_bytes(4, "big")
            + age.to_bytes(2, "big")
        )

    @classmethod
    def decode(cls, data: bytes) -> Attestation:
        if len(data) != ATTESTATION_SIZE:
            raise BadField(f"attestation must be {ATTESTATION_SIZE} bytes, got {len(data)}")
        flags = data[8]
        if flags & ~0x07:
            raise BadField(f"attestation flags 0x{flags:02x} set reserved bits")
        age = int.from_bytes(data[14:16], "big")
        if not flags & 0x04 and age:
            raise BadField("attestation position age set without its flag")
        return cls(
            node_num=int.from_bytes(data[0:4], "big"),
            packet_id=int.from_bytes(data[4:8], "big"),
            rx_time=int.from_bytes(data[10:14], "big"),
            pki_authenticated=bool(flags & 0x01),
            direct_message=bool(flags & 0x02),
            hops=data[9],
            position_age=age if flags & 0x04 else None,
        )


@dataclass(frozen=True, slots=True)
class Report:
    """The meaning of a report, independent of keys and bytes."""

    status: Status
    time: int
    people: int = 0
    needs: Need = NO_NEEDS
    location: Location | None = None
    text: str | None = None
    attestation: Attestation | None = None
    # Ignorable extensions (type >= 0x80) from newer senders, kept verbatim.
    extensions: tuple[tuple[int, bytes], ...] = field(default=())


def _check_range(what: str, value: int, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise EncodeError(f"{what} must be an integer {low}-{high}, got {value!r}")


def _check_text(text: str) -> bytes:
    for ch in text:
        if ch == "\x00" or (ord(ch) < 0x20 and ch not in "\n\t") or ch == "\x7f":
            raise EncodeError(f"text contains control character U+{ord(ch):04X}")
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EncodeError(f"text is not encodable as UTF-8: {exc.reason}") from None


def encode_body(report: Report) -> bytes:
    status = Status(report.status)
    _check_range("time", report.time, 0, U32_MAX)
    _check_range("people", report.people, 0, 255)
    needs = int(report.needs)
    if needs & ~int(ALL_NEEDS):
        raise EncodeError(f"needs 0x{needs:02x} include undefined bits")
    flags = 0
    tail = b""
    if needs:
        flags |= _FLAG_NEEDS
        tail += bytes([needs])
    if report.location is not None:
        flags |= _FLAG_LOCATION
        tail += report.location.encode()
    out = bytearray([status << 4 | flags])
    out += report.time.to_bytes(4, "big")
    out.append(report.people)
    out += tail
    exts: list[tuple[int, bytes]] = []
    if report.text:
        exts.append((EXT_TEXT, _check_text(report.text)))
    if report.attestation is not None:
        exts.append((EXT_ATTESTATION, report.attestation.encode()))
    for ext_type, value in report.extensions:
        if not FIRST_IGNORABLE_EXT <= ext_type <= 0xFF:
            raise EncodeError(f"extension type 0x{ext_type:02x} is not an ignorable type")
        exts.append((ext_type, value))
    last = -1
    for ext_type, value in exts:
        if ext_type <= last:
            raise EncodeError("extension types must be unique and ascending")
        last = ext_type
        if len(value) > 255:
            raise EncodeError(
                f"extension 0x{ext_type:02x} is {len(value)} bytes; at most 255 fit its length byte"
            )
        out += bytes([ext_type, len(value)]) + value
    return bytes(out)


def decode_body(data: bytes) -> Report:
    if len(data) < FIXED_SIZE:
        raise Truncated(f"report body is {len(data)} bytes; at least {FIXED_SIZE} are needed")
    head = data[0]
    flags = head & 0x0F
    if flags & _FLAGS_RESERVED:
        raise BadField(f"report body flags 0x{flags:x} set reserved bits")
    status = Status.from_code(head >> 4)
    time = int.from_bytes(data[1:5], "big")
    people = data[5]
    pos = FIXED_SIZE
    needs = Need(0)
    if flags & _FLAG_NEEDS:
        if pos >= len(data):
            raise Truncated("report body ends before its needs byte")
        raw = data[pos]
        if raw == 0 or raw & ~int(ALL_NEEDS):
            raise BadField(f"needs byte 0x{raw:02x} is empty or sets undefined bits")
        needs = Need(raw)
        pos += 1
    loc: Location | None = None
    if flags & _FLAG_LOCATION:
        end = pos + _location.ENCODED_SIZE
        if end > len(data):
            raise Truncated("report body ends inside its location")
        loc = Location.decode(data[pos:end])
        pos = end
    text: str | None = None
    attestation: Attestation | None = None
    ignorable: list[tuple[int, bytes]] = []
    last = -1
    while pos < len(data):
        if pos + 2 > len(data):
            raise Truncated("report body ends inside an extension header")
        ext_type, length = data[pos], data[pos + 1]
        value = data[pos + 2 : pos + 2 + length]
        if len(value) != length:
            raise Truncated(
                f"extension 0x{ext_type:02x} claims {length} bytes, {len(value)} remain"
            )
        pos += 2 + length
        if ext_type <= last:
            raise BadField("extension types must be unique and in ascending order")
        last = ext_type
        if ext_type == EXT_TEXT:
            if length == 0:
                raise BadField("text extension is empty (omit it instead)")
            try:
                text = value.decode("utf-8")
            except UnicodeDecodeError:
                raise BadField("text is not valid UTF-8") from None
            try:
                _check_text(text)
            except EncodeError as exc:
                raise BadField(exc.message) from None
        elif ext_type == EXT_ATTESTATION:
            attestation = Attestation.decode(value)
        elif ext_type >= FIRST_IGNORABLE_EXT:
            ignorable.append((ext_type, value))
        else:
            raise BadField(f"unsupported critical extension type 0x{ext_type:02x}")
    return Report(
        status=status,
        time=time,
        people=people,
        needs=needs,
        location=loc,
        text=text,
        attestation=attestation,
        extensions=tuple(ignorable),
    )

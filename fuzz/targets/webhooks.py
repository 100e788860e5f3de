"""The webhooks' reading of what a stranger posts: form, RockBLOCK and Kannel fields, containers.

Pure functions of coordinator/webhooks.py, as the routes call them: ``parse_form``
(query string and urlencoded body, binary-safe), ``read_rockblock`` and
``read_kannel`` (every field check, the allow-lists) and then ``container.decode``
of the message, whole or reassembled from its parts in sequence order. The route
around them (body size, deadline, database, ingest) is the `webhooks_app` target.
Byte 0 picks the input; the rest is cut into fields (common.fields):

  0: RockBLOCK, raw form body;                      1: RockBLOCK, fields (imei:
     empty for the allowed one; momsn, transmit_time, data, sent as hex);
  2: Kannel, raw query string;                      3: Kannel, fields (udh,
     coding, time, data);
  4: a concatenated message in up to 4 parts, read and joined;
  5: the helpers (_rockblock_time, _kannel_time, normalize_number).

Documented outcomes: a delivery, ``Refused`` with 400, 403 or 413, and
``ContainerError`` (nothing readable: the route answers 400).
"""

from __future__ import annotations

from urllib.parse import quote_from_bytes

from signalfire.coordinator import webhooks
from signalfire.coordinator.webhooks import Refused, SmsDelivery, parse_form
from signalfire.modem import container
from signalfire.modem.pdu import Concat, encode_udh

from ..common import Finding, fields, framed, sample_packets
from ..coord import IMEI, PHONE

ALLOWED = (Refused, container.ContainerError)


def _form(values: dict[str, bytes]) -> bytes:
    return "&".join(f"{k}={quote_from_bytes(v)}" for k, v in values.items()).encode()


def _unpack(payload: bytes) -> None:
    try:
        unpacked = container.decode(payload)
    except container.ContainerError:
        return
    if unpacked.error is None and not unpacked.packets:
        raise Finding("a container with no packets and no error")


def _read(read: object, query: str, body: bytes) -> object | None:
    try:
        fields_ = parse_form(query, body)
        if read is webhooks.read_rockblock:
            return webhooks.read_rockblock(fields_, {IMEI})
        return webhooks.read_kannel(fields_, {PHONE})
    except Refused as exc:
        if exc.status not in (400, 403, 413):
            raise Finding(f"refused with {exc.status}: {exc.message}") from exc
        return None


def _sbd(query: str, body: bytes) -> None:
    delivery = _read(webhooks.read_rockblock, query, body)
    if isinstance(delivery, webhooks.SbdDelivery):
        if len(delivery.payload) > container.SBD_MO_MAX:
            raise Finding(f"accepted {len(delivery.payload)} bytes of SBD data")
        _unpack(delivery.payload)


def _sms(query: str, body: bytes) -> SmsDelivery | None:
    delivery = _read(webhooks.read_kannel, query, body)
    if not isinstance(delivery, SmsDelivery):
        return None
    if delivery.concat is None or delivery.concat.total == 1:
        _unpack(delivery.data)
    return delivery


def test_one_input(data: bytes) -> None:
    if not data:
        return
    mode, rest = data[0] % 6, data[1:]
    if mode == 0:
        _sbd("", rest)
    elif mode == 1:
        imei, momsn, when, payload = fields(rest, 4)
        form = {
            "imei": imei or IMEI.encode(),
            "momsn": momsn,
            "data": payload.hex().encode(),
            "transmit_time": when,
        }
        _sbd("", _form(form))
    elif mode == 2:
        # Percent-encoded as an HTTP client sends it; the structure characters stay.
        _sms(quote_from_bytes(rest, safe="=&%+;"), b"")
    elif mode == 3:
        udh, coding, when, payload = fields(rest, 4)
        form = {"from": PHONE.encode(), "udh": udh, "data": payload, "coding": coding, "time": when}
        _sms("", _form(form))
    elif mode == 4:
        ref, total = (rest[:2] + b"\0\0")[:2]
        parts = fields(rest[2:], 4)
        count = total % 4 + 1
        got: dict[int, bytes] = {}
        for seq in range(count, 0, -1):  # last part first: reassembly goes by number
            udh = encode_udh(Concat(ref, count, seq))
            body = _form({"from": PHONE.encode(), "udh": udh, "data": parts[seq - 1] or b"\0"})
            delivery = _sms("", body)
            if delivery is not None and delivery.concat is not None:
                got[delivery.concat.seq] = delivery.data
        if len(got) == count:
            _unpack(b"".join(got[seq] for seq in sorted(got)))
    else:
        text = rest.decode("latin-1")
        webhooks._rockblock_time(text)
        webhooks._kannel_time(text)
        webhooks.normalize_number(text)


def seeds() -> list[bytes]:
    p = sample_packets()
    whole = container.encode([p[0], p[2]])
    sbd = _form({"imei": IMEI.encode(), "momsn": b"7", "data": whole.hex().encode(),
                 "transmit_time": b"26-11-28 04:05:06"})  # fmt: skip
    small = container.encode([p[3]])
    return [
        b"\0" + sbd,
        b"\1" + framed(b"", b"12", b"26-11-28 04:05:06", whole),
        b"\2" + _form({"from": PHONE.encode(), "data": small, "coding": b"2"}),
        b"\3" + framed(b"", b"2", b"2026-11-28 04:05", small),
        b"\3" + framed(encode_udh(Concat(9, 2, 1)), b"2", b"", small[:60]),
        b"\4" + bytes([5, 1]) + framed(whole[:130], whole[130:260]),
        b"\5" + b"26-11-28 04:05:06",
        b"\5" + b"0037491 234567",
    ]

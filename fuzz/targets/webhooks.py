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
  5: the helpers (_rockblock_time, _kannel_time, normalize_number);
  6: RockBLOCK, raw JSON body;                      7: RockBLOCK with a JWT key
     configured: the rest as the claims JSON of a JWT signed by that key (past the
     signature), or as a raw token (even byte 1).

Documented outcomes: a delivery, ``Refused`` with 400, 403 or 413, and
``ContainerError`` (nothing readable: the route answers 400).
"""

from __future__ import annotations

import base64
import json
from urllib.parse import quote_from_bytes

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from signalfire.coordinator import webhooks
from signalfire.coordinator.webhooks import Refused, SmsDelivery, parse_form
from signalfire.modem import container
from signalfire.modem.pdu import Concat, encode_udh

from ..common import Finding, fields, framed, sample_packets
from ..coord import IMEI, PHONE

ALLOWED = (Refused, container.ContainerError)
# A key of this process: corpus entries of mode 7 hold claims, signed when they run.
_JWT_SIGNER = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_JWT_KEY = _JWT_SIGNER.public_key()


def _form(values: dict[str, bytes]) -> bytes:
    return "&".join(f"{k}={quote_from_bytes(v)}" for k, v in values.items()).encode()


def _unpack(payload: bytes) -> None:
    try:
        unpacked = container.decode(payload)
    except container.ContainerError:
        return
    if unpacked.error is None and not unpacked.packets:
        raise Finding("a container with no packets and no error")


def _read(read: object, query: str, body: bytes, content_type: str = "") -> object | None:
    try:
        fields_ = parse_form(query, body, content_type)
        if read is webhooks.read_rockblock:
            return webhooks.read_rockblock(
                fields_, {IMEI}, _JWT_KEY if content_type == "jwt" else None
            )
        return webhooks.read_kannel(fields_, {PHONE})
    except Refused as exc:
        if exc.status not in (400, 403, 413):
            raise Finding(f"refused with {exc.status}: {exc.message}") from exc
        return None


def _sbd(query: str, body: bytes, content_type: str = "") -> None:
    delivery = _read(webhooks.read_rockblock, query, body, content_type)
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


def rockblock_form(rest: bytes) -> bytes:
    """Mode 1 of both webhook targets: the fields of a RockBLOCK delivery, from the input."""
    imei, momsn, when, payload = fields(rest, 4)
    form = {
        "imei": imei or IMEI.encode(),
        "momsn": momsn,
        "data": payload.hex().encode(),
        "transmit_time": when,
    }
    return _form(form)


def kannel_query(rest: bytes) -> str:
    """Mode 2: percent-encoded as an HTTP client sends it; the structure characters stay."""
    return quote_from_bytes(rest, safe="=&%+;")


def kannel_form(rest: bytes) -> bytes:
    """Mode 3: the fields of one SMS from the forwarder."""
    udh, coding, when, payload = fields(rest, 4)
    form = {"from": PHONE.encode(), "udh": udh, "data": payload, "coding": coding, "time": when}
    return _form(form)


def test_one_input(data: bytes) -> None:
    if not data:
        return
    mode, rest = data[0] % 8, data[1:]
    if mode == 0:
        _sbd("", rest)
    elif mode == 1:
        _sbd("", rockblock_form(rest))
    elif mode == 2:
        _sms(kannel_query(rest), b"")
    elif mode == 3:
        _sms("", kannel_form(rest))
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
    elif mode == 5:
        text = rest.decode("latin-1")
        webhooks._rockblock_time(text)
        webhooks._kannel_time(text)
        webhooks.normalize_number(text)
    elif mode == 6:
        _sbd("", rest, "application/json")
    else:
        token = _signed(rest[1:]) if rest[:1] and rest[0] % 2 else rest[1:]
        _sbd("", _form({"JWT": token}), "jwt")


def _b64(raw: bytes) -> bytes:
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


def _signed(claims: bytes) -> bytes:
    """A JWT over ``claims`` as they are, signed by the configured key, so that the
    fuzzer reaches what comes after the signature check."""
    signed = _b64(b'{"alg":"RS256"}') + b"." + _b64(claims)
    return signed + b"." + _b64(_JWT_SIGNER.sign(signed, padding.PKCS1v15(), hashes.SHA256()))


def seeds() -> list[bytes]:
    p = sample_packets()
    whole = container.encode([p[0], p[2]])
    sbd = _form({"imei": IMEI.encode(), "momsn": b"7", "data": whole.hex().encode(),
                 "transmit_time": b"26-11-28 04:05:06"})  # fmt: skip
    small = container.encode([p[3]])
    claims = {"imei": IMEI, "momsn": 8, "data": whole.hex(), "transmit_time": "26-11-28 04:05:06"}
    return [
        b"\0" + sbd,
        b"\1" + framed(b"", b"12", b"26-11-28 04:05:06", whole),
        b"\2" + _form({"from": PHONE.encode(), "data": small, "coding": b"2"}),
        b"\3" + framed(b"", b"2", b"2026-11-28 04:05", small),
        b"\3" + framed(encode_udh(Concat(9, 2, 1)), b"2", b"", small[:60]),
        b"\4" + bytes([5, 1]) + framed(whole[:130], whole[130:260]),
        b"\5" + b"26-11-28 04:05:06",
        b"\5" + b"0037491 234567",
        b"\6" + json.dumps(claims).encode(),
        b"\7\1" + json.dumps(claims).encode(),
        b"\7\0" + b"eyJhbGciOiJSUzI1NiJ9.e30.e30",
    ]

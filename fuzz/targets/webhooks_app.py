"""The RockBLOCK and SMS-forwarder webhooks end to end, through the coordinator app in-process.

What `webhooks` fuzzes as pure functions, here with the route around it: the body
read with its size limit, the answer deadline, the gateway lookup, SMS reassembly in
the database and the ingest (about 100 times slower: a complement, not the campaign).
A seeded store, the gateway enrolled, its IMEI and phone number on the allow-lists,
the right secrets. Byte 0 picks the request; the rest is cut into fields (common.fields):

  0: RockBLOCK, raw form body;                      1: RockBLOCK, fields (imei:
     empty for the allowed one; momsn, transmit_time, data, sent as hex);
  2: Kannel, raw query string;                      3: Kannel, fields (udh,
     coding, time, data), a part of a concatenated message when the UDH says so;
  4: a concatenated message in up to 4 parts, all posted (reassembly);
  5: the pure helpers (_rockblock_time, _kannel_time, normalize_number, parse_udh).

Documented answers: 200, 400, 403, 413, and 503 "slow" (the answer deadline).
Anything else (a 500, an exception out of the app) is a finding.
"""

from __future__ import annotations

import contextlib

from signalfire.coordinator import webhooks
from signalfire.modem.pdu import Concat, PduError, encode_udh, parse_udh

from ..common import Finding, fields
from ..coord import PHONE, SBD_TOKEN, SMS_TOKEN, AppClient
from . import webhooks as pure
from .webhooks import _form

ALLOWED = (PduError,)  # from parse_udh, called directly in mode 5
_CLIENT: AppClient | None = None
SBD = f"/api/v1/sbd/rockblock/{SBD_TOKEN}"
SMS = f"/api/v1/sms/kannel/{SMS_TOKEN}"
_FORM = {"content-type": "application/x-www-form-urlencoded"}


def _client() -> AppClient:
    global _CLIENT
    if _CLIENT is None:
        _CLIENT = AppClient()
    _CLIENT.tick()
    return _CLIENT


def _check(status: int, body: bytes) -> None:
    if status in (200, 400, 403, 413):
        return
    if status == 503 and b'"slow"' in body:
        return
    raise Finding(f"webhook answered {status}: {body[:300]!r}")


def _post(path: str, content: bytes, query: str = "") -> None:
    url = path + ("?" + query if query else "")
    r = _client().request("POST", url, content=content, headers=_FORM)
    _check(r.status_code, r.content)


def _helpers(rest: bytes) -> None:
    text = rest.decode("latin-1")
    webhooks._rockblock_time(text)
    webhooks._kannel_time(text)
    webhooks.normalize_number(text)
    with contextlib.suppress(*ALLOWED):
        parse_udh(rest)


def test_one_input(data: bytes) -> None:
    if not data:
        return
    mode, rest = data[0] % 6, data[1:]
    if mode == 0:
        _post(SBD, rest)
    elif mode == 1:
        _post(SBD, pure.rockblock_form(rest))
    elif mode == 2:
        _post(SMS, b"", pure.kannel_query(rest))
    elif mode == 3:
        _post(SMS, pure.kannel_form(rest))
    elif mode == 4:
        ref, total = (rest[:2] + b"\0\0")[:2]
        parts = fields(rest[2:], 4)
        count = total % 4 + 1
        for seq in range(1, count + 1):
            udh = encode_udh(Concat(ref, count, seq))
            _post(SMS, _form({"from": PHONE.encode(), "udh": udh, "data": parts[seq - 1] or b"\0"}))
    else:
        _helpers(rest)


def seeds() -> list[bytes]:
    # Modes 0-5 mean the same requests in both targets.
    return [seed for seed in pure.seeds() if seed[0] < 6]

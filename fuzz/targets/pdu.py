"""SMS PDUs (3GPP TS 23.040) and user data headers: ``signalfire.modem.pdu``.

What the modem reports (+CMT, +CDS) and what an SMS forwarder hands on come from
the network and from anyone who can send an SMS. Byte 0 picks the decoder; the
rest is its input. Documented errors: ``PduError`` (a ValueError).
"""

from __future__ import annotations

import datetime as dt

from signalfire.modem import pdu

from ..common import Finding, sample_packets

ALLOWED = (pdu.PduError,)


def _udh(data: bytes) -> None:
    concat = pdu.parse_udh(data)
    if concat is not None and pdu.parse_udh(pdu.encode_udh(concat)) != concat:
        raise Finding("a parsed concatenation element does not survive re-encoding")


def test_one_input(data: bytes) -> None:
    if not data:
        return
    choice, rest = data[0] % 6, data[1:]
    try:
        if choice == 0:
            pdu.decode_deliver(rest)
        elif choice == 1:
            pdu.decode_submit(rest)
        elif choice == 2:
            pdu.decode_status_report(rest)
        elif choice == 3:
            _udh(rest)
        elif choice == 4:
            pdu.split_user_data(rest, True)
        else:
            pdu.tpdu_length(rest)
    except ALLOWED:
        pass


def seeds() -> list[bytes]:
    when = dt.datetime(2026, 11, 28, 4, 5, 6, tzinfo=dt.timezone(dt.timedelta(hours=4)))
    data = sample_packets()[2][:120]
    concat = pdu.Concat(7, 2, 1)
    deliver = pdu.encode_deliver(pdu.Deliver("+37491000001", data, when, concat))
    submit, _ = pdu.encode_submit(pdu.Submit("+37491000001", data, 3, True, concat))
    status = pdu.encode_status_report(pdu.StatusReport(3, "+37491000001", when, when, 0))
    udh = pdu.encode_udh(concat)
    return [
        b"\0" + deliver,
        b"\1" + submit,
        b"\1" + pdu.encode_submit(pdu.Submit("37491000001", data[:40], validity_minutes=None))[0],
        b"\2" + status,
        b"\3" + udh,
        b"\3" + bytes([8, 0x08, 4, 1, 2, 2, 1, 0x00, 0]),
        b"\4" + udh + data[:20],
        b"\5" + deliver,
    ]

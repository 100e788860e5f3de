"""SMS PDUs (3GPP TS 23.040): round trips and malformed input."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signalfire.modem import pdu

T = dt.datetime(2026, 11, 28, 4, 5, 6, tzinfo=dt.UTC)


def test_submit_known_bytes() -> None:
    raw, length = pdu.encode_submit(
        pdu.Submit("+37491234567", b"\xc1\x01", 7, concat=pdu.Concat(5, 2, 1))
    )
    # SMSC 00 | SUBMIT, VPF relative, SRR, UDHI | MR 07 | DA 11 digits, international
    # | PID 00 | DCS 04 (8-bit) | VP | UDL 8 | UDH 05 00 03 05 02 01 | c1 01
    assert raw.hex() == "0071070b917394214365f70004a7080500030502" + "01c101"
    assert length == len(raw) - 1 == pdu.tpdu_length(raw)


@given(
    st.binary(min_size=1, max_size=134),
    st.integers(0, 255),
    st.integers(1, 255),
    st.text("0123456789", min_size=3, max_size=15),
)
def test_submit_and_deliver_round_trip(data: bytes, ref: int, total: int, digits: str) -> None:
    concat = pdu.Concat(ref, total, min(total, 1 + ref % total))
    raw, _ = pdu.encode_submit(pdu.Submit("+" + digits, data, ref, concat=concat))
    back = pdu.decode_submit(raw)
    assert (back.destination, back.data, back.concat) == ("+" + digits, data, concat)
    d = pdu.decode_deliver(pdu.encode_deliver(pdu.Deliver(digits, data, T, concat)))
    assert (d.originator, d.data, d.concat, d.timestamp) == (digits, data, concat, T)


def test_status_report() -> None:
    raw = pdu.encode_status_report(pdu.StatusReport(9, "+37491234567", T, T, 0x00))
    report = pdu.decode_status_report(raw)
    assert report.reference == 9 and report.delivered and report.final
    temp = pdu.decode_status_report(pdu.encode_status_report(pdu.StatusReport(9, "1", T, T, 0x30)))
    assert not temp.delivered and not temp.final


@pytest.mark.parametrize(
    "hexpdu",
    [
        "",
        "00",
        "0071070b917394214365f70004a7080500030502",  # user data cut short
        "0071070b917394214365f70000a703616263",  # DCS 0: 7-bit text, not data
        "0071070b917394214365f70004a7ff" + "00" * 10,  # UDL beyond 140
        "0041070b917394214365f7000403020001",  # UDH length beyond the user data
        "0071070b917394214365f70004a7080500030500" + "01c101",  # part 1 of 0
        "0001070b917394214365f7000402c101ff",  # octets after the user data
    ],
)
def test_malformed_submit_is_a_clear_error(hexpdu: str) -> None:
    with pytest.raises(pdu.PduError) as err:
        pdu.decode_submit(bytes.fromhex(hexpdu))
    assert str(err.value)


def test_wrong_type_is_named() -> None:
    raw, _ = pdu.encode_submit(pdu.Submit("123", b"x"))
    with pytest.raises(pdu.PduError, match="not an SMS-DELIVER"):
        pdu.decode_deliver(raw)

"""The GSM client against the emulated modem on a pty: set-up, SMS-SUBMIT, reports, errors."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from signalfire.modem import container
from signalfire.modem.at import ModemError, ModemGone
from signalfire.modem.gsm import GsmModem, Part, SmsRefused, split_container
from signalfire.modem.gsm_emulator import GsmEmulator
from signalfire.modem.pdu import (
    DCS_8BIT,
    Concat,
    StatusReport,
    Submit,
    encode_status_report,
    encode_submit,
    tpdu_length,
)

TO = "+37491000009"
VECTORS = Path(__file__).resolve().parent.parent / "vectors"


def vector_packet(name: str) -> bytes:
    return bytes.fromhex(json.loads((VECTORS / name).read_text())["packet"])


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[GsmEmulator]:
    got: list[dict[str, bytes]] = []
    e = GsmEmulator(deliver=got.append, link_path=tmp_path / "ttyGSM")
    e.start()
    yield e
    e.stop()


@pytest.fixture
def modem(emu: GsmEmulator) -> Iterator[GsmModem]:
    m = GsmModem.on_port(emu.path)
    yield m
    m.close()


def reports(m: GsmModem, emu: GsmEmulator, count: int) -> list[StatusReport]:
    assert emu.wait_idle()
    got: list[StatusReport] = []
    deadline = time.monotonic() + 5
    while len(got) < count and time.monotonic() < deadline:
        got += m.status_reports(0.05)
    return got


def test_set_up_and_a_single_sms_with_its_delivery_report(
    emu: GsmEmulator, modem: GsmModem
) -> None:
    assert modem.signal() == 20
    reg = modem.registration()
    assert reg.registered and not reg.roaming
    data = container.encode([b"\x01" + bytes(100)])
    mr = modem.send_sms(TO, Part(data, None))
    assert mr == 0
    for cmd in ("ATE0", "AT+CMEE=1", "AT+CPIN?", "AT+CMGF=0", "AT+CNMI=2,0,0,1,0"):
        assert cmd in emu.commands
    (sent,) = emu.accepted
    assert sent.submit.destination == TO and sent.submit.data == data
    assert sent.submit.status_report and sent.submit.concat is None
    # SMSC "00" (the SIM's), first octet with TP-SRR, MR, DA (2 + 6 octets), PID, DCS.
    assert sent.pdu[0] == 0 and sent.pdu[1] & 0x20 and sent.pdu[12] == DCS_8BIT
    (report,) = reports(modem, emu, 1)
    assert report.reference == mr and report.delivered and report.final
    assert modem.report_mode == "direct"


def test_long_containers_are_split_as_protocol_section_16_says(
    emu: GsmEmulator, modem: GsmModem
) -> None:
    assert [len(p.data) for p in split_container(b"\xc1" + bytes(139), 9)] == [140]
    assert split_container(b"\xc1" + bytes(139), 9)[0].concat is None
    parts = split_container(b"\xc1" + bytes(140), 9)
    assert [len(p.data) for p in parts] == [134, 7]
    assert [p.concat for p in parts] == [Concat(9, 2, 1), Concat(9, 2, 2)]
    assert len(split_container(bytes(8 * 134), 1)) == 8
    assert len(split_container(bytes(8 * 134 + 1), 1)) == 9
    with pytest.raises(ValueError, match="at most 255"):
        split_container(bytes(256 * 134), 1)
    # The test vector of protocol.md section 16: 252 bytes, 2 SMS parts.
    data = container.encode(
        [vector_packet("10-announcement.json"), vector_packet("01-sos-location.json")]
    )
    assert hashlib.sha256(data).hexdigest().startswith("09a88b34")
    parts = split_container(data, 300)  # the reference is one octet: 300 & 0xFF
    assert len(parts) == container.sms_parts(len(data)) == 2
    mrs = [modem.send_sms(TO, p, total=len(parts)) for p in parts]
    assert mrs == [0, 1]
    assert [a.submit.concat for a in emu.accepted] == [Concat(44, 2, 1), Concat(44, 2, 2)]
    assert b"".join(a.submit.data for a in emu.accepted) == data
    assert {r.reference for r in reports(modem, emu, 2)} == {0, 1}
    # What the forwarder passed on: the UDH and the slices, joinable by the receiver.
    assert emu.wait_idle()
    assert [f[0]["udh"].hex() for f in emu.posts] == ["0500032c0201", "0500032c0202"]
    joined = b"".join(f[0]["data"] for f in emu.posts)
    assert hashlib.sha256(joined).digest() == hashlib.sha256(data).digest()


@pytest.mark.parametrize(
    ("code", "transient", "hold", "words"),
    [
        (42, True, 60.0, "congestion"),
        (38, True, 60.0, "network out of order"),
        (330, False, 0.0, "SMSC address unknown"),
        (500, True, 0.0, "unknown error"),
        (21, False, 0.0, "transfer rejected"),
        (531, False, 0.0, "manufacturer-specific"),
    ],
)
def test_cms_errors_are_transient_or_not(
    emu: GsmEmulator, modem: GsmModem, code: int, transient: bool, hold: float, words: str
) -> None:
    emu.fail_next(code)
    parts = split_container(bytes(200), 3)
    with pytest.raises(SmsRefused) as info:
        modem.send_sms(TO, parts[1], total=2)
    assert info.value.code == code and info.value.transient is transient
    assert info.value.hold_s == hold
    assert words in info.value.message and "part 2 of 2" in info.value.message
    # The modem is still usable afterwards.
    assert modem.send_sms(TO, parts[0], total=2) == 0


def test_pdus_with_a_wrong_length_or_bad_hex_are_refused_with_304(
    emu: GsmEmulator, modem: GsmModem
) -> None:
    modem.open()
    ch = modem.channel
    pdu, length = encode_submit(Submit(TO, b"\xc1\x01a"))
    for cmd, body in (
        (f"AT+CMGS={length + 1}", pdu.hex().encode()),  # length does not match
        (f"AT+CMGS={length}", b"zz" + pdu.hex().encode()[2:]),  # not hex
        (f"AT+CMGS={length}", (pdu[:-1] + b"ab").hex().encode()),  # UDL disagrees
    ):
        ch.send_line(cmd)
        ch.expect_prompt(b"> ", time.monotonic() + 2)
        ch.write(body + b"\x1a")
        with pytest.raises(ModemError, match=r"\+CMS ERROR: 304"):
            ch.final(cmd, time.monotonic() + 2)
    with pytest.raises(ModemError, match=r"\+CMS ERROR: 304"):
        ch.command("AT+CMGS=500")
    assert emu.accepted == []
    # ESC after the prompt cancels: nothing is sent.
    ch.send_line(f"AT+CMGS={length}")
    ch.expect_prompt(b"> ", time.monotonic() + 2)
    ch.write(pdu.hex().encode() + b"\x1b")
    ch.final(f"AT+CMGS={length}", time.monotonic() + 2)
    assert emu.accepted == []


def test_sim_that_wants_its_pin_or_is_missing(emu: GsmEmulator) -> None:
    emu.pin = "1234"
    m = GsmModem.on_port(emu.path)
    with pytest.raises(ModemError, match="wants its PIN") as info:
        m.signal()
    assert not info.value.transient
    m.close()
    emu.pin = None
    emu.sim_inserted = False
    with pytest.raises(ModemError, match="SIM not inserted") as info:
        m.signal()
    assert not info.value.transient
    m.close()
    emu.sim_inserted = True
    assert m.signal() == 20
    m.close()


def test_unregistered_and_roaming(emu: GsmEmulator, modem: GsmModem) -> None:
    emu.registration = 5
    reg = modem.registration()
    assert reg.registered and reg.roaming and "roaming" in reg.describe()
    assert modem.send_sms(TO, Part(b"\xc1\x01a", None)) == 0  # roaming sends normally
    for stat in (0, 2, 3):
        emu.registration = stat
        assert not modem.registration().registered
    with pytest.raises(SmsRefused) as info:
        modem.send_sms(TO, Part(b"\xc1\x01a", None))
    assert info.value.code == 331 and info.value.transient
    assert "no network service" in info.value.message
    emu.rssi = 3
    assert modem.signal() == 3


def test_modems_that_only_store_reports(emu: GsmEmulator, modem: GsmModem) -> None:
    emu.direct_reports = False
    mr = modem.send_sms(TO, Part(b"\xc1\x01a", None))
    assert modem.report_mode == "stored" and "AT+CNMI=2,0,0,2,0" in emu.commands
    (report,) = reports(modem, emu, 1)
    assert report.reference == mr and report.delivered
    assert 'AT+CPMS="SR"' in emu.commands and "AT+CMGD=1" in emu.commands
    assert emu.stored == {}  # read and deleted: the storage does not fill up


def test_failed_and_dropped_reports(emu: GsmEmulator, modem: GsmModem) -> None:
    emu.fail_reports(0x46)  # validity period expired
    emu.drop_reports(1)
    first = modem.send_sms(TO, Part(b"\xc1\x01a", None))
    second = modem.send_sms(TO, Part(b"\xc1\x01b", None))
    third = modem.send_sms(TO, Part(b"\xc1\x01c", None))
    got = {r.reference: r for r in reports(modem, emu, 2)}
    assert not got[first].delivered and got[first].final  # failed, and nothing delivered
    assert second not in got  # delivered, but the report was lost
    assert got[third].delivered
    assert [f["data"] for f, _ in emu.posts] == [b"\xc1\x01b", b"\xc1\x01c"]


def test_a_report_just_before_the_prompt_is_kept(emu: GsmEmulator, modem: GsmModem) -> None:
    modem.open()
    now = dt.datetime(2026, 11, 28, 4, 5, tzinfo=dt.UTC)
    report = StatusReport(77, TO, now, now, 0)
    pdu = encode_status_report(report)
    # As if the modem sent it just as AT+CMGS arrived (the emulator itself holds reports
    # while a command runs; a real modem may not).
    emu.write(f"\r\n+CDS: {tpdu_length(pdu)}\r\n{pdu.hex().upper()}\r\n".encode())
    modem.send_sms(TO, Part(b"\xc1\x01a", None))
    got = {r.reference for r in reports(modem, emu, 2)}
    assert got == {77, 0}


def test_unplugged_modem_is_reported(emu: GsmEmulator, modem: GsmModem) -> None:
    assert modem.signal() == 20
    emu.unplug()
    with pytest.raises(ModemGone):
        modem.signal()
    with pytest.raises(ModemGone):
        GsmModem.on_port(str(emu.path) + "-nothing").signal()

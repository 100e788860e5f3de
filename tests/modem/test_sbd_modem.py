"""The SBD client against the emulated 9603: the AT exchanges, codes, bad answers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from signalfire.modem.at import AtChannel, ModemError, ModemGone
from signalfire.modem.sbd import MO_STATUS, SbdModem, checksum, parse_sbdix
from signalfire.modem.sbd_emulator import SbdEmulator


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[SbdEmulator]:
    got: list[dict[str, str]] = []
    e = SbdEmulator(deliver=got.append, link_path=tmp_path / "tty", write_timeout_s=0.3)
    e.start()
    yield e
    e.stop()


def test_session_round_trip(emu: SbdEmulator) -> None:
    m = SbdModem(AtChannel(emu.path))
    assert m.imei() == "300434063480220"
    assert m.signal() == 5
    m.write_mo(b"\xc1\x02hi")
    result = m.session()
    assert result.mo_ok and result.momsn == 0
    assert emu.wait_delivered(1)
    assert emu.posts[0]["data"] == "c1026869" and emu.posts[0]["momsn"] == "0"
    assert "ATE0" in emu.commands and "AT&K0" in emu.commands
    m.close()


def test_codes_and_answers() -> None:
    assert checksum(b"\xff" * 300) == (300 * 255 & 0xFFFF).to_bytes(2, "big")
    r = parse_sbdix("+SBDIX: 36, 4, 2, 0, 0, 0")
    assert not r.mo_ok and "3 minutes" in MO_STATUS[36]
    with pytest.raises(ModemError):
        parse_sbdix("+SBDIX: 0, 1")


def test_bad_sizes_and_a_stalled_write(emu: SbdEmulator) -> None:
    m = SbdModem(AtChannel(emu.path))
    with pytest.raises(ModemError, match="1-340"):
        m.write_mo(b"x" * 341)
    ch = m.channel
    m.open()
    ch.send_line("AT+SBDWB=10")
    ch.expect("READY", time.monotonic() + 2)
    ch.write(b"abc")  # and then nothing: the modem gives up (status 1)
    assert ch.final("AT+SBDWB=10", time.monotonic() + 3) == ["1"]
    ch.send_line("AT+SBDWB=3")
    ch.expect("READY", time.monotonic() + 2)
    ch.write(b"abc\x00\x00")  # wrong checksum
    assert ch.final("AT+SBDWB=3", time.monotonic() + 3) == ["2"]
    with pytest.raises(ModemError):
        ch.command("AT+BOGUS")


def test_unplugged_modem_is_reported(emu: SbdEmulator) -> None:
    m = SbdModem(AtChannel(emu.path))
    m.signal()
    emu.unplug()
    with pytest.raises(ModemGone):
        m.signal()
    with pytest.raises(ModemGone):
        SbdModem(AtChannel(str(emu.path) + "-nothing")).signal()

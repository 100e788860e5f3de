"""LoRa time on air and Meshtastic frame sizes, checked against independent computations."""

from __future__ import annotations

import pytest
from meshtastic.protobuf import mesh_pb2, portnums_pb2

from signalfire import airtime
from signalfire.airtime import (
    PRESETS,
    Preset,
    max_app_payload,
    meshtastic_frame_len,
    packet_airtime,
    time_on_air,
)

LONG_FAST = PRESETS["LONG_FAST"]
MEDIUM_FAST = PRESETS["MEDIUM_FAST"]
LONG_SLOW = PRESETS["LONG_SLOW"]


# --- the preset table ---------------------------------------------------------------------


def test_preset_table_matches_meshtastic() -> None:
    # (bandwidth kHz, SF, CR denominator) from modemPresetToParams in firmware MeshRadio.h
    expected = {
        "SHORT_TURBO": (500, 7, 5),
        "SHORT_FAST": (250, 7, 5),
        "SHORT_SLOW": (250, 8, 5),
        "MEDIUM_FAST": (250, 9, 5),
        "MEDIUM_SLOW": (250, 10, 5),
        "LONG_TURBO": (500, 11, 8),
        "LONG_FAST": (250, 11, 5),
        "LONG_MODERATE": (125, 11, 8),
        "LONG_SLOW": (125, 12, 8),
    }
    got = {
        name: (p.bandwidth_hz // 1000, p.spreading_factor, p.coding_rate)
        for name, p in PRESETS.items()
    }
    assert got == expected
    assert all(p.preamble_symbols == 16 for p in PRESETS.values())
    assert all(p.name == name for name, p in PRESETS.items())


def test_low_data_rate_optimisation_only_above_16ms_symbols() -> None:
    # T_sym = 2^SF / BW: LONG_SLOW 4096/125k = 32.768 ms, LONG_MODERATE 2048/125k = 16.384 ms,
    # LONG_FAST 2048/250k = 8.192 ms
    assert LONG_SLOW.symbol_time == pytest.approx(0.032768)
    assert PRESETS["LONG_MODERATE"].symbol_time == pytest.approx(0.016384)
    assert LONG_FAST.symbol_time == pytest.approx(0.008192)
    on = {name for name, p in PRESETS.items() if p.low_data_rate_optimize}
    assert on == {"LONG_SLOW", "LONG_MODERATE"}


def test_preset_lookup_by_name() -> None:
    assert airtime.get_preset("long-fast") is LONG_FAST
    assert airtime.get_preset(" Medium_Fast ") is MEDIUM_FAST
    assert airtime.get_preset(LONG_SLOW) is LONG_SLOW
    with pytest.raises(ValueError, match="unknown modem preset"):
        airtime.get_preset("VERY_FAST")


@pytest.mark.parametrize(
    ("bw", "sf", "cr", "what"),
    [
        (0, 11, 5, "bandwidth"),
        (250_000, 6, 5, "spreading factor"),
        (250_000, 13, 5, "spreading factor"),
        (250_000, 11, 4, "coding rate"),
        (250_000, 11, 9, "coding rate"),
    ],
)
def test_preset_rejects_bad_parameters(bw: int, sf: int, cr: int, what: str) -> None:
    with pytest.raises(ValueError, match=what):
        Preset("X", bw, sf, cr)


# --- time on air: hand-computed cases -----------------------------------------------------


def test_long_fast_50_bytes_by_hand() -> None:
    # SF11, 250 kHz, CR 4/5, DE 0: T_sym = 8.192 ms
    # preamble: (16 + 4.25) * 8.192 = 165.888 ms
    # payload: 8*50 - 44 + 28 + 16 = 400 bits; ceil(400 / 44) = 10 blocks; 10 * 5 + 8 = 58 sym
    # 58 * 8.192 = 475.136 ms; total 641.024 ms
    assert airtime.payload_symbols(50, LONG_FAST) == 58
    assert time_on_air(50, LONG_FAST) == pytest.approx(0.641024, abs=1e-9)


def test_long_fast_full_frame_by_hand() -> None:
    # 8*255 - 44 + 44 = 2040; ceil(2040 / 44) = 47; 47 * 5 + 8 = 243 symbols
    # (20.25 + 243) * 8.192 ms = 2156.544 ms
    toa = time_on_air(255, LONG_FAST)
    assert toa == pytest.approx(2.156544, abs=1e-9)
    assert 2.1 <= toa <= 2.2


def test_long_fast_costs_about_7_5_ms_per_byte() -> None:
    # one 44-bit block (5.5 bytes) costs 5 symbols: 8 * 5 * 8.192 / 44 = 7.447 ms a byte
    slope = (time_on_air(250, LONG_FAST) - time_on_air(30, LONG_FAST)) / 220
    assert slope == pytest.approx(0.0075, abs=0.0002)


def test_medium_fast_100_bytes_by_hand() -> None:
    # SF9, 250 kHz: T_sym = 512 / 250k = 2.048 ms, DE 0
    # 8*100 - 36 + 44 = 808; ceil(808 / 36) = 23; 23 * 5 + 8 = 123; + 20.25 = 143.25 symbols
    # 143.25 * 2.048 = 293.376 ms
    assert time_on_air(100, MEDIUM_FAST) == pytest.approx(0.293376, abs=1e-9)


def test_long_slow_uses_low_data_rate_divisor() -> None:
    # SF12, 125 kHz, CR 4/8, DE 1: T_sym = 32.768 ms, divisor 4 * (12 - 2) = 40
    # 8*10 - 48 + 44 = 76; ceil(76 / 40) = 2; 2 * 8 + 8 = 24; + 20.25 = 44.25 symbols
    # 44.25 * 32.768 = 1449.984 ms.  Without DE the divisor would be 48: ceil(76/48) = 2 too,
    # so also check a length where it differs: 8*100 - 4 = 796; ceil(796/40) = 20 vs 17.
    assert airtime.payload_symbols(10, LONG_SLOW) == 24
    assert time_on_air(10, LONG_SLOW) == pytest.approx(1.449984, abs=1e-9)
    assert airtime.payload_symbols(100, LONG_SLOW) == 8 + 20 * 8
    # the same SF and CR at 500 kHz (T_sym 8.192 ms) has no DE: divisor 48
    assert airtime.payload_symbols(100, Preset("X", 500_000, 12, 8)) == 8 + 17 * 8


def test_empty_payload_clamps_at_zero() -> None:
    # SF12: 0 - 48 + 44 = -4 -> max(ceil(-0.1) * 8, 0) = 0 -> only the 8 fixed symbols
    assert airtime.payload_symbols(0, LONG_SLOW) == 8
    assert time_on_air(0, LONG_SLOW) == pytest.approx((16 + 4.25 + 8) * 0.032768)


def _radiolib_sx126x_us(pl: int, p: Preset) -> int:
    """RadioLib SX126x::calculateTimeOnAir (integer microseconds), rewritten from its source."""
    symbol_us = ((1000 * 10) << p.spreading_factor) // (p.bandwidth_hz // 1000 * 10)
    ldro = symbol_us >= 16_000  # RadioLib's automatic LDRO: symbolLength >= 16 ms
    divisor = 4 * (p.spreading_factor - 2) if ldro else 4 * p.spreading_factor
    bit_count = max(8 * pl + 16 - 4 * p.spreading_factor + 8 + 20, 0)
    pre_coded = (bit_count + divisor - 1) // divisor
    n_symbol_x4 = (p.preamble_symbols + 8) * 4 + 17 + pre_coded * p.coding_rate * 4
    return symbol_us * n_symbol_x4 // 4


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_matches_radiolib_integer_formula_for_every_length(name: str) -> None:
    preset = PRESETS[name]
    for pl in range(256):
        assert time_on_air(pl, preset) * 1e6 == pytest.approx(
            _radiolib_sx126x_us(pl, preset), abs=1.0
        ), pl


def test_monotonic_in_length() -> None:
    for preset in PRESETS.values():
        times = [time_on_air(n, preset) for n in range(256)]
        assert times == sorted(times)


@pytest.mark.parametrize("bad", [-1, 256, 1000])
def test_rejects_impossible_phy_lengths(bad: int) -> None:
    with pytest.raises(ValueError, match="0-255"):
        time_on_air(bad, LONG_FAST)


def test_rejects_non_integer_length() -> None:
    with pytest.raises(TypeError):
        time_on_air(10.0, LONG_FAST)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        time_on_air(True, LONG_FAST)


# --- Meshtastic framing -------------------------------------------------------------------


def _firmware_data(payload_len: int, portnum: int) -> int:
    """Size of the Data protobuf as the firmware fills it, measured with the real protobuf."""
    data = mesh_pb2.Data(portnum=portnum, payload=b"\xa5" * payload_len)
    data.bitfield = 1  # perhapsEncode: has_bitfield = true, ok_to_mqtt << 0
    return len(data.SerializeToString())


def test_frame_len_100_vs_200_byte_payload() -> None:
    # 100 B: header 16 + portnum (1 + 2) + payload (1 + 1 + 100) + bitfield 2 = 123
    # 200 B: the payload length varint grows to 2 bytes: 16 + 3 + (1 + 2 + 200) + 2 = 224
    assert meshtastic_frame_len(100) == 123
    assert meshtastic_frame_len(200) == 224
    assert meshtastic_frame_len(100, pki=True) == 135
    assert meshtastic_frame_len(200, pki=True) == 236


@pytest.mark.parametrize("portnum", [0, 1, 72, 256, 511])
@pytest.mark.parametrize("payload_len", [0, 1, 127, 128, 200, 233])
def test_frame_len_matches_real_protobuf(portnum: int, payload_len: int) -> None:
    expected = 16 + _firmware_data(payload_len, portnum)
    assert meshtastic_frame_len(payload_len, portnum) == expected
    assert meshtastic_frame_len(payload_len, portnum, pki=True) == expected + 12


def test_private_app_is_port_256() -> None:
    assert portnums_pb2.PortNum.Value("PRIVATE_APP") == airtime.PRIVATE_APP


def test_payload_ceilings_match_notes() -> None:
    # 255 - 16 = 239 for Data; 239 - 3 (portnum) - 3 (tag + 2-byte length) - 2 (bitfield) = 231
    assert max_app_payload() == 231
    assert max_app_payload(pki=True) == 219
    assert meshtastic_frame_len(231) == 255
    assert meshtastic_frame_len(219, pki=True) == 255
    # text messages (port 1, one varint byte) get one more byte, up to the 233-byte buffer
    assert max_app_payload(portnum=1) == 232


def test_payload_length_limits() -> None:
    assert meshtastic_frame_len(233) == 257  # encodable, but over the PHY limit...
    with pytest.raises(ValueError, match="0-255"):
        packet_airtime(233, LONG_FAST)  # ...so there is no airtime for it
    with pytest.raises(ValueError, match="0-233"):
        meshtastic_frame_len(234)
    with pytest.raises(ValueError, match="0-233"):
        meshtastic_frame_len(-1)
    with pytest.raises(ValueError, match="port number"):
        meshtastic_frame_len(10, portnum=-1)


def test_xeddsa_signing_adds_66_bytes_only_when_it_fits() -> None:
    # develop firmware: sign a broadcast iff len(Data) + 66 + 16 <= 255, i.e. Data <= 173
    assert meshtastic_frame_len(100, xeddsa=True) == 123 + 66
    # 165 B: Data = 3 + (1 + 2 + 165) + 2 = 173; + 66 + 16 = 255, just fits
    assert meshtastic_frame_len(165, xeddsa=True) == 255
    assert meshtastic_frame_len(166, xeddsa=True) == meshtastic_frame_len(166) == 190
    # never on a PKI direct message
    assert meshtastic_frame_len(100, pki=True, xeddsa=True) == 135


def test_packet_airtime_composes_frame_and_time_on_air() -> None:
    assert packet_airtime(100, LONG_FAST) == time_on_air(123, LONG_FAST)
    assert packet_airtime(100, "MEDIUM_FAST", pki=True) == time_on_air(135, MEDIUM_FAST)
    # PKI costs 12 bytes: about 12 * 7.45 ms on LONG_FAST, in whole 44-bit blocks
    extra = packet_airtime(100, LONG_FAST, pki=True) - packet_airtime(100, LONG_FAST)
    assert 0.07 <= extra <= 0.11

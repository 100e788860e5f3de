"""LoRa time on air for Meshtastic frames (pure: no I/O, no clock, no globals that change).

The formula
-----------
Semtech's time-on-air formula (SX1276 datasheet section 4.1.1.7, SX1262 datasheet
section 6.1.4, AN1200.13)::

    T_sym      = 2**SF / BW
    T_preamble = (n_preamble + 4.25) * T_sym
    n_payload  = 8 + max(ceil((8*PL - 4*SF + 28 + 16*CRC - 20*IH) / (4*(SF - 2*DE))) * (CR + 4), 0)
    T_packet   = T_preamble + n_payload * T_sym

with ``PL`` the PHY payload length (0-255 bytes), ``CR + 4`` the coding-rate
denominator (5-8), ``IH = 0`` (Meshtastic always sends an explicit header),
``CRC = 1`` (the firmware calls ``setCRC`` on every radio driver) and ``DE = 1``
(low-data-rate optimisation) when the symbol time exceeds 16 ms, which among the
presets below means LONG_MODERATE and LONG_SLOW (SF11 and SF12 at 125 kHz).

How the firmware gets the same number (meshtastic/firmware, develop at 7754068, and
tag v2.7.26.54e0d8d; jgromes/RadioLib at 187ef24):

- ``RadioInterface::getPacketTime(p)`` (src/mesh/RadioInterface.cpp) passes
  ``encrypted.size + sizeof(PacketHeader)`` -- the whole PHY payload, 16-byte
  header included -- to the driver's ``getPacketTime(pl)``, which for the
  SX126x/SX127x/LR11x0 drivers is ``computePacketTime`` in
  src/mesh/RadioLibInterface.h: ``lora.getTimeOnAir(pl) / 1000``.  RadioLib
  returns microseconds, so the firmware works in whole milliseconds (truncated);
  this module returns exact seconds.
- RadioLib ``SX126x::calculateTimeOnAir`` (src/modules/SX126x/SX126x.cpp) is the
  same formula in integer microseconds: ``(preamble + 8) * 4 + 17`` quarter-symbols
  plus ``ceil(bits / (4*(SF - 2*LDRO))) * CR`` symbols, where bits =
  ``8*len + 16*crc - 4*SF + 8 + 20*explicit_header`` (i.e. the ``+28`` above), clamped
  at 0.  SF5/SF6 use 6.25 and no ``+8``; no Meshtastic preset uses them.
- RadioLib turns LDRO on automatically when ``symbolLength >= 16.0`` ms
  (SX126x_commands.cpp ``setModulationParams``; SX1272/SX1278 likewise) and the
  firmware never forces it.  ``>=`` versus the datasheet's ``>`` only matters at
  exactly 16 ms, which no preset hits (the nearest are 8.192 and 16.384 ms).
- Preamble: ``RadioInterface::preambleLength = 16`` (RadioInterface.h); develop uses
  12 only for the 2.4 GHz "wide LoRa" region, which this module does not model.
- The firmware's portduino ``SimRadio::getPacketTime`` writes the formula as
  ``ceilf(x * cr)`` instead of ``ceilf(x) * cr``, so the simulator slightly
  under-counts; the radio drivers (RadioLib) do it right, and so does this module.

Presets (``modemPresetToParams`` in src/mesh/MeshRadio.h, identical in v2.7.26 and
develop for the nine below; develop adds MEDIUM_TURBO 500/9/5 and the LITE_*, NARROW_*,
TINY_* presets, not listed here): see :data:`PRESETS`.

The Meshtastic frame
--------------------
What goes on air for one application payload (checked against the sources):

- a 16-byte clear header, ``PacketHeader`` in src/mesh/RadioInterface.h:
  to 4, from 4, id 4, flags 1, channel hash 1, next_hop 1, relay_node 1
  (``MESHTASTIC_HEADER_LENGTH 16``, asserted against ``sizeof(PacketHeader)``);
- the encrypted protobuf ``Data`` (meshtastic/protobufs mesh.proto).  Channel
  encryption is AES-CTR and adds nothing.  ``perhapsEncode`` in src/mesh/Router.cpp
  encodes, for a packet this node originates:

  * ``portnum = 1`` (varint enum): tag 1 byte + varint of the port (PRIVATE_APP 256
    takes 2 bytes, TEXT_MESSAGE_APP 1 takes 1; port 0 is the proto3 default and is
    not encoded at all);
  * ``payload = 2`` (bytes): tag 1 byte + varint length (1 byte up to 127, 2 bytes
    from 128) + the payload (omitted when empty);
  * ``bitfield = 9`` (``optional uint32``): the firmware always sets
    ``has_bitfield = true`` and ORs in ``config_ok_to_mqtt << 0`` and
    ``want_response << 1``, so it is on air even when 0: tag 1 byte + 1-byte
    varint = 2 bytes.  (The Python library's ``want_response=False`` is the proto3
    default and costs nothing.)

- a PKI direct message (X25519 + AES-256-CCM, ``CryptoEngine::encryptCurve25519``)
  appends an 8-byte CCM tag and the 4-byte random extra nonce after the ciphertext:
  ``MESHTASTIC_PKC_OVERHEAD 12`` (RadioInterface.h), added in ``perhapsEncode``.

``perhapsEncode`` rejects a frame with ``TOO_LARGE`` when ``len(Data) + 16 (+ 12 for
PKI) > MAX_LORA_PAYLOAD_LEN (255)``.  ``DATA_PAYLOAD_LEN = 233`` (mesh.proto
``Constants``, nanopb ``Data.payload max_size:233`` in mesh.options) is only the
size of the payload buffer; the real ceiling for a private-port payload is 231 bytes
on a channel and 219 in a PKI DM (:func:`max_app_payload`).

XEdDSA (develop only, not in v2.7.26): since meshtastic/firmware PR #10478 (June 2026)
``perhapsEncode`` signs every *broadcast* this node originates that is not PKI
encrypted, if ``signedDataFits``: the Data with a 64-byte ``xeddsa_signature`` (field
10, so 66 bytes with tag and length, ``XEDDSA_SIGNATURE_FIELD_BYTES``) plus the
16-byte header still fits 255 bytes.  A 100-byte channel broadcast thus grows by 66
bytes (about half a second on LONG_FAST); a broadcast too big to sign goes out
unsigned, so frame length is not monotonic in payload length there.  Direct messages
are never XEdDSA-signed.  ``meshtastic_frame_len(..., xeddsa=True)`` models it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Hard limits from the firmware (src/mesh/RadioInterface.h, meshtastic/mesh.proto).
MAX_LORA_PAYLOAD_LEN = 255  # SX12xx PHY payload ceiling
MESHTASTIC_HEADER_LEN = 16  # clear PacketHeader
PKI_OVERHEAD = 12  # MESHTASTIC_PKC_OVERHEAD: 8-byte AES-CCM tag + 4-byte extra nonce
DATA_PAYLOAD_LEN = 233  # Constants.DATA_PAYLOAD_LEN: nanopb buffer size of Data.payload
BITFIELD_FIELD_LEN = 2  # Data.bitfield (field 9): tag + one-byte varint, always set by firmware
XEDDSA_FIELD_LEN = 66  # Data.xeddsa_signature (field 10): tag + length + 64 bytes (develop)
PREAMBLE_SYMBOLS = 16  # RadioInterface::preambleLength
LOW_DATA_RATE_SYMBOL_TIME = 0.016  # seconds; DE = 1 above this

PRIVATE_APP = 256


@dataclass(frozen=True, slots=True)
class Preset:
    """A LoRa modulation: bandwidth in Hz, spreading factor, coding rate denominator (5-8)."""

    name: str
    bandwidth_hz: int
    spreading_factor: int
    coding_rate: int  # the 8 in 4/8
    preamble_symbols: int = PREAMBLE_SYMBOLS

    def __post_init__(self) -> None:
        if self.bandwidth_hz <= 0:
            raise ValueError(f"bandwidth must be positive, got {self.bandwidth_hz} Hz")
        if not 7 <= self.spreading_factor <= 12:
            # SF5/SF6 have another formula on the SX126x (6.25 symbols, no +8) and no
            # Meshtastic preset uses them
            raise ValueError(f"spreading factor must be 7-12, got {self.spreading_factor}")
        if not 5 <= self.coding_rate <= 8:
            raise ValueError(f"coding rate denominator must be 5-8, got {self.coding_rate}")
        if self.preamble_symbols < 0:
            raise ValueError(f"preamble length must be >= 0, got {self.preamble_symbols}")

    @property
    def symbol_time(self) -> float:
        """Seconds per symbol, 2**SF / BW."""
        return (1 << self.spreading_factor) / self.bandwidth_hz

    @property
    def low_data_rate_optimize(self) -> bool:
        """Whether the radio uses low-data-rate optimisation (symbol time over 16 ms)."""
        return self.symbol_time > LOW_DATA_RATE_SYMBOL_TIME


def _preset(name: str, bandwidth_khz: int, spreading_factor: int, coding_rate: int) -> Preset:
    return Preset(name, bandwidth_khz * 1000, spreading_factor, coding_rate)


# Meshtastic modem presets outside the 2.4 GHz band (modemPresetToParams, src/mesh/MeshRadio.h).
PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        _preset("SHORT_TURBO", 500, 7, 5),
        _preset("SHORT_FAST", 250, 7, 5),
        _preset("SHORT_SLOW", 250, 8, 5),
        _preset("MEDIUM_FAST", 250, 9, 5),
        _preset("MEDIUM_SLOW", 250, 10, 5),
        _preset("LONG_TURBO", 500, 11, 8),
        _preset("LONG_FAST", 250, 11, 5),
        _preset("LONG_MODERATE", 125, 11, 8),
        _preset("LONG_SLOW", 125, 12, 8),
    )
}
DEFAULT_PRESET = PRESETS["LONG_FAST"]


def get_preset(preset: Preset | str) -> Preset:
    """A :class:`Preset`, given itself or its name (case-insensitive, ``-`` or ``_``)."""
    if isinstance(preset, Preset):
        return preset
    key = preset.strip().upper().replace("-", "_")
    try:
        return PRESETS[key]
    except KeyError:
        known = ", ".join(PRESETS)
        raise ValueError(f"unknown modem preset {preset!r}; known: {known}") from None


def payload_symbols(phy_len: int, preset: Preset | str) -> int:
    """Symbols after the preamble for a PHY payload of ``phy_len`` bytes (header, CRC on)."""
    p = get_preset(preset)
    _check_len("PHY payload length", phy_len, MAX_LORA_PAYLOAD_LEN)
    sf = p.spreading_factor
    de = 1 if p.low_data_rate_optimize else 0
    crc, implicit_header = 1, 0
    bits = 8 * phy_len - 4 * sf + 28 + 16 * crc - 20 * implicit_header
    blocks = max(math.ceil(bits / (4 * (sf - 2 * de))), 0)
    return 8 + blocks * p.coding_rate


def time_on_air(phy_len: int, preset: Preset | str) -> float:
    """Seconds on air for a LoRa frame with a PHY payload of ``phy_len`` bytes (0-255)."""
    p = get_preset(preset)
    symbols = p.preamble_symbols + 4.25 + payload_symbols(phy_len, p)
    return symbols * p.symbol_time


def varint_len(value: int) -> int:
    """Bytes of a protobuf base-128 varint for a non-negative integer."""
    if value < 0:
        raise ValueError(f"varint value must be non-negative, got {value}")
    return max(1, (value.bit_length() + 6) // 7)


def data_len(
    app_payload_len: int, portnum: int = PRIVATE_APP, *, bitfield: bool = True, xeddsa: bool = False
) -> int:
    """Bytes of the encoded ``meshtastic.Data`` wrapper around an application payload.

    ``bitfield`` is what firmware-originated packets carry (always); ``xeddsa``
    adds the 66-byte signature field unconditionally (see :func:`meshtastic_frame_len`
    for the firmware's rule of when it is added).
    """
    _check_len("application payload length", app_payload_len, DATA_PAYLOAD_LEN)
    if portnum < 0:
        raise ValueError(f"port number must be non-negative, got {portnum}")
    size = 0
    if portnum:  # proto3: the default 0 is not encoded
        size += 1 + varint_len(portnum)
    if app_payload_len:  # likewise an empty bytes field
        size += 1 + varint_len(app_payload_len) + app_payload_len
    if bitfield:
        size += BITFIELD_FIELD_LEN
    if xeddsa:
        size += XEDDSA_FIELD_LEN
    return size


def meshtastic_frame_len(
    app_payload_len: int, portnum: int = PRIVATE_APP, pki: bool = False, *, xeddsa: bool = False
) -> int:
    """PHY payload bytes of the Meshtastic frame that carries ``app_payload_len`` bytes.

    16-byte header + Data (portnum, payload, bitfield) + 12 bytes for a PKI direct
    message.  ``xeddsa=True`` models develop firmware (after v2.7.26) sending a
    channel broadcast: it appends a 66-byte XEdDSA signature field when the signed
    frame still fits 255 bytes, and sends the packet unsigned otherwise.  PKI
    messages are never XEdDSA-signed, so ``xeddsa`` is ignored with ``pki``.

    The result may exceed 255 (the firmware refuses such a packet with TOO_LARGE);
    :func:`time_on_air` rejects it.
    """
    size = MESHTASTIC_HEADER_LEN + data_len(app_payload_len, portnum)
    if pki:
        return size + PKI_OVERHEAD
    if xeddsa and size + XEDDSA_FIELD_LEN <= MAX_LORA_PAYLOAD_LEN:
        size += XEDDSA_FIELD_LEN
    return size


def max_app_payload(portnum: int = PRIVATE_APP, pki: bool = False) -> int:
    """Largest application payload that the firmware will send in one frame."""
    best = 0
    for n in range(DATA_PAYLOAD_LEN + 1):
        if meshtastic_frame_len(n, portnum, pki) <= MAX_LORA_PAYLOAD_LEN:
            best = n
    return best


def packet_airtime(
    app_payload_len: int,
    preset: Preset | str = DEFAULT_PRESET,
    portnum: int = PRIVATE_APP,
    pki: bool = False,
    *,
    xeddsa: bool = False,
) -> float:
    """Seconds on air for one transmission of a Meshtastic packet carrying the payload.

    One hop only: a flooded packet is sent again by each relay.
    """
    frame = meshtastic_frame_len(app_payload_len, portnum, pki, xeddsa=xeddsa)
    return time_on_air(frame, preset)


def _check_len(what: str, value: int, limit: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, got {type(value).__name__}")
    if not 0 <= value <= limit:
        raise ValueError(f"{what} must be 0-{limit} bytes, got {value}")

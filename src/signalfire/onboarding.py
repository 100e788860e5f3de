"""Joining a network: the Meshtastic channel URL and QR codes a volunteer shows a crowd.

The channel URL is what the Meshtastic apps scan to join a channel, built exactly like the
library's ``Node.getURL``: ``https://meshtastic.org/e/#`` and the unpadded URL-safe base64
of an ``apponly.ChannelSet`` protobuf (the channel settings plus the LoRa settings). It
carries the channel key (PSK) in the clear, by design: whoever scans it joins the channel.
That key is shared with every civilian; it is not the network key that opens reports, and
nothing here ever touches ``network.key``.

The second QR code holds the public network profile (``network.json``) for the signalfire
client on a laptop or phone: the network's public key, the app port and the channel.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from pathlib import Path
from typing import Any

from .errors import SignalfireError
from .profile import LORA_REGIONS, MODEM_PRESETS, NetworkProfile

CHANNEL_URL_PREFIX = "https://meshtastic.org/e/#"
# The public default key (`AQ==`, one byte 0x01) and the other one-byte "simple" keys expand
# to keys printed in the firmware's source: anyone can read such a channel.
PUBLIC_PSK_LENGTHS = (0, 1)
# ModuleSettings.position_precision: how many top bits of latitude/longitude a position
# sent on the channel keeps. 13 bits is about 2.9 km; 0 sends no position on the channel.
COARSE_POSITION_BITS = 13
NO_POSITION = 0


def require_region(profile: NetworkProfile, region: str | None = None) -> str:
    """The LoRa region for this network's radios: ``region`` if given, else the profile's."""
    chosen = region or profile.region
    if chosen is None:
        raise SignalfireError(
            f"the network profile {profile.name!r} names no LoRa region; give --region "
            "(EU_868 in most of Europe, UA_868 in Ukraine; see firmware-config/README.md), "
            "or make the profile with `signalfire network init --region ...`"
        )
    chosen = chosen.strip().upper()
    if chosen not in LORA_REGIONS:
        raise SignalfireError(
            f"region {chosen!r} is not a Meshtastic region; known: {', '.join(LORA_REGIONS)}"
        )
    return chosen


def require_modem_preset(profile: NetworkProfile) -> str:
    preset = profile.modem_preset.strip().upper()
    if preset not in MODEM_PRESETS:
        raise SignalfireError(
            f"network profile {profile.name!r}: modem preset {profile.modem_preset!r} is not "
            f"a Meshtastic preset; known: {', '.join(MODEM_PRESETS)}"
        )
    return preset


def require_private_channel(profile: NetworkProfile) -> None:
    """Refuse to put a radio on a channel that every listener can read."""
    if len(profile.channel_psk) in PUBLIC_PSK_LENGTHS:
        raise SignalfireError(
            f"network profile {profile.name!r} has no private channel key (radio.channel_psk "
            "is empty or a one-byte public key): radios would use a key every listener has. "
            "Make a new profile with `signalfire network init`, which picks a random key"
        )
    if not profile.channel_name or len(profile.channel_name.encode()) > 11:
        raise SignalfireError(
            f"network profile {profile.name!r}: the channel name must be 1-11 bytes, "
            f"got {profile.channel_name!r}"
        )


def lora_settings(profile: NetworkProfile, region: str | None = None) -> dict[str, Any]:
    """The LoRa section every signalfire radio shares, in the camelCase of
    ``meshtastic --export-config``.

    It is also the channel URL's ``lora_config``, and the library's ``setURL`` writes that
    as the radio's whole LoRa config: whatever is left out here becomes zero on the radio,
    so ``txEnabled`` (zero would silence the radio) and the receive gain are spelled out.
    """
    return {
        "usePreset": True,
        "modemPreset": require_modem_preset(profile),
        "region": require_region(profile, region),
        "hopLimit": profile.hop_limit,
        "txEnabled": True,
        "sx126xRxBoostedGain": True,
        # Ask other people's MQTT gateways not to upload our packets, and ignore what
        # reached the mesh through MQTT: neither belongs in a blacked-out area's mesh.
        "configOkToMqtt": False,
        "ignoreMqtt": True,
    }


def channel_settings(profile: NetworkProfile, *, position_precision: int) -> Any:
    """The network's channel as a ``channel_pb2.ChannelSettings``."""
    from meshtastic.protobuf import channel_pb2

    require_private_channel(profile)
    if not 0 <= position_precision <= 32:
        raise SignalfireError(f"position precision must be 0-32 bits, got {position_precision}")
    settings = channel_pb2.ChannelSettings(
        name=profile.channel_name,
        psk=profile.channel_psk,
        uplink_enabled=False,
        downlink_enabled=False,
    )
    settings.module_settings.position_precision = position_precision
    return settings


def channel_set(
    profile: NetworkProfile,
    region: str | None = None,
    *,
    position_precision: int = COARSE_POSITION_BITS,
) -> Any:
    """The ``apponly_pb2.ChannelSet`` a channel URL carries: our one channel, primary."""
    from google.protobuf import json_format  # type: ignore[import-untyped, unused-ignore]
    from meshtastic.protobuf import apponly_pb2

    result = apponly_pb2.ChannelSet()
    result.settings.append(channel_settings(profile, position_precision=position_precision))
    json_format.ParseDict(lora_settings(profile, region), result.lora_config)
    return result


def channel_url(
    profile: NetworkProfile,
    region: str | None = None,
    *,
    position_precision: int = COARSE_POSITION_BITS,
) -> str:
    """The URL the Meshtastic apps scan to join the network's channel (holds the PSK)."""
    data = channel_set(profile, region, position_precision=position_precision)
    encoded = base64.urlsafe_b64encode(data.SerializeToString()).decode("ascii")
    return CHANNEL_URL_PREFIX + encoded.rstrip("=")


def parse_channel_url(url: str) -> Any:
    """A ChannelSet from a Meshtastic channel URL (``/e/#...``), with clear errors."""
    from google.protobuf.message import DecodeError  # type: ignore[import-untyped, unused-ignore]
    from meshtastic.protobuf import apponly_pb2

    head, sep, b64 = url.strip().partition("/#")
    if not sep or not head.startswith(("https://meshtastic.org/e", "https://meshtastic.org/d")):
        raise SignalfireError(
            f"not a Meshtastic channel URL (https://meshtastic.org/e/#...): {url!r}"
        )
    try:
        raw = base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4))
        result = apponly_pb2.ChannelSet.FromString(raw)
    except (binascii.Error, ValueError, DecodeError):
        raise SignalfireError("the channel URL's data is not a Meshtastic ChannelSet") from None
    if not result.settings:
        raise SignalfireError("the channel URL holds no channel")
    return result


def profile_qr_text(profile: NetworkProfile) -> str:
    """The public network profile as compact JSON, for a QR code (about 330 bytes).

    It is the same document as network.json: save a scan of it as network.json and
    `signalfire send --network network.json` reads it.
    """
    return json.dumps(profile.to_json(), separators=(",", ":"), ensure_ascii=True)


# -- QR codes ------------------------------------------------------------------------------


def _qr(text: str) -> Any:
    import qrcode
    from qrcode.constants import ERROR_CORRECT_M

    # M (15 % recovery) survives a scratched print or a glare on a screen, and keeps the
    # ~150-character channel URL at a version a phone camera reads from arm's length.
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=4, box_size=10)
    code.add_data(text)
    code.make(fit=True)
    return code


def qr_terminal(text: str) -> str:
    """The QR code drawn with block characters for a terminal with light text on a dark
    background (the usual): a block is a light module, and the light quiet zone around
    the code is drawn too, so the phone sees dark modules on light."""
    out = io.StringIO()
    _qr(text).print_ascii(out=out, tty=False, invert=True)
    return out.getvalue()


def qr_image(text: str, *, box_size: int = 10) -> Any:
    """The QR code as a black-on-white PIL image."""
    try:
        from qrcode.image.pil import PilImage
    except ImportError as exc:  # pillow missing
        raise SignalfireError(
            f"drawing a QR code as PNG needs pillow ({exc}); install signalfire[kit]"
        ) from None
    code = _qr(text)
    code.box_size = box_size
    return code.make_image(image_factory=PilImage).get_image()


def write_qr_png(text: str, path: Path, *, caption: str | None = None) -> Path:
    """Write the QR code as a PNG, with an optional caption under it (what it is for)."""
    from PIL import Image, ImageDraw

    image = qr_image(text).convert("RGB")
    if caption:
        from .cards.fonts import pil_font

        font = pil_font(size=max(16, image.width // 28))
        lines = caption.splitlines()
        line_height = int(font.size * 1.3)
        canvas = Image.new(
            "RGB", (image.width, image.height + line_height * len(lines) + 10), "white"
        )
        canvas.paste(image, (0, 0))
        draw = ImageDraw.Draw(canvas)
        for index, line in enumerate(lines):
            width = draw.textlength(line, font=font)
            y = image.height - 10 + index * line_height
            draw.text(((image.width - width) / 2, y), line, fill="black", font=font)
        image = canvas
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")
    return path

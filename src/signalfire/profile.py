"""The network profile: the public file every civilian, gateway and coordinator holds."""

from __future__ import annotations

import base64
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from . import wire
from .errors import SignalfireError
from .keyfiles import (
    PRIVATE_MODE,
    PUBLIC_MODE,
    atomic_write,
    dump_json,
    private_pem,
    read_json,
    refuse_overwrite,
)

PROFILE_TYPE = "signalfire-network"
PROFILE_FILE = "network.json"
KEY_FILE = "network.key"
# Meshtastic's private port range is 256-511; 256 (PRIVATE_APP) and 257
# (ATAK_FORWARDER) are taken by other software, so signalfire picks its own.
DEFAULT_APP_PORT = 287
DEFAULT_MODEM_PRESET = "LONG_FAST"
DEFAULT_HOP_LIMIT = 3  # Meshtastic's own default; every hop multiplies a report's airtime
# Names from meshtastic's config.proto (LoRaConfig.RegionCode, LoRaConfig.ModemPreset), as
# of meshtastic 2.7.11; tests/test_onboarding.py checks them against the installed library.
# Written out because importing meshtastic costs every `signalfire` command ~0.2 s. UNSET
# and LORA_24 are left out: a radio on UNSET does not transmit, and the 2.4 GHz band needs
# other hardware than the sub-GHz handhelds this project is for.
LORA_REGIONS = (
    "US", "EU_433", "EU_868", "CN", "JP", "ANZ", "KR", "TW", "RU", "IN", "NZ_865", "TH",
    "UA_433", "UA_868", "MY_433", "MY_919", "SG_923", "PH_433", "PH_868", "PH_915",
    "ANZ_433", "KZ_433", "KZ_863", "NP_865", "BR_902", "ITU1_2M", "ITU2_2M", "EU_866",
    "EU_874", "EU_917", "EU_N_868", "ITU3_2M",
)  # fmt: skip
MODEM_PRESETS = (
    "LONG_FAST", "LONG_SLOW", "VERY_LONG_SLOW", "MEDIUM_SLOW", "MEDIUM_FAST", "SHORT_SLOW",
    "SHORT_FAST", "LONG_MODERATE", "SHORT_TURBO", "LONG_TURBO", "LITE_FAST", "LITE_SLOW",
    "NARROW_FAST", "NARROW_SLOW",
)  # fmt: skip
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,11}$")  # Meshtastic channel names: < 12 bytes


@dataclass(frozen=True)
class NetworkProfile:
    name: str
    public_key: bytes
    app_port: int = DEFAULT_APP_PORT
    channel_name: str = "signalfire"
    channel_psk: bytes = b""
    modem_preset: str = DEFAULT_MODEM_PRESET
    # The LoRa region (a Meshtastic RegionCode name such as EU_868 or UA_868). Optional so
    # that profiles written before it existed still load; what needs it (radio profiles,
    # the channel URL) asks for it instead of guessing a band, which could be illegal.
    region: str | None = None
    hop_limit: int = DEFAULT_HOP_LIMIT

    @property
    def network_id(self) -> bytes:
        return wire.network_id(self.public_key)

    def to_json(self) -> dict[str, Any]:
        return {
            "type": PROFILE_TYPE,
            "version": 1,
            "name": self.name,
            "network_public_key": self.public_key.hex(),
            "network_id": self.network_id.hex(),
            "radio": {
                "app_port": self.app_port,
                "channel_name": self.channel_name,
                "channel_psk": base64.b64encode(self.channel_psk).decode(),
                "modem_preset": self.modem_preset,
                **({"region": self.region} if self.region is not None else {}),
                **({"hop_limit": self.hop_limit} if self.hop_limit != DEFAULT_HOP_LIMIT else {}),
            },
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any], source: str) -> NetworkProfile:
        def bad(what: str) -> SignalfireError:
            return SignalfireError(
                f"network profile {source}: {what}; get a fresh copy from your coordinator "
                "(signalfire network init writes one)"
            )

        if obj.get("type") != PROFILE_TYPE:
            raise bad(f'"type" must be "{PROFILE_TYPE}"')
        if obj.get("version") != 1:
            raise bad(f'"version" {obj.get("version")!r} is not supported (1 is)')
        name = obj.get("name")
        if not isinstance(name, str) or not name:
            raise bad('"name" must be a non-empty string')
        try:
            public_key = bytes.fromhex(str(obj.get("network_public_key", "")))
        except ValueError:
            raise bad('"network_public_key" is not hex') from None
        if len(public_key) != 32:
            raise bad('"network_public_key" must be 32 bytes (64 hex digits)')
        if "network_id" in obj and obj["network_id"] != wire.network_id(public_key).hex():
            raise bad('"network_id" does not match "network_public_key" (the file was altered)')
        radio = obj.get("radio", {})
        if not isinstance(radio, dict):
            raise bad('"radio" must be an object')
        port = radio.get("app_port", DEFAULT_APP_PORT)
        if not isinstance(port, int) or isinstance(port, bool) or not 256 <= port <= 511:
            raise bad('"radio.app_port" must be a Meshtastic private port number, 256-511')
        try:
            psk = base64.b64decode(str(radio.get("channel_psk", "")), validate=True)
        except ValueError:
            raise bad('"radio.channel_psk" is not base64') from None
        if len(psk) not in (0, 1, 16, 32):
            raise bad('"radio.channel_psk" must decode to 0, 1, 16 or 32 bytes')
        region = radio.get("region")
        if region is not None and (not isinstance(region, str) or region not in LORA_REGIONS):
            raise bad(f'"radio.region" {region!r} is not a Meshtastic region (e.g. EU_868, UA_868)')
        hop_limit = radio.get("hop_limit", DEFAULT_HOP_LIMIT)
        if not isinstance(hop_limit, int) or isinstance(hop_limit, bool) or not 1 <= hop_limit <= 7:
            raise bad('"radio.hop_limit" must be 1-7')
        return cls(
            name=name,
            public_key=public_key,
            app_port=port,
            channel_name=str(radio.get("channel_name", "signalfire")),
            channel_psk=psk,
            modem_preset=str(radio.get("modem_preset", DEFAULT_MODEM_PRESET)),
            region=region,
            hop_limit=hop_limit,
        )


def load_profile(path: Path) -> NetworkProfile:
    path = Path(path)
    if path.is_dir():
        path = path / PROFILE_FILE
    obj = read_json(path, "network profile", "ask your coordinator for network.json")
    return NetworkProfile.from_json(obj, str(path))


def init_network(
    out_dir: Path,
    name: str,
    *,
    force: bool = False,
    region: str | None = None,
    modem_preset: str = DEFAULT_MODEM_PRESET,
) -> tuple[NetworkProfile, Path]:
    """Create the network key pair and profile in ``out_dir``; returns the profile and key path.

    The profile also holds the radio channel: its name (the network name) and a random
    256-bit channel key (PSK). Every radio on the channel holds that PSK, so it is a secret
    shared with every civilian, not a secret of the coordinators: it keeps outsiders off
    the channel, while the network key pair (network.key) is what opens reports.
    """
    if region is not None and region not in LORA_REGIONS:
        raise SignalfireError(
            f"region {region!r} is not a Meshtastic region; known: {', '.join(LORA_REGIONS)}"
        )
    if modem_preset not in MODEM_PRESETS:
        raise SignalfireError(
            f"modem preset {modem_preset!r} is not known; known: {', '.join(MODEM_PRESETS)}"
        )
    if not _NAME_RE.match(name):
        raise SignalfireError(
            f"network name {name!r} must be 1-11 letters, digits, '-' or '_' "
            "(it doubles as the Meshtastic channel name)"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    key_path, profile_path = out_dir / KEY_FILE, out_dir / PROFILE_FILE
    if not force:
        refuse_overwrite(key_path, profile_path)
    private = X25519PrivateKey.generate()
    profile = NetworkProfile(
        name=name,
        public_key=wire.x25519_public_bytes(private),
        channel_name=name,
        channel_psk=os.urandom(32),
        modem_preset=modem_preset,
        region=region,
    )
    atomic_write(key_path, private_pem(private), PRIVATE_MODE)
    atomic_write(profile_path, dump_json(profile.to_json()), PUBLIC_MODE)
    return profile, key_path

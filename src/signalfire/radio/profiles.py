"""The three radio profiles (civilian, relay, gateway) as `meshtastic --configure` YAML.

One definition serves three uses: the templates committed in firmware-config/ (made by
:func:`template_yaml`; a test keeps them equal), the YAML filled in for one network
(:func:`filled_yaml`: channel URL with the network's PSK, region, preset), and the target
state `signalfire radio provision` writes and checks (:func:`target`).

Keys follow `meshtastic --export-config`: top-level ``channel_url`` and
``canned_messages``, then ``config`` and ``module_config`` sections whose fields are in the
camelCase of protobuf JSON, enums by name. The library's configure path (``setPref``)
ignores a key it does not know without a word, so :func:`target` parses the same
dictionaries with ``json_format.ParseDict``, which refuses unknown keys: a typo here fails
the tests instead of silently leaving a radio on its old setting.
"""

from __future__ import annotations

import copy
import textwrap
from dataclasses import dataclass
from typing import Any

import yaml  # type: ignore[import-untyped, unused-ignore]

from ..errors import SignalfireError
from ..onboarding import (
    COARSE_POSITION_BITS,
    NO_POSITION,
    channel_settings,
    channel_url,
    lora_settings,
)
from ..profile import DEFAULT_HOP_LIMIT, NetworkProfile

ROLES = ("civilian", "relay", "gateway")

# What the templates hold where a network's own values go.
CHANNEL_URL_PLACEHOLDER = "SIGNALFIRE_CHANNEL_URL"
REGION_PLACEHOLDER = "SIGNALFIRE_REGION"
PRESET_PLACEHOLDER = "SIGNALFIRE_MODEM_PRESET"

# Most urgent first: on a device with buttons only, each step down the list is a press.
# Every word is one the stock-radio parser reads (tests/test_firmware_profiles.py checks).
CANNED_STATUS_WORDS = ("SOS", "SAFE", "MEDICAL", "TRAPPED", "EVACUATE", "WATER", "FOOD", "CANCEL")
CANNED_MESSAGES = "|".join(CANNED_STATUS_WORDS)

HOURS_3 = 3 * 3600
HOURS_12 = 12 * 3600


@dataclass(frozen=True)
class RoleProfile:
    name: str
    summary: str
    # Bits of position the radio may send on the network's channel (0: none), and the
    # ceiling for any other channel the radio already has.
    position_precision: int
    config: dict[str, Any]
    module_config: dict[str, Any]
    canned_messages: str | None = None


def _lora_placeholder() -> dict[str, Any]:
    return {
        "usePreset": True,
        "modemPreset": PRESET_PLACEHOLDER,
        "region": REGION_PLACEHOLDER,
        "hopLimit": DEFAULT_HOP_LIMIT,
        "txEnabled": True,
        "sx126xRxBoostedGain": True,
        "configOkToMqtt": False,
        "ignoreMqtt": True,
    }


# Modules that transmit on their own and carry nothing signalfire needs: every one of them
# is airtime out of the duty-cycle budget and one more transmission to locate.
# MQTT off on every radio: the gateway daemon has the uplinks, and a radio publishing to a
# broker by itself would bypass its store, signatures and priorities (turn it on by hand
# on a gateway radio if the operator wants that anyway).
_QUIET_MODULES: dict[str, Any] = {
    "mqtt": {"enabled": False, "proxyToClientEnabled": False, "mapReportingEnabled": False},
    "neighborInfo": {"enabled": False, "transmitOverLora": False},
    "rangeTest": {"enabled": False},
    "storeForward": {"enabled": False},  # keeps text only, in RAM: the gateway's store is real
    "telemetry": {"deviceTelemetryEnabled": False, "environmentMeasurementEnabled": False},
}

PROFILES: dict[str, RoleProfile] = {
    "civilian": RoleProfile(
        name="civilian",
        summary="a civilian's handheld: the network's channel, coarse position, "
        "status words as canned messages, long battery life",
        position_precision=COARSE_POSITION_BITS,
        config={
            "device": {
                "role": "CLIENT",
                "rebroadcastMode": "ALL",
                "nodeInfoBroadcastSecs": HOURS_3,
            },
            "position": {
                # The gateway attaches a stock radio's last position to its text reports
                # (if under 6 hours old): every 3 hours keeps one fresh, rounded to 2.9 km
                # by the channel's precision. Smart broadcast would send on every move.
                "positionBroadcastSecs": HOURS_3,
                "positionBroadcastSmartEnabled": False,
                "fixedPosition": False,
                "gpsMode": "ENABLED",  # signalfire reports take the precise fix from here
                "gpsUpdateInterval": 300,
            },
            "display": {"screenOnSecs": 30},
            "bluetooth": {"enabled": True, "mode": "RANDOM_PIN"},
            "lora": _lora_placeholder(),
        },
        module_config={
            **_QUIET_MODULES,
            "cannedMessage": {"enabled": True, "allowInputSource": "_any", "sendBell": False},
        },
        canned_messages=CANNED_MESSAGES,
    ),
    "relay": RoleProfile(
        name="relay",
        summary="a relay on a hill or roof: repeats everything on the channel, says little",
        position_precision=NO_POSITION,
        config={
            "device": {
                # ROUTER always repeats; ROUTER_LATE (repeat only after everyone else had
                # the chance) is for a relay that fills a gap rather than covers the area.
                "role": "ROUTER",
                # ALL, never CORE_PORTNUMS_ONLY (drops signalfire's private port) nor
                # LOCAL_ONLY / KNOWN_ONLY (drop PKI direct messages between nodes the relay
                # has not met, such as the gateway's replies to a new civilian).
                "rebroadcastMode": "ALL",
                "nodeInfoBroadcastSecs": HOURS_12,
            },
            "position": {
                "positionBroadcastSecs": HOURS_12,
                "positionBroadcastSmartEnabled": False,
                "fixedPosition": False,
                "gpsMode": "DISABLED",  # a relay does not move; its position helps no one
            },
            "power": {"isPowerSaving": True},  # ESP32 boards sleep between packets
            "display": {"screenOnSecs": 1},
            "bluetooth": {"enabled": False},  # reconfigure over USB: one less way in
            "lora": _lora_placeholder(),
        },
        module_config={**_QUIET_MODULES, "cannedMessage": {"enabled": False}},
    ),
    "gateway": RoleProfile(
        name="gateway",
        summary="the radio on the gateway daemon's USB or TCP link",
        position_precision=NO_POSITION,
        config={
            "device": {
                "role": "CLIENT",
                "rebroadcastMode": "ALL",
                "nodeInfoBroadcastSecs": HOURS_3,
            },
            "position": {
                # A gateway is worth finding for a hostile listener; it sends no position.
                "positionBroadcastSecs": HOURS_12,
                "positionBroadcastSmartEnabled": False,
                "fixedPosition": False,
                "gpsMode": "DISABLED",
            },
            "power": {"isPowerSaving": False},  # the serial/TCP API must stay awake
            # The serial API the daemon talks to. Only this field of the security section
            # is written: the radio's PKI key pair (which authenticates direct messages)
            # stays as it is, because the configure path starts from the radio's own values.
            "security": {"serialEnabled": True},
            "lora": _lora_placeholder(),
        },
        module_config={**_QUIET_MODULES, "cannedMessage": {"enabled": False}},
    ),
}


def get_role(role: str) -> RoleProfile:
    try:
        return PROFILES[role]
    except KeyError:
        raise SignalfireError(
            f"unknown radio profile {role!r}; choose one of {', '.join(ROLES)}"
        ) from None


def _document(role: RoleProfile, url: str, lora: dict[str, Any]) -> dict[str, Any]:
    config = copy.deepcopy(role.config)
    config["lora"] = lora
    doc: dict[str, Any] = {"channel_url": url}
    if role.canned_messages:
        doc["canned_messages"] = role.canned_messages
    doc["config"] = config
    doc["module_config"] = copy.deepcopy(role.module_config)
    return doc


def _header(role: RoleProfile, filled_for: str | None) -> str:
    summary = textwrap.wrap(f"signalfire radio profile: {role.name} -- {role.summary}.", 88)
    lines = ["# start of Meshtastic configure yaml", *(f"# {line}" for line in summary)]
    if filled_for is None:
        lines += [
            "# TEMPLATE: fill it for your network first (it needs the channel key):",
            f"#   signalfire network profile-yaml --network network.json --role {role.name}"
            f" > {role.name}.yaml",
            f"#   meshtastic --configure {role.name}.yaml",
            "# or let `signalfire radio provision` apply it. See firmware-config/README.md.",
        ]
    else:
        lines += [
            f"# Filled for network {filled_for}. channel_url holds the channel key (PSK):",
            "# share this file only with people who may join the channel.",
            f"# Apply: meshtastic --configure {role.name}.yaml",
        ]
    return "\n".join(lines) + "\n"


def _dump(doc: dict[str, Any]) -> str:
    return str(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=1000))


def template_yaml(role_name: str) -> str:
    """The committed template: placeholders where the network's values go."""
    role = get_role(role_name)
    return _header(role, None) + _dump(
        _document(role, CHANNEL_URL_PLACEHOLDER, _lora_placeholder())
    )


def filled_yaml(role_name: str, profile: NetworkProfile, region: str | None = None) -> str:
    """The profile for one network, ready for `meshtastic --configure`."""
    role = get_role(role_name)
    url = channel_url(profile, region, position_precision=role.position_precision)
    text = _header(role, profile.name) + _dump(_document(role, url, lora_settings(profile, region)))
    for placeholder in (CHANNEL_URL_PLACEHOLDER, REGION_PLACEHOLDER, PRESET_PLACEHOLDER):
        if placeholder in text:  # a template field the filling missed
            raise AssertionError(f"{placeholder} left in the {role_name} profile")
    return text


@dataclass
class Target:
    """What a radio should hold after provisioning, as protobuf messages.

    ``config`` and ``module_config`` map a section name (snake_case) to the fields the
    profile sets, in camelCase; sections and fields not named are left as the radio has
    them.
    """

    role: RoleProfile
    channel: Any  # channel_pb2.ChannelSettings for channel 0 (primary)
    config: dict[str, dict[str, Any]]
    module_config: dict[str, dict[str, Any]]
    canned_messages: str | None


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


def target(role_name: str, profile: NetworkProfile, region: str | None = None) -> Target:
    from google.protobuf import json_format  # type: ignore[import-untyped, unused-ignore]
    from meshtastic.protobuf import localonly_pb2

    role = get_role(role_name)
    config = copy.deepcopy(role.config)
    config["lora"] = lora_settings(profile, region)
    sections = {_snake(k): v for k, v in config.items()}
    modules = {_snake(k): v for k, v in role.module_config.items()}
    try:  # refuses unknown fields and enum names: a typo fails here, not on a radio
        json_format.ParseDict(config, localonly_pb2.LocalConfig())
        json_format.ParseDict(role.module_config, localonly_pb2.LocalModuleConfig())
    except json_format.ParseError as exc:
        raise SignalfireError(f"radio profile {role_name} is malformed: {exc}") from None
    return Target(
        role=role,
        channel=channel_settings(profile, position_precision=role.position_precision),
        config=sections,
        module_config=modules,
        canned_messages=role.canned_messages,
    )


# -- airtime per report, for firmware-config/README.md --------------------------------------

# Application payload sizes of the three packets a civilian's client sends (bench/RESULTS.md).
REPORT_SIZES = (
    ("SOS, 3 people, location", 107),
    ("the same with a few words of text", 137),
    ("key announcement (first contact)", 142),
)
# The share of each rolling hour a radio may transmit in the regions signalfire expects;
# the firmware stops transmitting when it is used up (most other regions: 100 %).
DUTY_CYCLES = {"EU_868": 0.10, "UA_868": 0.01}


def airtime_table(app_port: int = 287) -> str:
    """The README's Markdown table: airtime per report and reports per hour per preset."""
    from ..airtime import PRESETS, packet_airtime

    sizes = " | ".join(f"{size} B" for _, size in REPORT_SIZES)
    head = f"| preset (BW/SF/CR) | {sizes} | SOS reports/hour, EU_868 10 % | UA_868 1 % |"
    lines = [head, "|---|" + "---:|" * (len(REPORT_SIZES) + 2)]
    for name, preset in PRESETS.items():
        times = [packet_airtime(size, preset, portnum=app_port) for _, size in REPORT_SIZES]
        per_hour = [int(3600 * share // times[0]) for share in DUTY_CYCLES.values()]
        label = (
            f"{name} ({preset.bandwidth_hz // 1000}/{preset.spreading_factor}"
            f"/4-{preset.coding_rate})"
        )
        cells = " | ".join(f"{t:.2f} s" for t in times)
        lines.append(f"| {label} | {cells} | {per_hour[0]} | {per_hour[1]} |")
    return "\n".join(lines) + "\n"

"""Joining a network: the channel URL (checked with the real meshtastic library on the
emulated radio), the QR codes (decoded with zxing-cpp), and the profile's new fields."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import zxingcpp
from click.testing import CliRunner
from meshtastic.protobuf import apponly_pb2, channel_pb2, config_pb2
from PIL import Image

from radio.conftest import connect_tcp
from signalfire import onboarding
from signalfire.cli import main
from signalfire.errors import SignalfireError
from signalfire.profile import LORA_REGIONS, MODEM_PRESETS, NetworkProfile, init_network
from signalfire.radio.emulator import EmulatedDevice
from signalfire.radio.virtual_mesh import InMemoryMesh

LoRa = config_pb2.Config.LoRaConfig


@pytest.fixture
def network(tmp_path: Path) -> tuple[Path, NetworkProfile]:
    profile, _ = init_network(tmp_path / "net", "town", region="UA_868")
    return tmp_path / "net", profile


def decode_png(path: Path) -> list[str]:
    return [r.text for r in zxingcpp.read_barcodes(Image.open(path))]


def decode_terminal(drawing: str) -> list[str]:
    """Turn the block-character drawing back into pixels (a block is a light module)."""
    rows = [line for line in drawing.splitlines() if line]
    width, scale = len(rows[0]), 4
    image = Image.new("L", (width * scale, len(rows) * 2 * scale), 0)
    for y, line in enumerate(rows):
        for x, char in enumerate(line):
            halves = (char in "█▀", char in "█▄")  # top, bottom: light?
            for half, light in enumerate(halves):
                if light:
                    top = (2 * y + half) * scale
                    image.paste(255, (x * scale, top, (x + 1) * scale, top + scale))
    return [r.text for r in zxingcpp.read_barcodes(image)]


def test_the_library_applies_our_channel_url_and_gives_the_same_url_back(
    network: tuple[Path, NetworkProfile],
) -> None:
    _, profile = network
    url = onboarding.channel_url(profile)
    assert url.startswith("https://meshtastic.org/e/#") and "=" not in url
    device = EmulatedDevice(InMemoryMesh.generate(1, seed=2), seed=2)
    device.start()
    try:
        iface = connect_tcp(device)
        try:
            iface.localNode.setURL(url)  # the library's own parser and writer
            assert device.wait_for(
                lambda: any(m.HasField("set_config") for m in device.admin_messages)
            )
        finally:
            iface.close()
        primary = device.state.channels[0]
        assert primary.role == channel_pb2.Channel.Role.PRIMARY
        assert primary.settings.name == "town"
        assert primary.settings.psk == profile.channel_psk
        assert primary.settings.module_settings.position_precision == 13
        lora = device.state.config.lora
        assert lora.region == LoRa.RegionCode.UA_868
        assert lora.modem_preset == LoRa.ModemPreset.LONG_FAST
        assert lora.use_preset and lora.tx_enabled and lora.hop_limit == 3
        assert lora.ignore_mqtt and not lora.config_ok_to_mqtt

        iface = connect_tcp(device)
        try:
            assert iface.localNode.getURL() == url
        finally:
            iface.close()
    finally:
        device.stop()


def test_qr_codes_decode_to_the_channel_url_and_the_profile(
    network: tuple[Path, NetworkProfile], tmp_path: Path
) -> None:
    net_dir, profile = network
    result = CliRunner().invoke(
        main, ["network", "qr", "--network", str(net_dir), "--out", str(tmp_path / "qr")]
    )
    assert result.exit_code == 0, result.output
    (url,) = decode_png(tmp_path / "qr" / "channel-qr.png")
    assert url == onboarding.channel_url(profile)
    parsed = onboarding.parse_channel_url(url)
    assert parsed.settings[0].psk == profile.channel_psk
    assert parsed.settings[0].name == profile.channel_name
    assert parsed.lora_config.region == LoRa.RegionCode.UA_868

    (text,) = decode_png(tmp_path / "qr" / "profile-qr.png")
    assert NetworkProfile.from_json(json.loads(text), "qr") == profile
    # The network's private key is in neither code.
    private_pem = (net_dir / "network.key").read_text()
    body = "".join(private_pem.strip().splitlines()[1:-1])
    assert body not in text and body not in url


def test_terminal_qr_decodes_and_the_url_is_printed(network: tuple[Path, NetworkProfile]) -> None:
    net_dir, profile = network
    result = CliRunner().invoke(
        main, ["network", "qr", "--network", str(net_dir), "--what", "channel"]
    )
    assert result.exit_code == 0, result.output
    url = onboarding.channel_url(profile)
    assert url in result.output
    drawing = "\n".join(line for line in result.output.splitlines() if "█" in line)
    assert decode_terminal(drawing) == [url]


def test_network_init_stores_region_and_preset_and_old_profiles_still_load(
    tmp_path: Path,
) -> None:
    result = CliRunner().invoke(
        main,
        [
            *("network", "init", "--out", str(tmp_path / "n"), "--name", "north"),
            *("--region", "eu_868", "--modem-preset", "medium_fast"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "channel     north, MEDIUM_FAST, EU_868" in result.output
    radio = json.loads((tmp_path / "n" / "network.json").read_text())["radio"]
    assert radio["region"] == "EU_868" and radio["modem_preset"] == "MEDIUM_FAST"
    assert len(radio["channel_psk"]) == 44  # 32 random bytes, base64

    # A profile from before regions existed: loads, and writes back without new keys.
    old = {
        "type": "signalfire-network",
        "version": 1,
        "name": "old",
        "network_public_key": "11" * 32,
        "radio": {"app_port": 287, "channel_name": "old", "channel_psk": radio["channel_psk"]},
    }
    profile = NetworkProfile.from_json(old, "old.json")
    assert profile.region is None and profile.hop_limit == 3
    assert set(profile.to_json()["radio"]) == {
        "app_port",
        "channel_name",
        "channel_psk",
        "modem_preset",
    }
    with pytest.raises(SignalfireError, match="names no LoRa region"):
        onboarding.channel_url(profile)
    assert onboarding.channel_url(profile, "ua_868").startswith("https://meshtastic.org/e/#")

    bad = {**old, "radio": {**old["radio"], "region": "MOON"}}
    with pytest.raises(SignalfireError, match="not a Meshtastic region"):
        NetworkProfile.from_json(bad, "bad.json")
    bad = {**old, "radio": {**old["radio"], "hop_limit": 9}}
    with pytest.raises(SignalfireError, match="hop_limit"):
        NetworkProfile.from_json(bad, "bad.json")


def test_region_and_preset_names_match_the_installed_library() -> None:
    regions = set(LoRa.RegionCode.keys()) - {"UNSET", "LORA_24"}
    assert set(LORA_REGIONS) == regions
    assert set(MODEM_PRESETS) == set(LoRa.ModemPreset.keys())


def test_malformed_channel_urls_are_refused_clearly() -> None:
    with pytest.raises(SignalfireError, match="not a Meshtastic channel URL"):
        onboarding.parse_channel_url("https://example.org/#abc")
    with pytest.raises(SignalfireError, match="not a Meshtastic ChannelSet"):
        onboarding.parse_channel_url("https://meshtastic.org/e/#" + "_" * 7)
    empty = apponly_pb2.ChannelSet().SerializeToString()
    with pytest.raises(SignalfireError, match="holds no channel"):
        onboarding.parse_channel_url("https://meshtastic.org/e/#" + empty.hex())


def test_the_channel_qr_stays_a_low_version(network: tuple[Path, NetworkProfile]) -> None:
    _, profile = network
    # Few, large modules: a phone reads it off a printed card or a dim screen. A URL with
    # a 32-byte key and the LoRa settings is about 115 characters: version 7 (45 modules)
    # at error correction M, plus the 4-module quiet zone on each side.
    image = onboarding.qr_image(onboarding.channel_url(profile), box_size=1)
    assert image.size[0] <= 45 + 8

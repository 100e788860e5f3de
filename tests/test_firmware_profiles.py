"""The radio profiles in firmware-config/: accepted by the real `meshtastic --configure`
on the emulated radio, and what the radio holds afterwards is what the profile meant."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from meshtastic.protobuf import channel_pb2, config_pb2

from radio.conftest import connect_tcp
from signalfire.errors import SignalfireError
from signalfire.intake.keywords import parse_message
from signalfire.profile import NetworkProfile, init_network
from signalfire.radio import profiles
from signalfire.radio.emulator import EmulatedDevice
from signalfire.radio.virtual_mesh import InMemoryMesh
from signalfire.wire.vocab import Need, Status

ROOT = Path(__file__).resolve().parents[1]
FIRMWARE_CONFIG = ROOT / "firmware-config"
Role = config_pb2.Config.DeviceConfig.Role
Rebroadcast = config_pb2.Config.DeviceConfig.RebroadcastMode
LoRa = config_pb2.Config.LoRaConfig
# `meshtastic --info` asks PyPI for a newer version; keep every CLI run off the network.
OFFLINE = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}

EXPECTED = {
    # role: (device role, position bits on the network channel, canned messages)
    "civilian": (Role.CLIENT, 13, profiles.CANNED_MESSAGES),
    "relay": (Role.ROUTER, 0, ""),
    "gateway": (Role.CLIENT, 0, ""),
}


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> NetworkProfile:
    profile, _ = init_network(tmp_path_factory.mktemp("net"), "town", region="UA_868")
    return profile


@pytest.mark.parametrize("role", profiles.ROLES)
def test_committed_templates_are_generated_and_hold_no_key(role: str) -> None:
    committed = (FIRMWARE_CONFIG / f"{role}.yaml").read_text()
    assert committed == profiles.template_yaml(role), (
        f"firmware-config/{role}.yaml is stale: "
        f"signalfire network profile-yaml --template --role {role} > firmware-config/{role}.yaml"
    )
    doc = yaml.safe_load(committed)
    assert doc["channel_url"] == profiles.CHANNEL_URL_PLACEHOLDER
    assert doc["config"]["lora"]["region"] == profiles.REGION_PLACEHOLDER
    # Never the rebroadcast mode that drops signalfire's private port.
    assert doc["config"]["device"]["rebroadcastMode"] == "ALL"


def test_every_profile_is_taken_by_the_real_configure_path(
    network: NetworkProfile, tmp_path: Path
) -> None:
    devices = {
        role: EmulatedDevice(InMemoryMesh.generate(1, seed=20 + i), seed=20 + i)
        for i, role in enumerate(profiles.ROLES)
    }
    keys = {}
    runs = {}
    try:
        # The CLI sleeps half a second after each step: run the three side by side.
        for role, device in devices.items():
            device.start()
            keys[role] = bytes(device.state.config.security.private_key)
            path = tmp_path / f"{role}.yaml"
            path.write_text(profiles.filled_yaml(role, network))
            address = device.tcp_address
            assert address is not None
            runs[role] = subprocess.Popen(
                [
                    *(sys.executable, "-m", "meshtastic", "--host", f"127.0.0.1:{address[1]}"),
                    *("--timeout", "20", "--configure", str(path)),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, **OFFLINE},
            )
        for role, run in runs.items():
            out, err = run.communicate(timeout=60)
            assert run.returncode == 0, err
            assert "Writing modified configuration to device" in out
            device = devices[role]
            assert device.wait_for(
                lambda d=device: any(m.HasField("commit_edit_settings") for m in d.admin_messages)
            )
            check_radio(device, role, network, keys[role])
    finally:
        for run in runs.values():
            if run.poll() is None:
                run.kill()
        for device in devices.values():
            device.stop()


def check_radio(
    device: EmulatedDevice, role: str, network: NetworkProfile, private_key: bytes
) -> None:
    """Read the radio back through the library, as `meshtastic --export-config` would."""
    device_role, bits, canned = EXPECTED[role]
    iface = connect_tcp(device)
    try:
        node = iface.localNode
        primary = node.channels[0]
        assert primary.role == channel_pb2.Channel.Role.PRIMARY
        assert primary.settings.name == network.channel_name
        assert primary.settings.psk == network.channel_psk, role
        assert primary.settings.module_settings.position_precision == bits, role
        config = node.localConfig
        assert config.device.role == device_role, role
        assert config.device.rebroadcast_mode == Rebroadcast.ALL, role
        assert config.lora.region == LoRa.RegionCode.UA_868
        assert config.lora.modem_preset == LoRa.ModemPreset.LONG_FAST
        assert config.lora.hop_limit == 3 and config.lora.tx_enabled and config.lora.use_preset
        assert not node.moduleConfig.mqtt.enabled
        assert not config.position.position_broadcast_smart_enabled
        assert bytes(config.security.private_key) == private_key  # PKI keys kept
        assert node.moduleConfig.canned_message.enabled == bool(canned)
        assert (node.get_canned_message() or "") == canned
        if role == "relay":
            assert not config.bluetooth.enabled
        if role == "gateway":
            assert config.security.serial_enabled
    finally:
        iface.close()


@pytest.mark.parametrize("role", profiles.ROLES)
def test_filled_profiles_parse_strictly_and_carry_this_networks_channel(
    role: str, network: NetworkProfile
) -> None:
    text = profiles.filled_yaml(role, network)
    assert "SIGNALFIRE_" not in text
    assert "holds the channel key" in text
    target = profiles.target(role, network)  # strict protobuf parse of every section
    assert target.channel.psk == network.channel_psk
    assert target.config["lora"]["region"] == "UA_868"


def test_a_misspelt_profile_key_fails_loudly(
    monkeypatch: pytest.MonkeyPatch, network: NetworkProfile
) -> None:
    # The library's setPref would skip it silently; the strict parse must not.
    broken = profiles.RoleProfile(
        name="relay",
        summary="broken",
        position_precision=0,
        config={"device": {"rebroadcastMod": "ALL"}},
        module_config={},
    )
    monkeypatch.setitem(profiles.PROFILES, "relay", broken)
    with pytest.raises(SignalfireError, match="radio profile relay is malformed"):
        profiles.target("relay", network)


def test_unknown_role_is_refused() -> None:
    with pytest.raises(SignalfireError, match="choose one of civilian, relay, gateway"):
        profiles.get_role("tower")


def test_canned_messages_are_words_the_gateway_reads() -> None:
    expected = {
        "SOS": (Status.SOS, set()),
        "SAFE": (Status.SAFE, set()),
        "MEDICAL": (Status.MEDICAL, set()),
        "TRAPPED": (Status.TRAPPED, set()),
        "EVACUATE": (Status.EVACUATE, set()),
        "WATER": (Status.NEED_SUPPLIES, {Need.WATER}),
        "FOOD": (Status.NEED_SUPPLIES, {Need.FOOD}),
        "CANCEL": (Status.CANCEL, set()),
    }
    assert profiles.CANNED_MESSAGES.split("|") == list(expected)
    assert len(profiles.CANNED_MESSAGES) < 200  # the library's limit for canned messages
    for word, (status, needs) in expected.items():
        parsed = parse_message(word)
        assert parsed.status == status, word
        assert set(parsed.needs) == needs, word


def test_readme_airtime_table_is_current() -> None:
    readme = (FIRMWARE_CONFIG / "README.md").read_text()
    start = readme.index("<!-- airtime-table")
    body = readme[readme.index("\n", start) + 1 : readme.index("<!-- end airtime-table")]
    assert body == profiles.airtime_table()
    assert "| LONG_FAST (250/11/4-5) | 1.21 s | 1.46 s | 1.50 s | 296 | 29 |" in body

"""`signalfire radio provision` against the emulated radio, through the real meshtastic library.

The emulator here reboots after a commit, as the firmware does, so provisioning has to
reconnect to read the config back.
"""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from meshtastic.protobuf import channel_pb2, config_pb2

from signalfire.cli import main
from signalfire.profile import NetworkProfile, init_network, load_profile
from signalfire.radio.emulator import EmulatedDevice
from signalfire.radio.virtual_mesh import InMemoryMesh

from .conftest import connect_tcp, tcp_port

Role = config_pb2.Config.DeviceConfig.Role
Rebroadcast = config_pb2.Config.DeviceConfig.RebroadcastMode


@pytest.fixture
def network(tmp_path: Path) -> tuple[Path, NetworkProfile]:
    profile, _ = init_network(tmp_path / "net", "town", region="EU_868")
    return tmp_path / "net" / "network.json", profile


@pytest.fixture
def rebooting_device() -> Iterator[EmulatedDevice]:
    radio = EmulatedDevice(
        InMemoryMesh.generate(2, seed=11), seed=11, reboots=True, reboot_delay=0.2
    )
    radio.start()
    yield radio
    radio.stop()


def provision(device: EmulatedDevice, role: str, network_json: Path, *extra: str) -> Any:
    args = ["radio", "provision", "--radio", f"tcp:127.0.0.1:{tcp_port(device)}"]
    args += ["--profile", role, "--network", str(network_json), "--settle", "0.5"]
    args += ["--connect-timeout", "10", *extra]
    return CliRunner().invoke(main, args, input=None if "--yes" in extra else "y\n")


def secret_forms(psk: bytes) -> list[str]:
    return [psk.hex(), base64.b64encode(psk).decode(), base64.urlsafe_b64encode(psk).decode()]


def test_civilian_profile_is_shown_written_after_a_yes_and_read_back(
    rebooting_device: EmulatedDevice, network: tuple[Path, NetworkProfile]
) -> None:
    device = rebooting_device
    network_json, profile = network
    result = provision(device, "civilian", network_json)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "channel 0 name: 'signalfire' -> 'town'" in out
    assert "channel 0 key: another key (32 bytes" in out
    assert "-> the network's channel key" in out
    assert "channel 0 position_precision: 32 -> 13" in out
    assert "canned messages: '' -> 'SOS|SAFE|MEDICAL|TRAPPED|EVACUATE|WATER|FOOD|CANCEL'" in out
    assert "write them to the radio?" in out
    assert "holds the civilian profile (read back and checked)" in out
    for secret in secret_forms(profile.channel_psk):
        assert secret not in out
    # Written through an edit transaction, and the radio rebooted on commit.
    kinds = [m.WhichOneof("payload_variant") for m in device.admin_messages]
    assert kinds.index("begin_edit_settings") < kinds.index("set_channel")
    assert kinds[-1] != "begin_edit_settings" and "commit_edit_settings" in kinds
    assert device.reboot_count == 1

    # What a fresh client sees after the reboot.
    iface = connect_tcp(device)
    try:
        node = iface.localNode
        primary = node.channels[0]
        assert primary.role == channel_pb2.Channel.Role.PRIMARY
        assert primary.settings.name == "town"
        assert primary.settings.psk == profile.channel_psk
        assert primary.settings.module_settings.position_precision == 13
        assert not primary.settings.uplink_enabled
        config = node.localConfig
        assert config.device.role == Role.CLIENT
        assert config.device.rebroadcast_mode == Rebroadcast.ALL
        assert config.lora.region == config_pb2.Config.LoRaConfig.RegionCode.EU_868
        assert config.lora.modem_preset == config_pb2.Config.LoRaConfig.ModemPreset.LONG_FAST
        assert config.lora.hop_limit == 3 and config.lora.tx_enabled
        assert not config.position.position_broadcast_smart_enabled
        assert node.moduleConfig.canned_message.enabled
        assert node.get_canned_message() == "SOS|SAFE|MEDICAL|TRAPPED|EVACUATE|WATER|FOOD|CANCEL"
    finally:
        iface.close()

    again = provision(device, "civilian", network_json)
    assert again.exit_code == 0, again.output
    assert "already holds the civilian profile; nothing written" in again.output
    assert device.reboot_count == 1


def test_relay_and_gateway_profiles_keep_the_radio_keys_and_cap_other_channels(
    rebooting_device: EmulatedDevice, network: tuple[Path, NetworkProfile]
) -> None:
    device = rebooting_device
    network_json, _ = network
    # An operator's extra channel that shares exact positions.
    extra = device.state.channels[1]
    extra.role = channel_pb2.Channel.Role.SECONDARY
    extra.settings.name = "family"
    extra.settings.psk = bytes(range(16))
    extra.settings.module_settings.position_precision = 32
    keys = (device.state.config.security.private_key, device.state.config.security.public_key)

    relay = provision(device, "relay", network_json, "--yes")
    assert relay.exit_code == 0, relay.output
    assert "channel 1 (family) position_precision: 32 -> 0" in relay.output
    assert "write them to the radio?" not in relay.output
    config = device.state.config
    assert config.device.role == Role.ROUTER
    # Never CORE_PORTNUMS_ONLY: it drops signalfire's private port.
    assert config.device.rebroadcast_mode == Rebroadcast.ALL
    assert not config.bluetooth.enabled
    assert device.state.channels[0].settings.module_settings.position_precision == 0
    assert device.state.channels[1].settings.module_settings.position_precision == 0
    assert device.state.channels[1].settings.name == "family"

    gateway = provision(device, "gateway", network_json, "--yes")
    assert gateway.exit_code == 0, gateway.output
    assert "device.role: ROUTER -> CLIENT" in gateway.output
    config = device.state.config
    assert config.device.role == Role.CLIENT
    assert config.security.serial_enabled
    assert not device.state.module_config.mqtt.enabled
    assert (config.security.private_key, config.security.public_key) == keys
    assert "private_key" not in gateway.output
    assert device.reboot_count == 2


def test_a_no_writes_nothing(
    device: EmulatedDevice, network: tuple[Path, NetworkProfile], tmp_path: Path
) -> None:
    network_json, _ = network
    args = ["radio", "provision", "--radio", f"tcp:127.0.0.1:{tcp_port(device)}"]
    args += ["--profile", "relay", "--network", str(network_json), "--settle", "0"]
    result = CliRunner().invoke(main, args, input="n\n")
    assert result.exit_code == 1
    assert "nothing written" in result.output
    assert not any(
        m.WhichOneof("payload_variant").startswith("set_") for m in device.admin_messages
    )
    assert device.state.config.device.role == Role.CLIENT


def test_a_radio_that_refuses_is_reported(
    device: EmulatedDevice, network: tuple[Path, NetworkProfile]
) -> None:
    network_json, _ = network
    device.state.config.security.is_managed = True  # only a remote admin may change it
    result = provision(device, "relay", network_json, "--yes")
    assert result.exit_code == 1
    assert "did not take the relay profile" in result.output
    assert "NO_RESPONSE" in result.output
    assert "device.role is CLIENT, wanted ROUTER" in result.output


def test_bad_inputs_get_clear_errors_before_any_radio_is_touched(
    device: EmulatedDevice, network: tuple[Path, NetworkProfile], tmp_path: Path
) -> None:
    network_json, profile = network
    obj = json.loads(network_json.read_text())

    no_region = tmp_path / "no-region.json"
    del obj["radio"]["region"]
    no_region.write_text(json.dumps(obj))
    result = provision(device, "civilian", no_region, "--yes")
    assert result.exit_code == 1
    assert "names no LoRa region; give --region" in result.output

    public_key = tmp_path / "public-channel.json"
    obj["radio"]["channel_psk"] = "AQ=="
    public_key.write_text(json.dumps(obj))
    result = provision(device, "civilian", public_key, "--yes", "--region", "EU_868")
    assert result.exit_code == 1
    assert "no private channel key" in result.output

    broken = tmp_path / "broken.json"
    obj["radio"]["channel_psk"] = "AAAA"  # three bytes: no AES key length
    broken.write_text(json.dumps(obj))
    result = provision(device, "civilian", broken, "--yes")
    assert result.exit_code == 1
    assert "must decode to 0, 1, 16 or 32 bytes" in result.output

    result = provision(device, "civilian", network_json, "--yes", "--region", "MARS")
    assert result.exit_code == 1
    assert "'MARS' is not a Meshtastic region" in result.output
    assert device.admin_messages == []

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    args = ["radio", "provision", "--radio", f"tcp:127.0.0.1:{closed}", "--profile", "relay"]
    args += ["--network", str(network_json), "--connect-timeout", "1"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert "cannot reach the radio" in result.output
    assert load_profile(network_json) == profile

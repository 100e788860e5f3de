"""What an emulated radio keeps in flash: identity, owner, channels, config, module config.

Defaults follow a freshly flashed 2.7 firmware, with the region set (a radio with an
UNSET region does not transmit) and one primary channel with its own key.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from meshtastic.protobuf import (
    channel_pb2,
    config_pb2,
    localonly_pb2,
    mesh_pb2,
)

from signalfire.radio.mesh_protocol import node_id
from signalfire.radio.packets import position_message
from signalfire.radio.virtual_mesh import DEFAULT_CENTRE, random_node_num, x25519_keypair

FIRMWARE_VERSION = "2.7.26.5ab1e00"  # shaped like a real build string; clients parse the numbers
DEVICE_STATE_VERSION = 24
MIN_APP_VERSION = 30200
MAX_CHANNELS = 8

LoRa = config_pb2.Config.LoRaConfig
Role = config_pb2.Config.DeviceConfig.Role

# Config sections in the order of their Config oneof tags: the firmware walks them that way.
CONFIG_SECTIONS = (
    "device", "position", "power", "network", "display", "lora", "bluetooth", "security",
)  # fmt: skip
MODULE_SECTIONS = tuple(
    f.name
    for f in sorted(localonly_pb2.LocalModuleConfig.DESCRIPTOR.fields, key=lambda f: f.number)
    if f.name != "version"
)


@dataclass
class DeviceState:
    node_num: int
    owner: Any  # mesh_pb2.User
    config: Any  # localonly_pb2.LocalConfig
    module_config: Any  # localonly_pb2.LocalModuleConfig
    channels: list[Any]  # channel_pb2.Channel, always MAX_CHANNELS of them
    device_id: bytes
    position: Any | None = None  # mesh_pb2.Position, None when the radio has no fix
    session_passkey: bytes = b""
    canned_messages: str = ""
    ringtone: str = ""
    favorites: set[int] = field(default_factory=set)
    ignored: set[int] = field(default_factory=set)

    @property
    def node_id(self) -> str:
        return node_id(self.node_num)

    def my_info(self, *, nodedb_count: int) -> Any:
        return mesh_pb2.MyNodeInfo(
            my_node_num=self.node_num,
            reboot_count=1,
            min_app_version=MIN_APP_VERSION,
            device_id=self.device_id,
            pio_env="signalfire-emulator",
            nodedb_count=nodedb_count,
        )

    def metadata(self) -> Any:
        return mesh_pb2.DeviceMetadata(
            firmware_version=FIRMWARE_VERSION,
            device_state_version=DEVICE_STATE_VERSION,
            canShutdown=True,
            hasWifi=False,
            hasBluetooth=True,
            role=self.config.device.role,
            position_flags=self.config.position.position_flags,
            hw_model=self.owner.hw_model,
            hasPKC=True,
        )

    def own_node_info(self, *, now: int) -> Any:
        info = mesh_pb2.NodeInfo(num=self.node_num, last_heard=now, is_favorite=True)
        info.user.CopyFrom(self.owner)
        if self.position is not None:
            info.position.CopyFrom(self.position)
            info.position.time = now
        return info


def default_state(
    *,
    seed: int = 0,
    node_num: int | None = None,
    long_name: str = "Signalfire Gateway",
    short_name: str = "SFGW",
    region: int = LoRa.RegionCode.EU_868,
    modem_preset: int = LoRa.ModemPreset.LONG_FAST,
    channel_name: str = "signalfire",
    channel_psk: bytes | None = None,
    position: tuple[float, float] | None = DEFAULT_CENTRE,
    avoid_nums: set[int] | None = None,
) -> DeviceState:
    # Seeded so that a test or demo radio is the same radio every run; its keys are not secret.
    rng = random.Random(f"signalfire-emulated-device:{seed}")  # noqa: S311
    num = node_num if node_num is not None else random_node_num(rng, set(avoid_nums or ()))
    private_key, public_key = x25519_keypair(rng)
    owner = mesh_pb2.User(
        id=node_id(num),
        long_name=long_name,
        short_name=short_name,
        macaddr=num.to_bytes(6, "big"),
        hw_model=mesh_pb2.HardwareModel.PORTDUINO,
        role=Role.CLIENT,
        public_key=public_key,
    )
    config = localonly_pb2.LocalConfig(version=DEVICE_STATE_VERSION)
    config.device.role = Role.CLIENT
    config.device.node_info_broadcast_secs = 10800
    config.device.serial_enabled = True
    config.position.position_broadcast_secs = 900
    config.position.position_broadcast_smart_enabled = True
    config.position.gps_update_interval = 120
    config.position.gps_mode = config_pb2.Config.PositionConfig.GpsMode.ENABLED
    config.position.fixed_position = position is not None
    config.power.ls_secs = 300
    config.power.min_wake_secs = 10
    config.power.wait_bluetooth_secs = 60
    config.network.ntp_server = "meshtastic.pool.ntp.org"
    config.display.screen_on_secs = 600
    config.lora.use_preset = True
    config.lora.modem_preset = modem_preset
    config.lora.region = region
    config.lora.hop_limit = 3
    config.lora.tx_enabled = True
    config.lora.sx126x_rx_boosted_gain = True
    config.bluetooth.enabled = True
    config.bluetooth.mode = config_pb2.Config.BluetoothConfig.PairingMode.RANDOM_PIN
    config.bluetooth.fixed_pin = 123456
    # The firmware hands its private key to the local API client; so does the emulator.
    config.security.public_key = public_key
    config.security.private_key = private_key
    config.security.serial_enabled = True

    module_config = localonly_pb2.LocalModuleConfig(version=DEVICE_STATE_VERSION)
    for name in MODULE_SECTIONS:
        getattr(module_config, name).SetInParent()
    module_config.mqtt.address = "mqtt.meshtastic.org"
    module_config.mqtt.username = "meshdev"
    module_config.mqtt.password = "large4cats"  # noqa: S105 - the firmware's public default
    module_config.mqtt.encryption_enabled = True
    module_config.mqtt.root = "msh"
    module_config.telemetry.device_update_interval = 1800
    module_config.neighbor_info.update_interval = 10800

    channels = []
    for index in range(MAX_CHANNELS):
        channel = channel_pb2.Channel(index=index, role=channel_pb2.Channel.Role.DISABLED)
        if index == 0:
            channel.role = channel_pb2.Channel.Role.PRIMARY
            channel.settings.name = channel_name
            channel.settings.psk = channel_psk if channel_psk is not None else rng.randbytes(32)
            channel.settings.module_settings.position_precision = 32
        channels.append(channel)

    return DeviceState(
        node_num=num,
        owner=owner,
        config=config,
        module_config=module_config,
        channels=channels,
        device_id=rng.randbytes(16),
        position=None if position is None else position_message(*position, altitude=990),
        session_passkey=rng.randbytes(8),
    )

"""`signalfire radio provision`: put a radio on a network's profile, through the meshtastic
library's own admin messages, and check by reading it back.

The steps mirror `meshtastic --configure`: an edit transaction (begin, writes, commit),
the channel, the canned messages, then each config and module-config section, each
section starting from the radio's own values so that fields the profile does not name
(the radio's PKI keys among them) stay as they are. The firmware saves and reboots on
commit, so the check reconnects and reads the whole config again through the want_config
handshake: what it reports is what the radio kept, not what we sent.

Never shown or logged: the channel key (only whether it is the network's), and the radio's
private key (the profile does not touch it).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format  # type: ignore[import-untyped, unused-ignore]
from pubsub import pub

from ..errors import SignalfireError
from .api import RadioError
from .meshtastic_radio import RadioSpec, parse_spec
from .profiles import Target

log = logging.getLogger(__name__)

DEFAULT_SETTLE = 12.0  # the firmware reboots 7 s after a commit (DEFAULT_REBOOT_SECONDS)
CANNED_READ_TIMEOUT = 10.0


class ProvisionError(SignalfireError):
    pass


@dataclass(frozen=True)
class Change:
    what: str
    old: str
    new: str

    def __str__(self) -> str:
        return f"{self.what}: {self.old} -> {self.new}"


@dataclass
class Snapshot:
    """What a radio holds, read through the library after the config handshake."""

    node_id: str
    local_config: Any
    module_config: Any
    channels: list[Any]
    canned_messages: str | None  # None: the radio did not say


@dataclass
class Outcome:
    node_id: str
    changes: list[Change]
    written: bool
    refusals: list[str] = field(default_factory=list)


# -- reading -------------------------------------------------------------------------------


def connect(spec: RadioSpec, timeout: float) -> Any:
    """One library interface to the radio, or RadioError with the reason."""
    seconds = max(1, int(timeout))
    try:
        if spec.kind == "serial":
            from meshtastic.serial_interface import SerialInterface

            return SerialInterface(devPath=spec.target, timeout=seconds)
        if spec.kind == "tcp":
            from meshtastic.tcp_interface import TCPInterface

            return TCPInterface(spec.target, portNumber=spec.port, timeout=seconds)
        from meshtastic.ble_interface import BLEInterface

        return BLEInterface(spec.target, timeout=seconds)
    except SystemExit as exc:  # some library paths call sys.exit
        raise RadioError(f"the meshtastic library gave up on {spec}: {exc.code}") from None
    except ImportError as exc:
        raise RadioError(f"Bluetooth is not available here ({exc})") from None
    except Exception as exc:
        raise RadioError(f"cannot reach the radio {spec}: {type(exc).__name__}: {exc}") from None


def connect_retrying(spec: RadioSpec, timeout: float) -> Any:
    """Connect, trying again until ``timeout`` (a radio that is rebooting refuses at first)."""
    deadline = time.monotonic() + timeout
    delay = 0.25
    while True:
        try:
            return connect(spec, max(1.0, deadline - time.monotonic()))
        except RadioError:
            if time.monotonic() + delay >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


def _canned_messages(iface: Any) -> str | None:
    """The canned messages, or None if the radio does not answer in time.

    The library waits for the answer in an endless loop, so the call runs on a thread of
    its own that is left behind (a daemon) if the radio stays silent.
    """
    result: list[str | None] = []

    def ask() -> None:
        with contextlib.suppress(Exception, SystemExit):
            result.append(iface.localNode.get_canned_message())

    thread = threading.Thread(target=ask, name="canned-message-read", daemon=True)
    thread.start()
    thread.join(CANNED_READ_TIMEOUT)
    return result[0] if result else None


def read_snapshot(iface: Any, *, canned: bool) -> Snapshot:
    from meshtastic.protobuf import channel_pb2, localonly_pb2

    node = iface.localNode
    local = localonly_pb2.LocalConfig()
    local.CopyFrom(node.localConfig)
    modules = localonly_pb2.LocalModuleConfig()
    modules.CopyFrom(node.moduleConfig)
    channels = []
    for channel in node.channels or []:
        copy = channel_pb2.Channel()
        copy.CopyFrom(channel)
        channels.append(copy)
    number = iface.myInfo.my_node_num if iface.myInfo else 0
    return Snapshot(
        node_id=f"!{number:08x}",
        local_config=local,
        module_config=modules,
        channels=channels,
        canned_messages=_canned_messages(iface) if canned else None,
    )


# -- comparing -----------------------------------------------------------------------------


def _field(message: Any, json_name: str) -> Any:
    for descriptor in message.DESCRIPTOR.fields:
        if json_name in (descriptor.json_name, descriptor.name):
            return descriptor
    raise ProvisionError(f"{message.DESCRIPTOR.name} has no field {json_name}")


def _show(message: Any, descriptor: Any) -> str:
    value = getattr(message, descriptor.name)
    if descriptor.enum_type is not None:
        enum_value = descriptor.enum_type.values_by_number.get(value)
        return enum_value.name if enum_value is not None else str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    return str(value)


def _section_changes(
    kind: str, current_root: Any, sections: dict[str, dict[str, Any]]
) -> list[Change]:
    changes = []
    for name, fields in sections.items():
        current = getattr(current_root, name)
        wanted = type(current)()
        json_format.ParseDict(fields, wanted)
        for json_name in fields:
            descriptor = _field(wanted, json_name)
            old, new = _show(current, descriptor), _show(wanted, descriptor)
            if old != new:
                changes.append(Change(f"{kind}{name}.{descriptor.name}", old, new))
    return changes


def _key_name(psk: bytes, network_psk: bytes) -> str:
    if psk == network_psk:
        return "the network's channel key"
    if len(psk) == 0:
        return "no key (unencrypted)"
    if len(psk) == 1:
        return "the public default key" if psk == b"\x01" else "a public one-byte key"
    # A short fingerprint tells two keys apart without showing either.
    return f"another key ({len(psk)} bytes, sha256 {hashlib.sha256(psk).hexdigest()[:8]})"


def _channel_changes(channels: list[Any], target: Target) -> list[Change]:
    from meshtastic.protobuf import channel_pb2

    Role = channel_pb2.Channel.Role
    changes = []
    wanted = target.channel
    primary = channels[0] if channels else channel_pb2.Channel()
    if primary.role != Role.PRIMARY:
        changes.append(Change("channel 0 role", Role.Name(primary.role), "PRIMARY"))
    have = primary.settings
    if have.name != wanted.name:
        changes.append(Change("channel 0 name", repr(have.name), repr(wanted.name)))
    if have.psk != wanted.psk:
        changes.append(
            Change(
                "channel 0 key",
                _key_name(have.psk, wanted.psk),
                _key_name(wanted.psk, wanted.psk),
            )
        )
    for attr in ("uplink_enabled", "downlink_enabled"):
        if getattr(have, attr) != getattr(wanted, attr):
            changes.append(
                Change(f"channel 0 {attr}", str(getattr(have, attr)), str(getattr(wanted, attr)))
            )
    have_bits = have.module_settings.position_precision
    want_bits = wanted.module_settings.position_precision
    if have_bits != want_bits:
        changes.append(Change("channel 0 position_precision", str(have_bits), str(want_bits)))
    for channel in channels[1:]:
        bits = channel.settings.module_settings.position_precision
        if channel.role != Role.DISABLED and bits > want_bits:
            changes.append(
                Change(
                    f"channel {channel.index} ({channel.settings.name or 'unnamed'}) "
                    "position_precision",
                    str(bits),
                    str(want_bits),
                )
            )
    return changes


def plan(snapshot: Snapshot, target: Target) -> list[Change]:
    """Every difference between the radio and the profile, in the order they are written."""
    changes = _channel_changes(snapshot.channels, target)
    if target.canned_messages is not None and snapshot.canned_messages != target.canned_messages:
        old = "(unknown)" if snapshot.canned_messages is None else repr(snapshot.canned_messages)
        changes.append(Change("canned messages", old, repr(target.canned_messages)))
    changes += _section_changes("", snapshot.local_config, target.config)
    changes += _section_changes("module ", snapshot.module_config, target.module_config)
    return changes


# -- writing -------------------------------------------------------------------------------


class _Refusals:
    """Routing errors the radio sends back while we write (pubsub holds a weak reference
    to the bound method: this object lives as long as the write)."""

    def __init__(self, node_num: int) -> None:
        self.node_num = node_num
        self.errors: list[str] = []

    def on_receive(self, packet: dict[str, Any], interface: Any) -> None:
        decoded = packet.get("decoded") or {}
        if decoded.get("portnum") != "ROUTING_APP" or packet.get("from") != self.node_num:
            return
        reason = (decoded.get("routing") or {}).get("errorReason", "NONE")
        if reason != "NONE":
            self.errors.append(str(reason))


def apply(iface: Any, snapshot: Snapshot, target: Target) -> list[str]:
    """Write the profile; returns the routing errors the radio answered with, if any."""
    from meshtastic.protobuf import channel_pb2

    node = iface.localNode
    refusals = _Refusals(iface.myInfo.my_node_num)
    pub.subscribe(refusals.on_receive, "meshtastic.receive")
    try:
        node.beginSettingsTransaction()
        primary = node.channels[0]
        primary.role = channel_pb2.Channel.Role.PRIMARY
        primary.index = 0
        primary.settings.CopyFrom(target.channel)
        node.writeChannel(0)
        ceiling = target.channel.module_settings.position_precision
        for channel in node.channels[1:]:
            settings = channel.settings
            if (
                channel.role != channel_pb2.Channel.Role.DISABLED
                and settings.module_settings.position_precision > ceiling
            ):
                settings.module_settings.position_precision = ceiling
                node.writeChannel(channel.index)
        if target.canned_messages is not None:
            node.set_canned_message(target.canned_messages)
        for name, fields in target.config.items():
            json_format.ParseDict(fields, getattr(node.localConfig, name))
            node.writeConfig(name)
        for name, fields in target.module_config.items():
            json_format.ParseDict(fields, getattr(node.moduleConfig, name))
            node.writeConfig(name)
        node.commitSettingsTransaction()
        # The library does not wait for answers to local admin messages; give the last
        # ones a moment to come back before the connection goes.
        time.sleep(0.5)
    except SystemExit as exc:
        raise ProvisionError(f"the meshtastic library gave up while writing: {exc.code}") from None
    finally:
        pub.unsubscribe(refusals.on_receive, "meshtastic.receive")
    return refusals.errors


def provision(
    radio: str | RadioSpec,
    target: Target,
    *,
    confirm: Callable[[str, list[Change]], bool],
    connect_timeout: float = 30.0,
    settle: float = DEFAULT_SETTLE,
) -> Outcome:
    """Read the radio, show ``confirm`` the changes, write them, reboot-wait, read back.

    Raises ProvisionError when the radio refused a write or did not keep a value.
    """
    spec = parse_spec(radio) if isinstance(radio, str) else radio
    canned = target.canned_messages is not None
    iface = connect(spec, connect_timeout)
    try:
        before = read_snapshot(iface, canned=canned)
        changes = plan(before, target)
        if not changes or not confirm(before.node_id, changes):
            return Outcome(before.node_id, changes, written=False)
        refusals = apply(iface, before, target)
    finally:
        with contextlib.suppress(Exception, SystemExit):
            iface.close()

    time.sleep(settle)  # the firmware saves, then reboots; reconnecting early races it
    iface = connect_retrying(spec, connect_timeout)
    try:
        after = read_snapshot(iface, canned=canned)
    finally:
        with contextlib.suppress(Exception, SystemExit):
            iface.close()
    left = plan(after, target)
    if refusals or left:
        problems = [f"the radio answered {reason}" for reason in refusals]
        problems += [f"{c.what} is {c.old}, wanted {c.new}" for c in left]
        raise ProvisionError(
            f"radio {after.node_id} did not take the {target.role.name} profile: "
            + "; ".join(problems)
        )
    return Outcome(after.node_id, changes, written=True, refusals=refusals)

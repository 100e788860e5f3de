"""Local admin messages (ADMIN_APP addressed to the device itself), as AdminModule answers them.

Getters answer with the matching *_response; setters change the device state and get only
the routing ack that the firmware generates for any request with want_response. Requests
the emulator does not model are recorded by the caller and acked, never refused, because
that is what a real radio does with a message no module claims.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from meshtastic.protobuf import admin_pb2, config_pb2, mesh_pb2, module_config_pb2

from signalfire.radio.device_state import (
    CONFIG_SECTIONS,
    MAX_CHANNELS,
    MODULE_SECTIONS,
    DeviceState,
)

AdminMessage = admin_pb2.AdminMessage
RoutingError = mesh_pb2.Routing.Error

_CONFIG_TYPE_TO_SECTION = {
    AdminMessage.ConfigType.Value(f"{name.upper()}_CONFIG"): name for name in CONFIG_SECTIONS
}
# ModuleConfigType numbers follow the order of the ModuleConfig oneof.
_MODULE_TYPE_TO_SECTION = {
    index: field.name
    for index, field in enumerate(
        module_config_pb2.ModuleConfig.DESCRIPTOR.oneofs_by_name["payload_variant"].fields
    )
    if field.name in MODULE_SECTIONS
}


@dataclass
class AdminOutcome:
    reply: Any | None = None  # AdminMessage to send back (session_passkey is added by the caller)
    error: int = RoutingError.NONE  # routing error to send instead of a reply
    removed_node: int | None = None  # the node database lost this node


def handle_admin(state: DeviceState, request: Any, *, now: int) -> AdminOutcome:
    variant = request.WhichOneof("payload_variant")
    if variant is None:
        return AdminOutcome()
    handler = _HANDLERS.get(variant)
    if handler is None:
        return AdminOutcome()
    return handler(state, request, now)


def _get_owner(state: DeviceState, request: Any, now: int) -> AdminOutcome:
    reply = AdminMessage()
    reply.get_owner_response.CopyFrom(state.owner)
    return AdminOutcome(reply)


def _get_channel(state: DeviceState, request: Any, now: int) -> AdminOutcome:
    index = request.get_channel_request - 1  # the request is index + 1 so that 0 means unset
    if not 0 <= index < MAX_CHANNELS:
        return AdminOutcome(error=RoutingError.BAD_REQUEST)
    reply = AdminMessage()
    reply.get_channel_response.CopyFrom(state.channels[index])
    return AdminOutcome(reply)


def _get_config(state: DeviceState, request: Any, now: int) -> AdminOutcome:
    reply = AdminMessage()
    kind = request.get_config_request
    section = _CONFIG_TYPE_TO_SECTION.get(kind)
    if section is not None:
        getattr(reply.get_config_response, section).CopyFrom(getattr(state.config, section))
    elif kind == AdminMessage.ConfigType.SESSIONKEY_CONFIG:
        reply.get_config_response.sessionkey.SetInParent()
    elif kind == AdminMessage.ConfigType.DEVICEUI_CONFIG:
        reply.get_config_response.device_ui.SetInParent()
    else:
        return AdminOutcome(error=RoutingError.BAD_REQUEST)
    return AdminOutcome(reply)


def _get_module_config(state: DeviceState, request: Any, now: int) -> AdminOutcome:
    section = _MODULE_TYPE_TO_SECTION.get(request.get_module_config_request)
    if section is None:
        return AdminOutcome(error=RoutingError.BAD_REQUEST)
    reply = AdminMessage()
    getattr(reply.get_module_config_response, section).CopyFrom(
        getattr(state.module_config, section)
    )
    return AdminOutcome(reply)


def _get_metadata(state: DeviceState, request: Any, now: int) -> AdminOutcome:
    reply = AdminMessage()
    reply.get_device_metadata_response.CopyFrom(state.metadata())
    return AdminOutcome(reply)


def _get_canned(state: DeviceState, request: Any, now: int) -> AdminOutcome:
    return AdminOutcome(
        AdminMessage(get_canned_message_module_messages_response=state.canned_messages)
    )


def _get_ringtone(state: DeviceState, request: Any, now: int) -> AdminOutcome:
    return AdminOutcome(AdminMessage(get_ringtone_response=state.ringtone))


def _set_owner(state: DeviceState, request: Any, now: int) -> AdminOutcome:
    new = request.set_owner
    for name in (new.long_name, new.short_name):
        if name and not name.strip():
            return AdminOutcome(error=RoutingError.BAD_REQUEST)
    if new.long_name:
        state.owner.long_name = new.long_name[:39]
    if new.short_name:
        state.owner.short_name = new.short_name[:4]
    state.owner.is_licensed = new.is_licensed
    if new.HasField("is_unmessagable"):
        state.owner.is_unmessagable = new.is_unmessagable
    return AdminOutcome()


def _set_config(state: DeviceState, request: Any, now: int) -> AdminOutcome:
    new = request.set_config
    section = new.WhichOneof("payload_variant")
    if section == "lora" and new.lora.region == config_pb2.Config.LoRaConfig.RegionCode.LORA_24:
        return AdminOutcome(error=RoutingError.BAD_REQUEST)  # no 2.4 GHz front end here
    if section in CONFIG_SECTIONS:
        getattr(state.config, section).CopyFrom(getattr(new, section))
        if section == "device":
            state.owner.role = state.config.device.role
    return AdminOutcome()


def _set_module_config(state: DeviceState, request: Any, now: int) -> AdminOutcome:
    section = request.set_module_config.WhichOneof("payload_variant")
    if section not in MODULE_SECTIONS:
        return AdminOutcome(error=RoutingError.BAD_REQUEST)
    getattr(state.module_config, section).CopyFrom(getattr(request.set_module_config, section))
    return AdminOutcome()


def _set_channel(state: DeviceState, request: Any, now: int) -> AdminOutcome:
    index = request.set_channel.index
    if not 0 <= index < MAX_CHANNELS:
        return AdminOutcome(error=RoutingError.BAD_REQUEST)
    state.channels[index].CopyFrom(request.set_channel)
    return AdminOutcome()


def _set_canned(state: DeviceState, request: Any, now: int) -> AdminOutcome:
    state.canned_messages = request.set_canned_message_module_messages
    return AdminOutcome()


def _set_ringtone(state: DeviceState, request: Any, now: int) -> AdminOutcome:
    state.ringtone = request.set_ringtone_message
    return AdminOutcome()


def _set_fixed_position(state: DeviceState, request: Any, now: int) -> AdminOutcome:
    state.position = mesh_pb2.Position()
    state.position.CopyFrom(request.set_fixed_position)
    state.config.position.fixed_position = True
    return AdminOutcome()


def _remove_fixed_position(state: DeviceState, request: Any, now: int) -> AdminOutcome:
    state.position = None
    state.config.position.fixed_position = False
    return AdminOutcome()


def _favorite(state: DeviceState, request: Any, now: int) -> AdminOutcome:
    variant = request.WhichOneof("payload_variant")
    num = getattr(request, variant)
    target = state.favorites if "favorite" in variant else state.ignored
    if variant.startswith("set_"):
        target.add(num)
    else:
        target.discard(num)
    return AdminOutcome()


def _remove_node(state: DeviceState, request: Any, now: int) -> AdminOutcome:
    return AdminOutcome(removed_node=request.remove_by_nodenum)


_HANDLERS = {
    "get_owner_request": _get_owner,
    "get_channel_request": _get_channel,
    "get_config_request": _get_config,
    "get_module_config_request": _get_module_config,
    "get_device_metadata_request": _get_metadata,
    "get_canned_message_module_messages_request": _get_canned,
    "get_ringtone_request": _get_ringtone,
    "set_owner": _set_owner,
    "set_config": _set_config,
    "set_module_config": _set_module_config,
    "set_channel": _set_channel,
    "set_canned_message_module_messages": _set_canned,
    "set_ringtone_message": _set_ringtone,
    "set_fixed_position": _set_fixed_position,
    "remove_fixed_position": _remove_fixed_position,
    "set_favorite_node": _favorite,
    "remove_favorite_node": _favorite,
    "set_ignored_node": _favorite,
    "remove_ignored_node": _favorite,
    "remove_by_nodenum": _remove_node,
}

"""Device roles, as far as they change how a radio floods (Config.DeviceConfig.Role)."""

from __future__ import annotations

import enum

from meshtastic.protobuf import config_pb2

_Role = config_pb2.Config.DeviceConfig.Role


class Role(enum.IntEnum):
    """The roles the simulator models; values are the protobuf's."""

    CLIENT = _Role.CLIENT
    CLIENT_MUTE = _Role.CLIENT_MUTE
    ROUTER = _Role.ROUTER
    REPEATER = _Role.REPEATER
    ROUTER_LATE = _Role.ROUTER_LATE

    @classmethod
    def from_name(cls, name: str) -> Role:
        key = name.strip().upper().replace("-", "_")
        try:
            return cls[key]
        except KeyError:
            known = ", ".join(r.name for r in cls)
            raise ValueError(f"unknown role {name!r}; the simulator models {known}") from None

    @property
    def rebroadcasts(self) -> bool:
        """FloodingRouter::isRebroadcaster (rebroadcast_mode ALL assumed)."""
        return self is not Role.CLIENT_MUTE

    @property
    def cancels_on_duplicate(self) -> bool:
        """FloodingRouter::roleAllowsCancelingDupe: routers always relay."""
        return self in (Role.CLIENT, Role.CLIENT_MUTE)

    @property
    def rebroadcasts_early(self) -> bool:
        """RadioInterface::shouldRebroadcastEarlyLikeRouter: only ROUTER (and REPEATER)."""
        return self in (Role.ROUTER, Role.REPEATER)

"""A Meshtastic mesh simulator: radios with positions, managed flooding, LoRa airtime.

`MeshSimulator` (simulator.py) is the entry point; `Scenario` (scenario.py) describes what
it simulates. The layers, bottom up: topology (who hears whom), air (virtual time, the
shared channel, collisions), mac (when a radio may transmit), flooding (what a radio
relays, acks and retries), traffic (the packets civilians send).
"""

from signalfire.radio.mesh_sim.roles import Role
from signalfire.radio.mesh_sim.scenario import (
    Event,
    EventKind,
    LinkSpec,
    NodeKind,
    NodeSpec,
    RadioSettings,
    Scenario,
    ScenarioError,
    TrafficPlan,
    town,
)
from signalfire.radio.mesh_sim.simulator import MeshSimulator, Received

__all__ = [
    "Event",
    "EventKind",
    "LinkSpec",
    "MeshSimulator",
    "NodeKind",
    "NodeSpec",
    "RadioSettings",
    "Received",
    "Role",
    "Scenario",
    "ScenarioError",
    "TrafficPlan",
    "town",
]

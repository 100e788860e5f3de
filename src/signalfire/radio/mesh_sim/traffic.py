"""Turn scenario events into the packets civilians' radios send.

Signalfire reports are sealed for real: each civilian gets a signalfire identity
(`signalfire.sender.Identity`) in the scenario's keys directory, and the first report a
civilian sends in a run follows that identity's key announcement (at the report's
priority), as the `signalfire send` client does on first contact: the report goes to the
radio once the announcement has been acked, implicitly or for real, or has given up.
The network profile is the scenario's, or one made in the keys directory on first use
(the gateway side of a test or demo then reads its key from there).

This is the only part of the simulator that touches the disk; it runs before the
simulation starts so that sealing (and the fsync of every sender state) costs no
simulated or measured time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from meshtastic.protobuf import portnums_pb2

from signalfire import wire
from signalfire.profile import KEY_FILE, PROFILE_FILE, NetworkProfile, init_network, load_profile
from signalfire.radio.mesh_protocol import BROADCAST_NUM
from signalfire.radio.mesh_sim.scenario import Event, EventKind, NodeSpec, Scenario, ScenarioError
from signalfire.radio.packets import position_message
from signalfire.sender import Identity

PortNum = portnums_pb2.PortNum
NETWORK_NAME = "signalfire"


@dataclass(frozen=True)
class Outgoing:
    """One packet a virtual radio's application hands to its radio at `at`."""

    at: float
    sender: int
    dst: int
    portnum: int
    payload: bytes
    want_ack: bool
    pki: bool
    hop_limit: int
    label: str  # "report", "announcement", "text", "canned", "position"
    channel: int = 0
    then: Outgoing | None = None  # sent by the same radio once this one is settled

    def chain(self) -> list[Outgoing]:
        """This packet and those that follow it."""
        return [self, *(self.then.chain() if self.then is not None else [])]


@dataclass(frozen=True)
class NetworkKeys:
    profile: NetworkProfile
    key_path: Path | None  # the network private key, when the scenario made or knows it
    identities_dir: Path


def network_keys(scenario: Scenario, keys_dir: Path | None = None) -> NetworkKeys:
    """The network profile and where civilians' identities live (created when missing)."""
    directory = keys_dir or scenario.keys_dir
    if directory is None:
        raise ScenarioError(
            f"scenario {scenario.name!r} has signalfire reports: give it a directory for the "
            "civilians' identities ([signalfire] keys_dir in the file, --keys-dir, or "
            "MeshSimulator(keys_dir=...))"
        )
    directory = Path(directory)
    if scenario.network is not None:
        profile = load_profile(scenario.network)
        base = scenario.network if scenario.network.is_dir() else scenario.network.parent
        key_path: Path | None = base / KEY_FILE
        if not (base / KEY_FILE).exists():
            key_path = None  # a network whose key this machine does not hold
    else:
        network_dir = directory / "network"
        if (network_dir / PROFILE_FILE).exists():
            profile = load_profile(network_dir)
        else:
            profile, _ = init_network(network_dir, NETWORK_NAME)
        key_path = network_dir / KEY_FILE
    return NetworkKeys(profile, key_path, directory / "identities")


def _identity(keys: NetworkKeys, spec: NodeSpec) -> Identity:
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", spec.name).strip("_") or "node"
    path = keys.identities_dir / f"{slug}-{spec.num:08x}.key"
    if path.exists():
        return Identity.load(path)
    return Identity.create(path)


def build(scenario: Scenario, keys: NetworkKeys | None, start_time: int) -> list[Outgoing]:
    """Every packet the scenario's events make, in time order."""
    announced: set[int] = set()
    identities: dict[int, Identity] = {}
    out: list[Outgoing] = []
    for event in sorted(scenario.events, key=lambda e: e.at):
        spec = scenario.node(event.sender)
        dst = scenario.destination(event)
        want_ack = event.default_want_ack if event.want_ack is None else event.want_ack
        pki = (dst != BROADCAST_NUM) if event.pki is None else event.pki
        hop_limit = spec.hop_limit if event.hop_limit is None else event.hop_limit
        if event.kind is EventKind.REPORT:
            if keys is None:
                raise ScenarioError("signalfire reports need the network keys")
            identity = identities.get(spec.num) or _identity(keys, spec)
            identities[spec.num] = identity
            port = scenario.app_port or keys.profile.app_port
            report = _report(event, spec, start_time)
            sealed = identity.seal(keys.profile, report)
            packet = Outgoing(
                event.at,
                spec.num,
                dst,
                port,
                sealed.packet,
                want_ack,
                pki,
                hop_limit,
                "report",
                event.channel,
            )
            if spec.num not in announced:
                announced.add(spec.num)
                announcement, _ = identity.enrol(keys.profile)
                priority = wire.priority_of(report.status)
                urgent = wire.reannounce(announcement, identity.key, priority)
                packet = Outgoing(
                    event.at,
                    spec.num,
                    dst,
                    port,
                    urgent,
                    want_ack,
                    pki,
                    hop_limit,
                    "announcement",
                    event.channel,
                    then=packet,
                )
            out.append(packet)
        elif event.kind is EventKind.POSITION:
            position = position_message(
                spec.node.latitude,
                spec.node.longitude,
                altitude=spec.node.altitude,
                time=start_time + int(event.at),
                precision_bits=event.precision_bits,
            )
            out.append(
                Outgoing(
                    event.at,
                    spec.num,
                    dst,
                    PortNum.POSITION_APP,
                    position.SerializeToString(),
                    want_ack,
                    False,
                    hop_limit,
                    "position",
                    event.channel,
                )
            )
        else:
            out.append(
                Outgoing(
                    event.at,
                    spec.num,
                    dst,
                    PortNum.TEXT_MESSAGE_APP,
                    event.text.encode("utf-8"),
                    want_ack,
                    pki,
                    hop_limit,
                    event.kind.value,
                    event.channel,
                )
            )
    return out


def needs_keys(scenario: Scenario) -> bool:
    return any(event.kind is EventKind.REPORT for event in scenario.events)


def _report(event: Event, spec: NodeSpec, start_time: int) -> wire.Report:
    location = None
    if event.location is not None:
        location = wire.Location.from_degrees(*event.location, accuracy_m=event.accuracy_m)
    elif event.own_location:
        location = wire.Location.from_degrees(
            spec.node.latitude, spec.node.longitude, accuracy_m=event.accuracy_m
        )
    return wire.Report(
        status=event.status,
        time=start_time + int(event.at),
        people=event.people,
        needs=event.needs,
        location=location,
        text=event.text or None,
    )

"""A mesh scenario: the radios, the terrain they sit on, and what their owners send when.

Read from a TOML file (`Scenario.load`; `scenarios/town.toml` documents every key) or
built from options (`town`). Pure data: no keys are made and nothing is sealed here
(see `traffic`), so a scenario can be checked and printed without side effects.

Positions are given either as `lat`/`lon` or as `east_m`/`north_m` from the scenario
centre; heights either as `altitude` (metres above sea level) or as `height_m` above the
town's ground level. Times are seconds from the start of the run.
"""

from __future__ import annotations

import enum
import math
import random
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshtastic.protobuf import config_pb2, mesh_pb2

from signalfire.airtime import Preset, get_preset
from signalfire.errors import SignalfireError
from signalfire.radio.mesh_protocol import BROADCAST_NUM
from signalfire.radio.mesh_sim.roles import Role
from signalfire.radio.mesh_sim.topology import LinkAdjustment, Propagation, Site, offset
from signalfire.radio.virtual_mesh import (
    DEFAULT_CENTRE,
    VirtualNode,
    generate_nodes,
    random_node_num,
    x25519_keypair,
)
from signalfire.wire import Need, Status, needs_from_labels
from signalfire.wire.vocab import NO_NEEDS

RegionCode = config_pb2.Config.LoRaConfig.RegionCode
# Duty cycle per region (RadioInterface.cpp regions[]); every region not listed is 100 %.
DUTY_CYCLE_PERCENT = {
    "EU_433": 10.0,
    "EU_868": 10.0,
    "UA_433": 10.0,
    "UA_868": 1.0,
    "TH": 10.0,
    "EU_866": 2.5,
    "EU_N_868": 10.0,
}
DEFAULT_GROUND_ALTITUDE = 1000.0
HANDHELD_HEIGHT = 1.5  # a radio in a hand or a pocket
# What button-only devices offer as canned messages in these scenarios.
CANNED_MESSAGES = ("SOS", "SAFE", "MED", "WATER", "TRAPPED", "HELP")


class ScenarioError(SignalfireError):
    """A scenario file or option that cannot be simulated; the message says which."""


class NodeKind(enum.StrEnum):
    CIVILIAN = "civilian"
    RELAY = "relay"
    GATEWAY = "gateway"


class EventKind(enum.StrEnum):
    REPORT = "report"  # a signalfire report from the signalfire client (sealed for real)
    TEXT = "text"  # a stock text message from the Meshtastic app
    CANNED = "canned"  # a canned message from a button-only device (a text, on air)
    POSITION = "position"  # the radio's own position broadcast


@dataclass
class NodeSpec:
    """One radio of the scenario."""

    node: VirtualNode  # number, names, keys, position (shared with the trivial mesh)
    kind: NodeKind
    role: Role
    tx_power_dbm: float = 20.0
    antenna_gain_dbi: float = 0.0
    hop_limit: int = 3

    @property
    def name(self) -> str:
        return self.node.long_name

    @property
    def num(self) -> int:
        return self.node.num

    def site(self) -> Site:
        return Site(
            latitude=self.node.latitude,
            longitude=self.node.longitude,
            altitude=float(self.node.altitude),
            tx_power_dbm=self.tx_power_dbm,
            antenna_gain_dbi=self.antenna_gain_dbi,
        )


@dataclass(frozen=True)
class LinkSpec:
    a: str
    b: str
    extra_db: float = 0.0
    drop: float = 0.0


@dataclass(frozen=True)
class Event:
    at: float
    sender: str
    kind: EventKind
    to: str | None = None  # a node name; None broadcasts on the channel
    want_ack: bool | None = None  # None: what the sending app does by default
    pki: bool | None = None  # None: direct messages are PKI-encrypted
    hop_limit: int | None = None  # None: the sender's configured hop limit
    channel: int = 0
    # report
    status: Status = Status.SAFE
    people: int = 0
    needs: Need = NO_NEEDS
    location: tuple[float, float] | None = None  # None with own_location False: no location
    own_location: bool = True
    accuracy_m: float | None = 10.0
    # report, text and canned
    text: str = ""
    # position
    precision_bits: int = 32

    @property
    def default_want_ack(self) -> bool:
        if self.kind is EventKind.REPORT:
            return True  # `signalfire send` always asks for the mesh ack
        if self.kind is EventKind.POSITION:
            return False
        return self.to is not None  # the app asks for acks on direct messages


@dataclass(frozen=True)
class RadioSettings:
    region: str = "EU_868"
    preset: str = "LONG_FAST"
    hop_limit: int = 3
    frequency_mhz: float = 869.525
    noise_figure_db: float = 6.0
    ground_exponent: float = 3.5
    los_exponent: float = 2.6
    los_height_m: float = 150.0
    shadowing_db: float = 4.0
    fading_db: float = 2.0
    loss: float = 0.0
    capture_db: float = 6.0

    @property
    def modem(self) -> Preset:
        return get_preset(self.preset)

    @property
    def duty_cycle_percent(self) -> float:
        return DUTY_CYCLE_PERCENT.get(self.region, 100.0)


@dataclass
class Scenario:
    name: str = "scenario"
    seed: int = 0
    start_time: int | None = None  # Unix time at t=0; None: when the simulator is built
    duration: float = 600.0
    centre: tuple[float, float] = DEFAULT_CENTRE
    ground_altitude: float = DEFAULT_GROUND_ALTITUDE
    radio: RadioSettings = field(default_factory=RadioSettings)
    nodes: list[NodeSpec] = field(default_factory=list)
    links: list[LinkSpec] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    keys_dir: Path | None = None  # where civilians' signalfire identities live
    network: Path | None = None  # network.json (and network.key beside it)
    app_port: int | None = None  # None: the network profile's
    max_retransmits: int = 3
    gateways_know_nodes: bool = True

    # -- lookups -----------------------------------------------------------------------

    def node(self, name: str) -> NodeSpec:
        for spec in self.nodes:
            if spec.name == name:
                return spec
        known = ", ".join(spec.name for spec in self.nodes)
        raise ScenarioError(f"no node named {name!r} in scenario {self.name!r} (known: {known})")

    def of_kind(self, kind: NodeKind) -> list[NodeSpec]:
        return [spec for spec in self.nodes if spec.kind is kind]

    @property
    def gateways(self) -> list[NodeSpec]:
        return self.of_kind(NodeKind.GATEWAY)

    def propagation(self) -> Propagation:
        radio = self.radio
        return Propagation(
            preset=radio.modem,
            frequency_mhz=radio.frequency_mhz,
            noise_figure_db=radio.noise_figure_db,
            ground_exponent=radio.ground_exponent,
            los_exponent=radio.los_exponent,
            los_height_m=radio.los_height_m,
            ground_altitude_m=self.ground_altitude,
            shadowing_db=radio.shadowing_db,
            fading_db=radio.fading_db,
            base_loss=radio.loss,
        )

    def adjustments(self) -> dict[tuple[int, int], LinkAdjustment]:
        return {
            (self.node(link.a).num, self.node(link.b).num): LinkAdjustment(link.extra_db, link.drop)
            for link in self.links
        }

    def destination(self, event: Event) -> int:
        return BROADCAST_NUM if event.to is None else self.node(event.to).num

    def validate(self) -> None:
        """Raise ScenarioError for anything the simulator could not run."""
        names = [spec.name for spec in self.nodes]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ScenarioError(f"node names must be unique; repeated: {', '.join(duplicates)}")
        nums = [spec.num for spec in self.nodes]
        if len(set(nums)) != len(nums):
            raise ScenarioError("two nodes have the same node number")
        if not self.nodes:
            raise ScenarioError("a scenario needs at least one node")
        if self.duration <= 0:
            raise ScenarioError("duration must be positive")
        try:
            self.radio.modem  # noqa: B018 - raises for an unknown preset
        except ValueError as exc:
            raise ScenarioError(str(exc)) from None
        if self.radio.region not in RegionCode.keys():  # noqa: SIM118 - protobuf enum
            raise ScenarioError(f"unknown region {self.radio.region!r}")
        if not 0 <= self.radio.loss < 1:
            raise ScenarioError("loss must be a probability, 0 <= loss < 1")
        for link in self.links:
            self.node(link.a), self.node(link.b)
            if not 0 <= link.drop <= 1:
                raise ScenarioError(f"link {link.a}-{link.b}: drop must be 0-1")
        for event in self.events:
            self.node(event.sender)
            if event.to is not None:
                self.node(event.to)
            if event.at < 0:
                raise ScenarioError(f"event of {event.sender} at {event.at} s is before the start")
            if event.hop_limit is not None and not 0 <= event.hop_limit <= 7:
                raise ScenarioError("hop_limit must be 0-7")
        for spec in self.nodes:
            if not 0 <= spec.hop_limit <= 7:
                raise ScenarioError(f"{spec.name}: hop_limit must be 0-7")

    # -- reading -----------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path) -> Scenario:
        path = Path(path)
        try:
            with path.open("rb") as handle:
                data = tomllib.load(handle)
        except FileNotFoundError:
            raise ScenarioError(f"scenario file {path} not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ScenarioError(f"scenario file {path} is not valid TOML: {exc}") from None
        return cls.from_dict(data, base_dir=path.parent, default_name=path.stem)

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        *,
        base_dir: Path | None = None,
        default_name: str = "scenario",
    ) -> Scenario:
        try:
            return _Reader(data, base_dir or Path.cwd(), default_name).scenario()
        except ScenarioError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise ScenarioError(f"scenario {default_name}: {exc}") from None


# -- the file format ---------------------------------------------------------------------

_TOP = {"scenario", "mesh", "signalfire", "civilians", "relays", "gateways", "generate",
        "traffic", "links", "events"}  # fmt: skip
_NODE_KEYS = {"name", "short_name", "num", "lat", "lon", "east_m", "north_m", "altitude",
              "height_m", "role", "tx_power_dbm", "antenna_gain_dbi", "hop_limit"}  # fmt: skip
_EVENT_KEYS = {"at", "from", "type", "to", "want_ack", "pki", "hop_limit", "channel", "status",
               "people", "needs", "location", "accuracy_m", "text", "precision_bits"}  # fmt: skip


def _check_keys(where: str, table: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ScenarioError(f"{where}: unknown key(s) {', '.join(unknown)}")


def _table(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise ScenarioError(f"[{key}] must be a table")
    return value


def _tables(data: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise ScenarioError(f"[[{key}]] must be an array of tables")
    return value


def parse_node_num(value: int | str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        num = value
    elif isinstance(value, str):
        num = int(value.removeprefix("!"), 16)
    else:
        raise ScenarioError(f"node number {value!r} must be an integer or '!hex'")
    if not 4 <= num < BROADCAST_NUM:
        raise ScenarioError(f"node number {value!r} is reserved or out of range")
    return num


class _Reader:
    def __init__(self, data: Mapping[str, Any], base_dir: Path, default_name: str) -> None:
        _check_keys("scenario file", data, _TOP)
        self.data = data
        self.base_dir = base_dir
        self.default_name = default_name

    def scenario(self) -> Scenario:
        meta = _table(self.data, "scenario")
        _check_keys("[scenario]", meta, {"name", "seed", "duration", "start_time"})
        mesh = _table(self.data, "mesh")
        radio_fields = set(RadioSettings.__dataclass_fields__)
        _check_keys(
            "[mesh]",
            mesh,
            radio_fields | {"centre", "ground_altitude", "max_retransmits", "gateways_know_nodes"},
        )
        seed = int(meta.get("seed", 0))
        centre = tuple(float(v) for v in mesh.get("centre", DEFAULT_CENTRE))
        if len(centre) != 2:
            raise ScenarioError("[mesh] centre must be [lat, lon]")
        scenario = Scenario(
            name=str(meta.get("name", self.default_name)),
            seed=seed,
            start_time=int(meta["start_time"]) if "start_time" in meta else None,
            duration=float(meta.get("duration", 600.0)),
            centre=(centre[0], centre[1]),
            ground_altitude=float(mesh.get("ground_altitude", DEFAULT_GROUND_ALTITUDE)),
            radio=RadioSettings(**{k: v for k, v in mesh.items() if k in radio_fields}),
            max_retransmits=int(mesh.get("max_retransmits", 3)),
            gateways_know_nodes=bool(mesh.get("gateways_know_nodes", True)),
        )
        signalfire = _table(self.data, "signalfire")
        _check_keys("[signalfire]", signalfire, {"keys_dir", "network", "app_port"})
        if "keys_dir" in signalfire:
            scenario.keys_dir = self.base_dir / str(signalfire["keys_dir"])
        if "network" in signalfire:
            scenario.network = self.base_dir / str(signalfire["network"])
        if "app_port" in signalfire:
            scenario.app_port = int(signalfire["app_port"])

        rng = random.Random(f"signalfire-scenario:{seed}")  # noqa: S311 - reproducible on purpose
        taken: set[int] = set()
        for key, kind, role in (
            ("gateways", NodeKind.GATEWAY, Role.CLIENT),
            ("relays", NodeKind.RELAY, Role.ROUTER),
            ("civilians", NodeKind.CIVILIAN, Role.CLIENT),
        ):
            for index, table in enumerate(_tables(self.data, key)):
                scenario.nodes.append(self._node(scenario, table, kind, role, rng, taken, index))
        generate = _table(self.data, "generate")
        _check_keys("[generate]", generate, {"civilians", "radius_m", "seed"})
        if generate.get("civilians"):
            scenario.nodes.extend(
                generated_civilians(
                    scenario,
                    int(generate["civilians"]),
                    radius_m=float(generate.get("radius_m", 2500.0)),
                    seed=int(generate.get("seed", seed)),
                    taken=taken,
                )
            )
        for table in _tables(self.data, "links"):
            _check_keys("[[links]]", table, {"a", "b", "extra_db", "drop"})
            scenario.links.append(
                LinkSpec(
                    str(table["a"]),
                    str(table["b"]),
                    float(table.get("extra_db", 0.0)),
                    float(table.get("drop", 0.0)),
                )
            )
        scenario.events.extend(self._event(scenario, t) for t in _tables(self.data, "events"))
        traffic = _table(self.data, "traffic")
        _check_keys("[traffic]", traffic, set(TrafficPlan.__dataclass_fields__))
        if traffic:
            plan = TrafficPlan(**traffic)
            scenario.events.extend(plan.events(scenario))
        scenario.events.sort(key=lambda e: e.at)
        scenario.validate()
        return scenario

    def _node(
        self,
        scenario: Scenario,
        table: Mapping[str, Any],
        kind: NodeKind,
        default_role: Role,
        rng: random.Random,
        taken: set[int],
        index: int,
    ) -> NodeSpec:
        where = f"[[{kind.value}s]] #{index + 1}"
        _check_keys(where, table, _NODE_KEYS)
        if "name" not in table:
            raise ScenarioError(f"{where} needs a name")
        name = str(table["name"])
        num = parse_node_num(table["num"]) if "num" in table else random_node_num(rng, taken)
        taken.add(num)
        private_key, public_key = x25519_keypair(rng)
        if "lat" in table or "lon" in table:
            lat, lon = float(table["lat"]), float(table["lon"])
        else:
            east, north = float(table.get("east_m", 0.0)), float(table.get("north_m", 0.0))
            lat, lon = offset(*scenario.centre, east, north)
        if "altitude" in table:
            altitude = float(table["altitude"])
        else:
            altitude = scenario.ground_altitude + float(table.get("height_m", HANDHELD_HEIGHT))
        role = Role.from_name(str(table["role"])) if "role" in table else default_role
        short = str(table.get("short_name", _short_name(name)))
        node = VirtualNode(
            num=num,
            long_name=name,
            short_name=short[:4],
            latitude=lat,
            longitude=lon,
            altitude=round(altitude),
            hw_model=mesh_pb2.HardwareModel.RAK4631
            if kind is not NodeKind.CIVILIAN
            else mesh_pb2.HardwareModel.T_ECHO,
            role=int(role),
            private_key=private_key,
            public_key=public_key,
        )
        return NodeSpec(
            node=node,
            kind=kind,
            role=role,
            tx_power_dbm=float(table.get("tx_power_dbm", 20.0)),
            antenna_gain_dbi=float(table.get("antenna_gain_dbi", 0.0)),
            hop_limit=int(table.get("hop_limit", scenario.radio.hop_limit)),
        )

    def _event(self, scenario: Scenario, table: Mapping[str, Any]) -> Event:
        _check_keys("[[events]]", table, _EVENT_KEYS)
        for required in ("at", "from", "type"):
            if required not in table:
                raise ScenarioError(f"[[events]] needs '{required}': {dict(table)}")
        try:
            kind = EventKind(str(table["type"]))
        except ValueError:
            known = ", ".join(k.value for k in EventKind)
            raise ScenarioError(f"event type {table['type']!r} is not one of {known}") from None
        to = table.get("to")
        if to in ("broadcast", "channel", "^all"):
            to = None
        location: tuple[float, float] | None = None
        own_location = True
        raw_location = table.get("location", "own")
        if raw_location == "none":
            own_location = False
        elif isinstance(raw_location, list):
            if len(raw_location) != 2:
                raise ScenarioError("an event location is [lat, lon], 'own' or 'none'")
            location, own_location = (float(raw_location[0]), float(raw_location[1])), False
        elif raw_location != "own":
            raise ScenarioError("an event location is [lat, lon], 'own' or 'none'")
        try:
            status = Status.from_label(str(table.get("status", "safe")))
            needs = needs_from_labels([str(n) for n in table.get("needs", [])])
        except ValueError as exc:
            raise ScenarioError(str(exc)) from None
        text = str(table.get("text", ""))
        if kind is EventKind.CANNED and not text:
            text = CANNED_MESSAGES[0]
        if kind is EventKind.TEXT and not text:
            raise ScenarioError(f"a text event of {table['from']} needs 'text'")
        accuracy = table.get("accuracy_m", 10.0)
        return Event(
            at=float(table["at"]),
            sender=str(table["from"]),
            kind=kind,
            to=None if to is None else str(to),
            want_ack=bool(table["want_ack"]) if "want_ack" in table else None,
            pki=bool(table["pki"]) if "pki" in table else None,
            hop_limit=int(table["hop_limit"]) if "hop_limit" in table else None,
            channel=int(table.get("channel", 0)),
            status=status,
            people=int(table.get("people", 0)),
            needs=needs,
            location=location,
            own_location=own_location,
            accuracy_m=None if accuracy is None else float(accuracy),
            text=text,
            precision_bits=int(table.get("precision_bits", 32)),
        )


def _short_name(name: str) -> str:
    letters = [c for c in name if c.isalnum()]
    return "".join(letters[:4]).upper() or "NODE"


# -- generated nodes and traffic ---------------------------------------------------------


def generated_civilians(
    scenario: Scenario,
    count: int,
    *,
    radius_m: float,
    seed: int,
    taken: set[int],
) -> list[NodeSpec]:
    """`count` civilians with handhelds, scattered over a disc around the centre."""
    rng = random.Random(f"signalfire-scenario-civilians:{seed}")  # noqa: S311
    specs = []
    existing = {spec.name for spec in scenario.nodes}
    for node in generate_nodes(
        count, seed=seed, centre=scenario.centre, radius_m=radius_m, taken=sorted(taken)
    ):
        taken.add(node.num)
        # Street level, give or take a storey or a slope.
        node.altitude = round(scenario.ground_altitude + HANDHELD_HEIGHT + rng.uniform(0, 12))
        node.hops_away = 0
        base, n = node.long_name, 1
        while node.long_name in existing:  # a file may already use the generator's names
            n += 1
            node.long_name = f"{base} #{n}"
        existing.add(node.long_name)
        specs.append(
            NodeSpec(
                node=node,
                kind=NodeKind.CIVILIAN,
                role=Role.CLIENT,
                hop_limit=scenario.radio.hop_limit,
            )
        )
    return specs


@dataclass(frozen=True)
class TrafficPlan:
    """Background traffic drawn from the seed (the `[traffic]` table)."""

    position_interval: float = 900.0  # each civilian's position broadcast period; 0: none
    signalfire_share: float = 0.5  # civilians with the signalfire client; others use stock apps
    reports: float = 1.0  # signalfire reports per such civilian over the run (mean)
    texts: float = 1.0  # stock texts or canned messages per other civilian (mean)
    dm_share: float = 0.6  # stock messages sent as a DM to the nearest gateway
    start: float = 5.0  # nothing before this (the devices are still connecting)
    seed: int | None = None

    def events(self, scenario: Scenario) -> list[Event]:
        seed = scenario.seed if self.seed is None else self.seed
        rng = random.Random(f"signalfire-scenario-traffic:{seed}")  # noqa: S311
        civilians = scenario.of_kind(NodeKind.CIVILIAN)
        gateways = scenario.gateways
        span = max(scenario.duration - self.start - 60.0, 1.0)  # leave time to arrive
        events: list[Event] = []
        for spec in civilians:
            if self.position_interval > 0:
                t = self.start + rng.uniform(0, self.position_interval)
                while t < scenario.duration:
                    events.append(Event(at=round(t, 3), sender=spec.name, kind=EventKind.POSITION))
                    t += self.position_interval * rng.uniform(0.9, 1.1)
            uses_signalfire = rng.random() < self.signalfire_share
            count = _poisson(rng, self.reports if uses_signalfire else self.texts)
            for _ in range(count):
                at = round(self.start + rng.uniform(0, span), 3)
                if uses_signalfire:
                    events.append(_random_report(rng, spec.name, at))
                else:
                    events.append(_random_stock(rng, spec, at, gateways, self.dm_share))
        events.sort(key=lambda e: e.at)
        return events


def _poisson(rng: random.Random, mean: float) -> int:
    # Knuth's method: the means here are small.
    limit, product, count = math.exp(-mean), rng.random(), 0
    while product > limit:
        count += 1
        product *= rng.random()
    return count


_STATUS_WEIGHTS = (
    (Status.SAFE, 40), (Status.NEED_SUPPLIES, 20), (Status.EVACUATE, 10), (Status.MEDICAL, 10),
    (Status.SOS, 10), (Status.TRAPPED, 5), (Status.MISSING_PERSON, 5),
)  # fmt: skip
_REPORT_TEXTS = ("", "", "", "bridge out", "Նարեկը վիրավոր է", "нужна вода", "3 kids, 1 elderly")
_STOCK_TEXTS = ("SOS 3", "SAFE 4", "MED 2 broken leg", "WATER 5", "ОК 2", "ՕԳՆՈՒԹՅՈՒՆ 2", "sos")


def _random_report(rng: random.Random, sender: str, at: float) -> Event:
    statuses, weights = zip(*_STATUS_WEIGHTS, strict=True)
    status = rng.choices(statuses, weights)[0]
    needs = NO_NEEDS
    if status is Status.NEED_SUPPLIES:
        for need in rng.sample(list(Need), rng.randint(1, 3)):
            needs |= need
    return Event(
        at=at,
        sender=sender,
        kind=EventKind.REPORT,
        status=status,
        people=rng.randint(1, 6),
        needs=needs,
        text=rng.choice(_REPORT_TEXTS),
        accuracy_m=rng.choice((5.0, 10.0, 30.0)),
    )


def _random_stock(
    rng: random.Random, spec: NodeSpec, at: float, gateways: list[NodeSpec], dm_share: float
) -> Event:
    to = None
    if gateways and rng.random() < dm_share:
        to = min(gateways, key=lambda g: _flat_distance(spec, g)).name
    if rng.random() < 0.5:
        return Event(
            at=at, sender=spec.name, kind=EventKind.CANNED, to=to, text=rng.choice(CANNED_MESSAGES)
        )
    return Event(at=at, sender=spec.name, kind=EventKind.TEXT, to=to, text=rng.choice(_STOCK_TEXTS))


def _flat_distance(a: NodeSpec, b: NodeSpec) -> float:
    dlat = (a.node.latitude - b.node.latitude) * 111_320
    dlon = (a.node.longitude - b.node.longitude) * 111_320 * math.cos(math.radians(a.node.latitude))
    return math.hypot(dlat, dlon)


def town(
    *,
    civilians: int = 30,
    relays: int = 3,
    gateways: int = 2,
    radius_m: float = 2500.0,
    relay_height_m: float = 160.0,
    seed: int = 0,
    duration: float = 3600.0,
    preset: str = "LONG_FAST",
    region: str = "EU_868",
    loss: float = 0.02,
    traffic: TrafficPlan | None = None,
    start_time: int | None = None,
    keys_dir: Path | None = None,
    centre: tuple[float, float] = DEFAULT_CENTRE,
    ground_altitude: float = DEFAULT_GROUND_ALTITUDE,
) -> Scenario:
    """A town: civilians in the streets, ROUTER relays on the surrounding hills, gateways
    in buildings near the middle, and background traffic from `traffic`."""
    scenario = Scenario(
        name=f"town-{civilians}c-{relays}r-{gateways}g",
        seed=seed,
        start_time=start_time,
        duration=duration,
        centre=centre,
        ground_altitude=ground_altitude,
        radio=RadioSettings(region=region, preset=preset, loss=loss),
        keys_dir=keys_dir,
    )
    rng = random.Random(f"signalfire-scenario:{seed}")  # noqa: S311
    taken: set[int] = set()

    def place(
        name: str, kind: NodeKind, role: Role, east: float, north: float, height: float, gain: float
    ) -> NodeSpec:
        num = random_node_num(rng, taken)
        taken.add(num)
        private_key, public_key = x25519_keypair(rng)
        lat, lon = offset(*centre, east, north)
        node = VirtualNode(
            num=num,
            long_name=name,
            short_name=_short_name(name),
            latitude=lat,
            longitude=lon,
            altitude=round(ground_altitude + height),
            hw_model=mesh_pb2.HardwareModel.RAK4631,
            role=int(role),
            private_key=private_key,
            public_key=public_key,
        )
        return NodeSpec(node, kind, role, antenna_gain_dbi=gain, hop_limit=scenario.radio.hop_limit)

    for i in range(gateways):
        angle = 2 * math.pi * i / max(gateways, 1) + 0.4
        distance = radius_m * (0.15 if gateways == 1 else 0.35)
        scenario.nodes.append(
            place(
                f"gateway-{i + 1}",
                NodeKind.GATEWAY,
                Role.CLIENT,
                distance * math.cos(angle),
                distance * math.sin(angle),
                8.0,
                2.0,
            )
        )
    for i in range(relays):
        angle = 2 * math.pi * i / max(relays, 1) + 1.2
        distance = radius_m * rng.uniform(0.9, 1.2)
        scenario.nodes.append(
            place(
                f"hill-{i + 1}",
                NodeKind.RELAY,
                Role.ROUTER,
                distance * math.cos(angle),
                distance * math.sin(angle),
                relay_height_m * rng.uniform(0.8, 1.2),
                5.0,
            )
        )
    scenario.nodes.extend(
        generated_civilians(scenario, civilians, radius_m=radius_m, seed=seed, taken=taken)
    )
    plan = traffic if traffic is not None else TrafficPlan()
    scenario.events = plan.events(scenario)
    scenario.validate()
    return scenario

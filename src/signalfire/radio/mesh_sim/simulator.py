"""`MeshSimulator`: a simulated Meshtastic mesh that emulated devices attach to.

It implements the `Mesh` protocol for any number of attached devices at once: each is
placed as the scenario node whose number it carries (`device_state` / `device` make such
a radio), sends through that node's place in the topology and receives what that node
hears. Every other node of the scenario is a virtual radio run by the simulator
(flooding, acks, retransmissions) with scripted traffic from the scenario.

Two ways to run the same model:

- `run(until)`: pure virtual time, as fast as the CPU allows, with nothing attached.
  Deterministic: one seed gives one event log (`log.entries`).
- `start(speed)`: a background thread keeps virtual time at `speed` times wall time
  (speed 20 turns a 1.2 s transmission into 60 ms), so real clients of attached
  devices see the traffic. The thread sleeps on a condition until the next event is
  due or a device transmits; it never polls.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshtastic.protobuf import config_pb2, mesh_pb2, portnums_pb2

from signalfire.radio.device_state import DeviceState, default_state
from signalfire.radio.emulator import EmulatedDevice
from signalfire.radio.mesh_protocol import BROADCAST_NUM, AirInterface, MeshPacket, NodeInfo
from signalfire.radio.mesh_sim import traffic as traffic_mod
from signalfire.radio.mesh_sim.air import Air, Scheduler
from signalfire.radio.mesh_sim.flooding import MeshNode
from signalfire.radio.mesh_sim.frames import Frame
from signalfire.radio.mesh_sim.scenario import NodeKind, NodeSpec, Scenario, ScenarioError
from signalfire.radio.mesh_sim.stats import EventLog, NodeStats
from signalfire.radio.mesh_sim.topology import Topology
from signalfire.radio.mesh_sim.traffic import NetworkKeys, Outgoing

PortNum = portnums_pb2.PortNum
LoRa = config_pb2.Config.LoRaConfig
# SX126x reports SNR in quarter dB; it reads no better than about +15 dB however strong.
MAX_REPORTED_SNR = 15.0
# The sending app hears of the ack from its radio and hands over the next packet.
APP_TURNAROUND = 0.2


@dataclass(frozen=True, slots=True)
class Received:
    """A packet a virtual radio handed to its application (first copy only)."""

    at: float
    frame: Frame
    snr: float
    rssi: float


@dataclass(slots=True)
class Origin:
    """A packet a civilian sent, followed to the gateways."""

    at: float
    sender: int
    label: str
    delivered_at: float | None = None
    gateway: int = 0


class MeshSimulator:
    """A scenario's radios on one simulated channel; a `Mesh` for any number of devices."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        keys_dir: Path | None = None,
        log_events: bool = True,
        log_limit: int | None = None,
    ) -> None:
        scenario.validate()
        self.scenario = scenario
        seed = scenario.seed
        # Separate streams, so that e.g. more loss does not reshuffle packet ids.
        self._rng_air = random.Random(f"signalfire-mesh-sim-air:{seed}")  # noqa: S311
        self._rng_mac = random.Random(f"signalfire-mesh-sim-mac:{seed}")  # noqa: S311
        self._rng_ids = random.Random(f"signalfire-mesh-sim-ids:{seed}")  # noqa: S311
        self.start_time = (
            scenario.start_time if scenario.start_time is not None else int(time.time())
        )
        self.scheduler = Scheduler()
        self.log = EventLog(log_events, log_limit)
        self.specs: dict[int, NodeSpec] = {spec.num: spec for spec in scenario.nodes}
        self.topology = Topology(
            {num: spec.site() for num, spec in self.specs.items()},
            scenario.propagation(),
            adjustments=scenario.adjustments(),
            seed=seed,
        )
        self.air = Air(
            self.scheduler,
            self.topology,
            rng=self._rng_air,
            on_receive=self._on_receive,
            on_sent=self._on_sent,
            is_listening=self._is_listening,
            capture_db=scenario.radio.capture_db,
        )
        duty = scenario.radio.duty_cycle_percent
        self.nodes: dict[int, MeshNode] = {
            num: MeshNode(
                num,
                spec.role,
                hop_limit=spec.hop_limit,
                scheduler=self.scheduler,
                air=self.air,
                rng=self._rng_mac,
                log=self.log,
                app=self._app,
                settled=self._settled,
                new_id=self._new_id,
                max_retransmits=scenario.max_retransmits,
                duty_cycle_percent=duty,
            )
            for num, spec in sorted(self.specs.items())
        }
        self.inboxes: dict[int, list[Received]] = {num: [] for num in self.specs}
        self.origins: dict[tuple[int, int], Origin] = {}
        self._then: dict[tuple[int, int], Outgoing] = {}  # waits for its predecessor's ack
        self._gateways = {spec.num for spec in scenario.gateways}
        self._devices: dict[int, AirInterface] = {}
        self._outbox: list[tuple[AirInterface, MeshPacket]] = []
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._speed = 1.0
        self._wall0 = 0.0
        self._virtual0 = 0.0
        self._cpu_seconds = 0.0

        self.keys: NetworkKeys | None = None
        if traffic_mod.needs_keys(scenario) or keys_dir is not None or scenario.keys_dir:
            self.keys = traffic_mod.network_keys(scenario, keys_dir)
        planned = traffic_mod.build(scenario, self.keys, self.start_time)
        # What the scenario's events turned into (sealed reports included), in time order.
        self.outgoing: list[Outgoing] = [o for out in planned for o in out.chain()]
        for out in planned:
            self.scheduler.at(out.at, self._fire, out)

    # -- lookups ---------------------------------------------------------------------------

    def node(self, key: str | int) -> NodeSpec:
        """A scenario node by name or number."""
        if isinstance(key, int):
            try:
                return self.specs[key]
            except KeyError:
                raise ScenarioError(f"no node !{key:08x} in the scenario") from None
        return self.scenario.node(key)

    def num(self, key: str | int) -> int:
        return self.node(key).num

    def stats(self, key: str | int) -> NodeStats:
        return self.nodes[self.num(key)].stats

    def inbox(self, key: str | int) -> list[Received]:
        with self._cond:
            return list(self.inboxes[self.num(key)])

    @property
    def now(self) -> float:
        """Virtual seconds since the start."""
        with self._cond:
            return self._clock()

    def _clock(self) -> float:
        if self._thread is None:
            return self.scheduler.now
        elapsed = (time.monotonic() - self._wall0) * self._speed
        return max(self._virtual0 + elapsed, self.scheduler.now)

    def _new_id(self) -> int:
        return self._rng_ids.getrandbits(32) or 1

    # -- attached devices ------------------------------------------------------------------

    def device_state(self, name: str, **overrides: Any) -> DeviceState:
        """Flash state for an emulated radio that takes the place of node `name`."""
        spec = self.node(name)
        radio = self.scenario.radio
        options: dict[str, Any] = {
            "seed": self.scenario.seed,
            "node_num": spec.num,
            "long_name": spec.node.long_name,
            "short_name": spec.node.short_name,
            "region": LoRa.RegionCode.Value(radio.region),
            "modem_preset": LoRa.ModemPreset.Value(radio.modem.name),
            "position": (spec.node.latitude, spec.node.longitude),
        }
        if self.keys is not None:
            options["channel_name"] = self.keys.profile.channel_name
            if len(self.keys.profile.channel_psk) in (16, 32):
                options["channel_psk"] = self.keys.profile.channel_psk
        options.update(overrides)
        state = default_state(**options)
        state.config.lora.hop_limit = spec.hop_limit
        state.config.device.role = int(spec.role)
        state.owner.role = int(spec.role)
        return state

    def device(self, name: str, **emulator_options: Any) -> EmulatedDevice:
        """An emulated radio (not yet started) for node `name`, attached here once started."""
        state = emulator_options.pop("state", None) or self.device_state(name)
        emulator_options.setdefault("seed", self.scenario.seed)
        return EmulatedDevice(self, state=state, **emulator_options)

    def attach(self, radio: AirInterface) -> None:
        num = radio.node_num
        with self._cond:
            if num not in self.nodes:
                raise ScenarioError(
                    f"radio !{num:08x} is not a node of scenario {self.scenario.name!r}: "
                    "give it MeshSimulator.device_state(name)"
                )
            self._devices[num] = radio
            node = self.nodes[num]
            node.reliable = False  # the device retransmits and acks for itself
            node.power(True)
            self.log.add(self._clock(), "attach", num, None)
            self._cond.notify_all()

    def detach(self, radio: AirInterface) -> None:
        num = radio.node_num
        with self._cond:
            if self._devices.get(num) is radio:
                del self._devices[num]
                self.nodes[num].power(False)  # a radio that is off neither hears nor relays
                self.log.add(self._clock(), "detach", num, None)
                self._cond.notify_all()

    def transmit(self, packet: MeshPacket) -> None:
        frame = Frame.from_packet(packet)  # raises FrameTooLarge for what firmware refuses
        with self._cond:
            if frame.src not in self._devices:
                return  # a radio we do not know, or one that was detached meanwhile
            self.scheduler.at(self._clock(), self._device_send, frame)
            self._cond.notify_all()

    def _device_send(self, frame: Frame) -> None:
        self.nodes[frame.src].send(frame)

    def node_infos(self) -> list[NodeInfo]:
        if not self.scenario.gateways_know_nodes:
            return []
        now = int(time.time())
        infos = []
        for spec in self.specs.values():
            info = mesh_pb2.NodeInfo(num=spec.num, user=spec.node.user(), last_heard=now)
            info.position.CopyFrom(spec.node.position(now=now))
            infos.append(info)
        return infos

    # -- scripted traffic ------------------------------------------------------------------

    def _fire(self, out: Outgoing) -> None:
        if out.sender in self._devices:
            self.log.add(self.scheduler.now, "skipped", out.sender, None, out.label)
            return
        spec = self.specs[out.sender]
        frame = Frame(
            src=out.sender,
            dst=out.dst,
            id=self._new_id(),
            portnum=out.portnum,
            payload=out.payload,
            hop_limit=out.hop_limit,
            hop_start=out.hop_limit,
            want_ack=out.want_ack,
            pki=out.pki,
            public_key=spec.node.public_key if out.pki else b"",
            channel=out.channel,
            relay=out.sender,
        )
        sent = self.nodes[out.sender].send(frame)
        if sent and spec.kind is NodeKind.CIVILIAN:
            self.origins[frame.key] = Origin(self.scheduler.now, out.sender, out.label)
        if out.then is not None:
            if sent and frame.want_ack:
                self._then[frame.key] = out.then
            else:
                self.scheduler.at(self.scheduler.now + APP_TURNAROUND, self._fire, out.then)

    def _settled(self, node: MeshNode, packet_id: int, how: str) -> None:
        follow = self._then.pop((node.num, packet_id), None)
        if follow is not None:
            self.scheduler.at(self.scheduler.now + APP_TURNAROUND, self._fire, follow)

    def send_data(
        self,
        sender: str | int,
        payload: bytes,
        *,
        portnum: int = PortNum.PRIVATE_APP,
        to: str | int | None = None,
        want_ack: bool = False,
        pki: bool | None = None,
        hop_limit: int | None = None,
        label: str = "data",
    ) -> None:
        """Make a virtual radio send now (thread-safe); `to` None broadcasts."""
        spec = self.node(sender)
        dst = BROADCAST_NUM if to is None else self.num(to)
        out = Outgoing(
            at=0.0,
            sender=spec.num,
            dst=dst,
            portnum=portnum,
            payload=payload,
            want_ack=want_ack,
            pki=(dst != BROADCAST_NUM) if pki is None else pki,
            hop_limit=spec.hop_limit if hop_limit is None else hop_limit,
            label=label,
        )
        with self._cond:
            self.scheduler.at(self._clock(), self._fire, out)
            self._cond.notify_all()

    def send_text(self, sender: str | int, text: str, **options: Any) -> None:
        options.setdefault("want_ack", options.get("to") is not None)
        self.send_data(
            sender, text.encode("utf-8"), portnum=PortNum.TEXT_MESSAGE_APP, label="text", **options
        )

    # -- what the radios do with what they hear --------------------------------------------

    def _is_listening(self, num: int) -> bool:
        return self.nodes[num].listening

    def _on_receive(self, receiver: int, frame: Frame, snr: float, rssi: float) -> None:
        self.nodes[receiver].on_receive(frame, snr, rssi)

    def _on_sent(self, sender: int, frame: Frame) -> None:
        self.nodes[sender].on_sent(frame)

    def _app(self, node: MeshNode, frame: Frame, snr: float, rssi: float) -> None:
        now = self.scheduler.now
        num = node.num
        if num in self._gateways and frame.src != num:
            origin = self.origins.get(frame.key)
            if origin is not None and origin.delivered_at is None:
                origin.delivered_at, origin.gateway = now, num
        device = self._devices.get(num)
        if device is not None:
            reported = min(round(snr * 4) / 4, MAX_REPORTED_SNR)
            self._outbox.append((device, frame.to_packet(rx_snr=reported, rx_rssi=round(rssi))))
            return
        self.inboxes[num].append(Received(now, frame, snr, rssi))
        if frame.portnum == PortNum.NODEINFO_APP and frame.want_response and frame.dst == num:
            # NodeInfoModule answers a stranger's introduction with its own.
            user = self.specs[num].node.user()
            reply = Frame(
                src=num,
                dst=frame.src,
                id=self._new_id(),
                portnum=PortNum.NODEINFO_APP,
                payload=user.SerializeToString(),
                hop_limit=node.hop_limit,
                hop_start=node.hop_limit,
                relay=num,
            )
            node.send(reply)

    # -- running ---------------------------------------------------------------------------

    def run(self, until: float | None = None) -> None:
        """Pure virtual time: process every event up to `until` (default: the duration)."""
        if self._thread is not None:
            raise RuntimeError("the simulator is running in real time; stop() it first")
        with self._cond:
            if self._devices:
                raise RuntimeError("attached devices live in real time: use start(speed)")
            target = self.scenario.duration if until is None else until
            started = time.process_time()
            self.scheduler.run_until(target)
            self._cpu_seconds += time.process_time() - started
            outbox, self._outbox = self._outbox, []
            self._cond.notify_all()
        for device, packet in outbox:
            device.deliver(packet)

    def start(self, speed: float = 1.0) -> None:
        """Real time scaled by `speed`, in a background thread, from the current virtual time."""
        if speed <= 0:
            raise ValueError("speed must be positive")
        if self._thread is not None:
            raise RuntimeError("already running")
        with self._cond:
            self._speed = speed
            self._stopping = False
            self._wall0 = time.monotonic()
            self._virtual0 = self.scheduler.now
            self._thread = threading.Thread(target=self._loop, name="mesh-simulator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        thread = self._thread
        if thread is None:
            return
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        thread.join(10)
        with self._cond:
            self.scheduler.now = max(self.scheduler.now, self._clock())
            self._thread = None

    def __enter__(self) -> MeshSimulator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _loop(self) -> None:
        while True:
            with self._cond:
                if self._stopping:
                    return
                started = time.process_time()
                self.scheduler.run_until(self._clock())
                self._cpu_seconds += time.process_time() - started
                outbox, self._outbox = self._outbox, []
                self._cond.notify_all()  # wake wait_for() callers
                if not outbox:
                    due = self.scheduler.next_time()
                    timeout = None
                    if due is not None:
                        timeout = max((due - self._clock()) / self._speed, 0.0)
                    self._cond.wait(timeout)
                    continue
            for device, packet in outbox:
                device.deliver(packet)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        """Wait (real time) until `predicate()` holds; it runs under the simulator's lock."""
        with self._cond:
            return self._cond.wait_for(predicate, timeout)

    # -- numbers ---------------------------------------------------------------------------

    def delivery(self) -> dict[str, Any]:
        """How many civilians' packets reached at least one gateway, and how fast."""
        with self._cond:
            origins = list(self.origins.values())
        delivered = [o for o in origins if o.delivered_at is not None]
        latencies = sorted(o.delivered_at - o.at for o in delivered if o.delivered_at is not None)
        by_label: dict[str, list[int]] = {}
        for origin in origins:
            counts = by_label.setdefault(origin.label, [0, 0])
            counts[0] += 1
            counts[1] += origin.delivered_at is not None
        return {
            "sent": len(origins),
            "delivered": len(delivered),
            "ratio": len(delivered) / len(origins) if origins else None,
            "latency_median_s": statistics.median(latencies) if latencies else None,
            "latency_p90_s": latencies[int(0.9 * (len(latencies) - 1))] if latencies else None,
            "by_kind": {k: {"sent": v[0], "delivered": v[1]} for k, v in sorted(by_label.items())},
        }

    def summary(self) -> dict[str, Any]:
        with self._cond:
            now = self._clock()
            counters = self.air.counters
            totals = NodeStats()
            per_node: dict[str, Any] = {}
            for num, node in self.nodes.items():
                spec = self.specs[num]
                stats = node.stats
                for name, value in stats.as_dict().items():
                    setattr(totals, name, getattr(totals, name) + value)
                per_node[spec.name] = {
                    "num": f"!{num:08x}",
                    "kind": spec.kind.value,
                    "role": spec.role.name,
                    "attached": num in self._devices,
                    "tx": self.air.tx_by_node[num],
                    "airtime_s": round(self.air.airtime_by_node[num], 6),
                    "duty_cycle_percent": round(node.duty_cycle_used(), 4),
                    "channel_utilisation_percent": round(node.queue.utilisation_percent(), 3),
                    "collisions": self.air.collisions_by_node[num],
                    **stats.as_dict(),
                }
            duration = now if now > 0 else 1.0
            duty_values = [n["duty_cycle_percent"] for n in per_node.values()]
            summary = {
                "scenario": self.scenario.name,
                "seed": self.scenario.seed,
                "region": self.scenario.radio.region,
                "preset": self.scenario.radio.modem.name,
                "nodes": len(self.nodes),
                "simulated_s": round(now, 6),
                "events_processed": self.scheduler.processed,
                "cpu_s": self._cpu_seconds,
                "transmissions": counters.transmissions,
                "receptions": counters.receptions,
                "collisions": counters.collisions,
                "too_weak": counters.too_weak,
                "half_duplex": counters.half_duplex,
                "dropped": counters.dropped,
                "duplicates_suppressed": totals.duplicates,
                "rebroadcasts_queued": totals.relays_queued,
                "rebroadcasts_cancelled": totals.rebroadcasts_cancelled,
                "late_deferred": totals.late_deferred,
                "retransmissions": totals.retransmissions,
                "acks_sent": totals.acks_sent,
                "acked": totals.acked,
                "implicit_acks": totals.implicit_acks,
                "gave_up": totals.gave_up,
                "backoffs": totals.backoffs,
                "duty_cycle_blocked": totals.duty_cycle_blocked,
                "queue_full": totals.queue_full,
                "airtime_s": round(counters.airtime, 6),
                "channel_busy_percent": round(100.0 * counters.busy_time / duration, 3),
                "max_duty_cycle_percent": max(duty_values) if duty_values else 0.0,
                "duty_cycle_limit_percent": self.scenario.radio.duty_cycle_percent,
                "per_node": per_node,
            }
        summary["delivery"] = self.delivery()
        return summary

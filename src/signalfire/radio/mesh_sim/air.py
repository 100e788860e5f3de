"""Virtual time and the shared channel: transmissions, receptions, collisions, airtime.

`Scheduler` is a discrete-event queue in virtual seconds. `Air` puts frames on the
channel: a transmission lasts its LoRa time on air (`signalfire.airtime`, Semtech
formula for the scenario's preset) and, when it ends, every node that could hear it
either receives it or loses it, for one of these reasons, checked in this order:

- half duplex: the receiver was itself transmitting at some point of the frame;
- too weak: the faded SNR is below the demodulation floor;
- collision: other frames overlapped it at this receiver and it was not at least
  `capture_db` stronger than all of them together (the capture effect: LoRa keeps the
  stronger of two overlapping frames when the margin is large enough; without it both
  are lost);
- dropped: the link's drop probability (scenario loss) struck.

Channel activity detection (listen before talk) sees a transmission once it has been on
the air for the CAD time and only if it arrives above the demodulation floor, so two
radios that start within one CAD window, or that cannot hear each other (hidden
terminals), still collide.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from signalfire import airtime
from signalfire.airtime import Preset
from signalfire.radio.mesh_sim.frames import Frame
from signalfire.radio.mesh_sim.topology import Topology

CAPTURE_DB = 6.0
DUTY_CYCLE_WINDOW = 3600.0  # seconds: regulators count duty cycle over a rolling hour
UTILISATION_WINDOW = 60.0  # AirTime::channelUtilizationPercent looks back about a minute
CAD_SYMBOLS = 2.5  # SX126x CAD on 2 symbols + 0.5 (RadioInterface::computeSlotTimeMsec)
HISTORY_LEN = 100_000  # transmissions kept for inspection; a long real-time run forgets the oldest


class Timer:
    """A scheduled call; `cancel()` makes the scheduler skip it."""

    __slots__ = ("args", "callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[..., None], args: tuple[Any, ...]) -> None:
        self.when = when
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Scheduler:
    """Events in virtual time; equal times run in the order they were scheduled."""

    def __init__(self) -> None:
        self.now = 0.0
        self.processed = 0
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = 0

    def at(self, when: float, callback: Callable[..., None], *args: Any) -> Timer:
        timer = Timer(max(when, self.now), callback, args)
        self._seq += 1
        heapq.heappush(self._heap, (timer.when, self._seq, timer))
        return timer

    def after(self, delay: float, callback: Callable[..., None], *args: Any) -> Timer:
        return self.at(self.now + delay, callback, *args)

    def next_time(self) -> float | None:
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def run_until(self, until: float) -> int:
        """Run every event due at or before `until`; leaves the clock at `until`."""
        heap = self._heap
        count = 0
        while heap and heap[0][0] <= until:
            when, _, timer = heapq.heappop(heap)
            if timer.cancelled:
                continue
            self.now = when
            timer.callback(*timer.args)
            count += 1
        self.now = max(self.now, until)
        self.processed += count
        return count


class RollingAirtime:
    """Seconds of airtime within a sliding window (duty cycle, channel utilisation)."""

    __slots__ = ("_entries", "_total", "window")

    def __init__(self, window: float) -> None:
        self.window = window
        self._entries: deque[tuple[float, float]] = deque()
        self._total = 0.0

    def add(self, start: float, seconds: float) -> None:
        self._entries.append((start, seconds))
        self._total += seconds

    def used(self, now: float) -> float:
        entries = self._entries
        horizon = now - self.window
        while entries and entries[0][0] < horizon:
            self._total -= entries.popleft()[1]
        if not entries:
            self._total = 0.0  # no float dust left behind
        return max(self._total, 0.0)

    def percent(self, now: float) -> float:
        """Share of the whole window (as the firmware counts it, also in the first hour)."""
        return 100.0 * self.used(now) / self.window


@lru_cache(maxsize=512)
def _time_on_air(length: int, preset: Preset) -> float:
    return airtime.time_on_air(length, preset)


@dataclass(slots=True, eq=False)
class Transmission:
    sender: int
    frame: Frame
    start: float
    end: float
    airtime: float
    arrivals: list[Arrival] = field(default_factory=list)


@dataclass(slots=True, eq=False)
class Arrival:
    """One transmission as one receiver experiences it."""

    tx: Transmission
    receiver: int
    snr_db: float  # after fading
    rssi_dbm: float
    drop: float
    power: float  # linear, relative to the noise floor: what the capture rule adds up
    interference: float = 0.0  # summed power of every other frame that overlapped it here
    deaf: bool = False  # the receiver transmitted during some of it (half duplex)


@dataclass(slots=True)
class AirCounters:
    transmissions: int = 0
    receptions: int = 0
    collisions: int = 0
    too_weak: int = 0
    half_duplex: int = 0
    dropped: int = 0
    airtime: float = 0.0
    busy_time: float = 0.0  # union of all transmissions: the channel was in use


class Air:
    """The shared LoRa channel of one scenario (one frequency slot, one preset)."""

    def __init__(
        self,
        scheduler: Scheduler,
        topology: Topology,
        *,
        rng: random.Random,
        on_receive: Callable[[int, Frame, float, float], None],
        on_sent: Callable[[int, Frame], None],
        is_listening: Callable[[int], bool],
        capture_db: float = CAPTURE_DB,
    ) -> None:
        self.scheduler = scheduler
        self.topology = topology
        self.preset = topology.propagation.preset
        self.counters = AirCounters()
        self.airtime_by_node: dict[int, float] = dict.fromkeys(topology.sites, 0.0)
        self.tx_by_node: dict[int, int] = dict.fromkeys(topology.sites, 0)
        self.collisions_by_node: dict[int, int] = dict.fromkeys(topology.sites, 0)
        # (sender, frame, airtime) of every transmission, oldest first.
        self.history: deque[tuple[int, Frame, float]] = deque(maxlen=HISTORY_LEN)
        self.duty = {num: RollingAirtime(DUTY_CYCLE_WINDOW) for num in topology.sites}
        self.utilisation = {num: RollingAirtime(UTILISATION_WINDOW) for num in topology.sites}
        self.cad_time = CAD_SYMBOLS * self.preset.symbol_time
        self._rng = rng
        self._on_receive = on_receive
        self._on_sent = on_sent
        self._is_listening = is_listening
        self._capture = capture_db
        self._fading = topology.propagation.fading_db
        self._floor = topology.floor_db
        # Frames on the air now, per receiver: overlap is settled as each one starts, so
        # ending a frame needs no look back (and no list of past frames).
        self._active: dict[int, list[Arrival]] = {num: [] for num in topology.sites}
        self._sending: dict[int, Transmission] = {}
        self._busy_until = 0.0

    def airtime_of(self, frame: Frame) -> float:
        return _time_on_air(frame.length, self.preset)

    def transmitting(self, node: int) -> bool:
        return node in self._sending

    def channel_busy(self, node: int) -> bool:
        """What listen-before-talk sees at `node` now (CAD, or a frame being received)."""
        if node in self._sending:
            return True
        now = self.scheduler.now
        floor, cad = self._floor, self.cad_time
        return any(
            a.snr_db >= floor and a.tx.start + cad <= now < a.tx.end for a in self._active[node]
        )

    def transmit(self, node: int, frame: Frame) -> Transmission:
        if node in self._sending:
            raise RuntimeError(f"node {node:08x} is already transmitting")
        now = self.scheduler.now
        seconds = self.airtime_of(frame)
        tx = Transmission(node, frame, now, now + seconds, seconds)
        self._sending[node] = tx
        for arrival in self._active[node]:
            if arrival.tx.end > now:  # one that ends right now was heard whole
                arrival.deaf = True  # a radio cannot listen while it talks
        rng, fading = self._rng, self._fading
        for link in self.topology.links_from(node):
            fade = rng.gauss(0.0, fading) if fading > 0 else 0.0
            snr = link.snr_db + fade
            power = 10 ** (snr / 10)
            arrival = Arrival(tx, link.receiver, snr, link.rssi_dbm + fade, link.drop, power)
            active = self._active[link.receiver]
            for other in active:
                if other.tx.end > now:  # one that ends right now does not overlap
                    other.interference += power
                    arrival.interference += other.power
            if link.receiver in self._sending:
                arrival.deaf = True
            active.append(arrival)
            tx.arrivals.append(arrival)
        counters = self.counters
        counters.transmissions += 1
        counters.airtime += seconds
        if now >= self._busy_until:
            counters.busy_time += seconds
        elif tx.end > self._busy_until:
            counters.busy_time += tx.end - self._busy_until
        self._busy_until = max(self._busy_until, tx.end)
        self.airtime_by_node[node] += seconds
        self.tx_by_node[node] += 1
        self.history.append((node, frame, seconds))
        self.duty[node].add(now, seconds)
        self.utilisation[node].add(now, seconds)
        self.scheduler.at(tx.end, self._finish, tx)
        return tx

    def _finish(self, tx: Transmission) -> None:
        del self._sending[tx.sender]
        counters = self.counters
        received: list[Arrival] = []
        for arrival in tx.arrivals:
            receiver = arrival.receiver
            self._active[receiver].remove(arrival)
            outcome = self._outcome(arrival)
            if outcome == "ok":
                received.append(arrival)
            elif outcome == "collision":
                counters.collisions += 1
                self.collisions_by_node[receiver] += 1
            elif outcome == "weak":
                counters.too_weak += 1
            elif outcome == "half_duplex":
                counters.half_duplex += 1
            elif outcome == "dropped":
                counters.dropped += 1
            if outcome != "weak":
                # Channel utilisation counts what the radio could decode, as the firmware does.
                self.utilisation[receiver].add(tx.start, tx.airtime)
        self._on_sent(tx.sender, tx.frame)
        for arrival in received:
            counters.receptions += 1
            self._on_receive(arrival.receiver, tx.frame, arrival.snr_db, arrival.rssi_dbm)

    def _outcome(self, arrival: Arrival) -> str:
        if arrival.snr_db < self._floor:
            return "weak"
        if not self._is_listening(arrival.receiver):
            return "off"
        if arrival.deaf:
            return "half_duplex"
        if arrival.interference > 0 and (
            10 * math.log10(arrival.power / arrival.interference) < self._capture
        ):
            return "collision"
        if arrival.drop > 0 and self._rng.random() < arrival.drop:
            return "dropped"
        return "ok"

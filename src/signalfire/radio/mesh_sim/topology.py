"""Who hears whom, and how well: positions, path loss, and the SNR/RSSI of every link.

The model is deliberately simple and says so:

- log-distance path loss from a 1 m free-space reference at the carrier frequency, with
  an exponent that falls from `ground_exponent` (handhelds among buildings) towards
  `los_exponent` (near line of sight) as the higher end of a link rises above the
  town's ground level -- a relay on a hill hears far better than one in a street;
- per-link log-normal shadowing, drawn once per pair of nodes from the seed (the same
  wall stands between two radios all day), plus per-link extra attenuation and drop
  probability from the scenario;
- thermal noise over the preset's bandwidth plus the receiver's noise figure; a frame
  can be demodulated when its SNR is at or above the SX126x floor for its spreading
  factor (datasheet table: -7.5 dB at SF7 down to -20 dB at SF12).

Per-reception fading is drawn by the air model, not here.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from signalfire.airtime import Preset

EARTH_RADIUS_M = 6_371_008.8
THERMAL_NOISE_DBM_PER_HZ = -174.0
# SX1261/2 datasheet, table 6-1 (and the SX1276 one): demodulator SNR floor by SF.
DEMODULATION_FLOOR_DB = {7: -7.5, 8: -10.0, 9: -12.5, 10: -15.0, 11: -17.5, 12: -20.0}
# Below the floor a signal still raises the noise for others and can trip channel
# activity detection; further down it is indistinguishable from noise.
AUDIBLE_MARGIN_DB = 10.0


@dataclass(frozen=True, slots=True)
class Site:
    """Where a radio is and how it radiates."""

    latitude: float
    longitude: float
    altitude: float = 0.0  # metres above sea level, antenna included
    tx_power_dbm: float = 20.0
    antenna_gain_dbi: float = 0.0


@dataclass(frozen=True, slots=True)
class Propagation:
    """The radio environment of a whole scenario."""

    preset: Preset
    frequency_mhz: float = 869.525  # EU_868 LONG_FAST default slot
    noise_figure_db: float = 6.0
    ground_exponent: float = 3.5
    los_exponent: float = 2.6
    los_height_m: float = 150.0  # above ground, where a link counts as line of sight
    ground_altitude_m: float = 0.0
    shadowing_db: float = 4.0  # sigma of per-link shadowing
    fading_db: float = 2.0  # sigma of per-reception fading (used by the air model)
    base_loss: float = 0.0  # probability that any frame is lost on any link

    @property
    def noise_floor_dbm(self) -> float:
        return (
            THERMAL_NOISE_DBM_PER_HZ
            + 10 * math.log10(self.preset.bandwidth_hz)
            + self.noise_figure_db
        )

    @property
    def demodulation_floor_db(self) -> float:
        return DEMODULATION_FLOOR_DB[self.preset.spreading_factor]

    def exponent(self, elevation_m: float) -> float:
        share = min(max(elevation_m, 0.0) / self.los_height_m, 1.0) if self.los_height_m else 1.0
        return self.ground_exponent - (self.ground_exponent - self.los_exponent) * share

    def path_loss_db(self, distance_m: float, elevation_m: float) -> float:
        reference = 20 * math.log10(self.frequency_mhz) - 27.55  # free space at 1 m
        return reference + 10 * self.exponent(elevation_m) * math.log10(max(distance_m, 1.0))


@dataclass(frozen=True, slots=True)
class LinkAdjustment:
    """What a scenario adds to one pair of nodes (both directions)."""

    extra_db: float = 0.0
    drop: float = 0.0  # probability that a frame on this link is lost anyway


@dataclass(frozen=True, slots=True)
class Link:
    """One direction of a pair: what `receiver` makes of `sender`'s transmissions."""

    sender: int
    receiver: int
    rssi_dbm: float  # mean, before fading
    snr_db: float
    drop: float


def distance_m(a: Site, b: Site) -> float:
    """Great-circle distance with the height difference (metres)."""
    lat1, lat2 = math.radians(a.latitude), math.radians(b.latitude)
    dlat = lat2 - lat1
    dlon = math.radians(b.longitude - a.longitude)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    ground = 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))
    return math.hypot(ground, a.altitude - b.altitude)


def offset(latitude: float, longitude: float, east_m: float, north_m: float) -> tuple[float, float]:
    """The point `east_m`, `north_m` metres from a position (flat earth: a town is small)."""
    lat = latitude + north_m / 111_320.0
    lon = longitude + east_m / (111_320.0 * math.cos(math.radians(latitude)))
    return lat, lon


def pair(a: int, b: int) -> tuple[int, int]:
    return (a, b) if a <= b else (b, a)


class Topology:
    """The links among a fixed set of sites. Immutable once built."""

    def __init__(
        self,
        sites: Mapping[int, Site],
        propagation: Propagation,
        *,
        adjustments: Mapping[tuple[int, int], LinkAdjustment] | None = None,
        seed: int = 0,
    ) -> None:
        self.sites = dict(sites)
        self.propagation = propagation
        self._adjustments = {pair(*k): v for k, v in (adjustments or {}).items()}
        self._seed = seed
        self.floor_db = propagation.demodulation_floor_db
        self.noise_floor_dbm = propagation.noise_floor_dbm
        self._links: dict[int, tuple[Link, ...]] = {num: () for num in self.sites}
        self._by_pair: dict[tuple[int, int], Link] = {}
        nums = sorted(self.sites)
        found: dict[int, list[Link]] = {num: [] for num in nums}
        for i, a in enumerate(nums):
            for b in nums[i + 1 :]:
                loss = self._pair_loss(a, b)
                for sender, receiver in ((a, b), (b, a)):
                    link = self._link(sender, receiver, loss)
                    if link.snr_db >= self.floor_db - AUDIBLE_MARGIN_DB:
                        found[sender].append(link)
                        self._by_pair[(sender, receiver)] = link
        # Receivers in ascending node number: the order in which the air model draws
        # fading, so it must not depend on dict insertion order elsewhere.
        self._links = {num: tuple(links) for num, links in found.items()}

    def _pair_loss(self, a: int, b: int) -> float:
        site_a, site_b = self.sites[a], self.sites[b]
        prop = self.propagation
        elevation = max(site_a.altitude, site_b.altitude) - prop.ground_altitude_m
        loss = prop.path_loss_db(distance_m(site_a, site_b), elevation)
        if prop.shadowing_db > 0:
            # One draw per pair, from the seed and the pair alone: adding a node to a
            # scenario does not move the walls between the others.
            draw = random.Random(f"signalfire-mesh-sim-shadowing:{self._seed}:{a}:{b}")  # noqa: S311
            loss += draw.gauss(0.0, prop.shadowing_db)
        return loss + self._adjustments.get((a, b), LinkAdjustment()).extra_db

    def _link(self, sender: int, receiver: int, loss: float) -> Link:
        tx, rx = self.sites[sender], self.sites[receiver]
        rssi = tx.tx_power_dbm + tx.antenna_gain_dbi + rx.antenna_gain_dbi - loss
        drop = self._adjustments.get(pair(sender, receiver), LinkAdjustment()).drop
        base = self.propagation.base_loss
        return Link(
            sender=sender,
            receiver=receiver,
            rssi_dbm=rssi,
            snr_db=rssi - self.noise_floor_dbm,
            drop=1 - (1 - drop) * (1 - base),
        )

    def links_from(self, sender: int) -> tuple[Link, ...]:
        """Every receiver for which `sender`'s signal matters (decodable or interfering)."""
        return self._links.get(sender, ())

    def link(self, sender: int, receiver: int) -> Link | None:
        return self._by_pair.get((sender, receiver))

    def in_range(self, sender: int, receiver: int) -> bool:
        """Whether the mean signal is decodable (fading may still lose single frames)."""
        link = self._by_pair.get((sender, receiver))
        return link is not None and link.snr_db >= self.floor_db

    def hops_from(self, origin: int) -> dict[int, int]:
        """Relays needed to reach each node from `origin` over in-range links (BFS)."""
        hops = {origin: 0}
        queue = deque([origin])
        while queue:
            node = queue.popleft()
            for link in self._links.get(node, ()):
                if link.receiver not in hops and link.snr_db >= self.floor_db:
                    hops[link.receiver] = hops[node] + 1
                    queue.append(link.receiver)
        return {num: max(h - 1, 0) for num, h in hops.items()}

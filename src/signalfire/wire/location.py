"""Location quantised to 24+24 bits: about 1.2 m of latitude, 2.4 m of longitude at the equator."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import BadField, EncodeError
from .vocab import MAX_ACCURACY_CLASS, accuracy_bound, accuracy_class_for

LAT_STEPS = (1 << 24) - 1  # lat_q 0 is -90, lat_q LAT_STEPS is +90 exactly
LON_STEPS = 1 << 24  # lon_q wraps: 0 is -180, which is also +180
ENCODED_SIZE = 7


def _round_half_up(x: float) -> int:
    # floor(x + 0.5), spelled out so a C implementation rounds the same way
    return math.floor(x + 0.5)


@dataclass(frozen=True, slots=True)
class Location:
    lat_q: int
    lon_q: int
    accuracy_class: int = 0

    @classmethod
    def from_degrees(
        cls,
        lat: float,
        lon: float,
        *,
        accuracy_m: float | None = None,
        accuracy_class: int | None = None,
    ) -> Location:
        if not (math.isfinite(lat) and -90.0 <= lat <= 90.0):
            raise EncodeError(f"latitude {lat} is outside -90..90 degrees")
        if not (math.isfinite(lon) and -180.0 <= lon <= 180.0):
            raise EncodeError(f"longitude {lon} is outside -180..180 degrees")
        if accuracy_class is None:
            accuracy_class = accuracy_class_for(accuracy_m)
        elif not 0 <= accuracy_class <= MAX_ACCURACY_CLASS:
            raise EncodeError(f"accuracy class {accuracy_class} is outside 0-{MAX_ACCURACY_CLASS}")
        lat_q = _round_half_up((lat + 90.0) / 180.0 * LAT_STEPS)
        lon_q = _round_half_up((lon + 180.0) / 360.0 * LON_STEPS) % LON_STEPS
        return cls(lat_q, lon_q, accuracy_class)

    @property
    def lat(self) -> float:
        return self.lat_q * 180.0 / LAT_STEPS - 90.0

    @property
    def lon(self) -> float:
        return self.lon_q * 360.0 / LON_STEPS - 180.0

    @property
    def accuracy_m(self) -> float | None:
        """Upper bound of the accuracy class in metres (None: unknown; inf: worse than 5 km)."""
        return accuracy_bound(self.accuracy_class)

    def encode(self) -> bytes:
        if not (0 <= self.lat_q <= LAT_STEPS and 0 <= self.lon_q < LON_STEPS):
            raise EncodeError("quantised location out of range")
        if not 0 <= self.accuracy_class <= MAX_ACCURACY_CLASS:
            raise EncodeError(
                f"accuracy class {self.accuracy_class} is outside 0-{MAX_ACCURACY_CLASS}"
            )
        return (
            self.lat_q.to_bytes(3, "big")
            + self.lon_q.to_bytes(3, "big")
            + bytes([self.accuracy_class])
        )

    @classmethod
    def decode(cls, data: bytes) -> Location:
        if len(data) != ENCODED_SIZE:
            raise BadField(f"location must be {ENCODED_SIZE} bytes, got {len(data)}")
        accuracy_class = data[6]
        accuracy_bound(accuracy_class)  # raises BadField for undefined classes
        return cls(
            int.from_bytes(data[0:3], "big"),
            int.from_bytes(data[3:6], "big"),
            accuracy_class,
        )

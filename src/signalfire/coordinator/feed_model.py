"""One stored report as people see it: the shape shared by the JSON API, the web page and exports.

Built from a reports row (plus its receipts and coordinator state) by
feed.py; exports.py turns lists of them into GeoJSON, CSV/HXL, CoT, CAP and
PFIF. A ``FeedReport`` never carries the raw packet or key material.

Positions are either exact (as the sender encoded them) or coarsened for
viewers: snapped to the centre of a grid cell ``precision_m`` wide, with
``coarse`` set, so that no export or page can mistake one for the other.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field, replace
from typing import Any

from signalfire import wire

STATES = ("new", "seen", "assigned", "resolved")  # coordinator handling, in order
_M_PER_DEG_LAT = 111_320.0


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def accuracy_bound_m(accuracy_class: int | None) -> float | None:
    """The class's upper bound in metres; None when unknown or worse than the last class."""
    if accuracy_class is None:
        return None
    bound = wire.accuracy_bound(accuracy_class)
    if bound is None or math.isinf(bound):
        return None
    return float(bound)


def coarsen(lat: float, lon: float, cell_m: float) -> tuple[float, float]:
    """The centre of the grid cell (about ``cell_m`` on a side) that holds the point.

    Latitude bands are ``cell_m`` tall; longitude steps are widened by
    1/cos(band latitude) so that cells stay roughly square and a point can
    never be recovered to better than the cell, whatever the latitude.
    """
    dlat = cell_m / _M_PER_DEG_LAT
    band = math.floor((lat + 90.0) / dlat)
    clat = min(90.0, -90.0 + (band + 0.5) * dlat)
    cos = max(math.cos(math.radians(clat)), 0.01)
    dlon = min(360.0, dlat / cos)
    col = math.floor((lon + 180.0) / dlon)
    clon = -180.0 + (col + 0.5) * dlon
    if clon > 180.0:
        clon -= 360.0
    return round(clat, 6), round(clon, 6)


@dataclass(frozen=True)
class Mark:
    """A coordinator's handling of a report: seen, assigned or resolved, with a note."""

    state: str
    note: str
    by: str
    at: float

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state, "note": self.note, "by": self.by, "at": self.at}


@dataclass(frozen=True)
class FeedReceipt:
    gateway_key_id: str
    gateway_name: str | None
    uplink: str
    received_at: float | None
    snr: float | None = None
    rssi: int | None = None
    hops: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "gateway_key_id": self.gateway_key_id,
            "gateway_name": self.gateway_name,
            "uplink": self.uplink,
            "received_at": self.received_at,
            "snr": self.snr,
            "rssi": self.rssi,
            "hops": self.hops,
        }


@dataclass(frozen=True)
class FeedReport:
    id: str  # 32 hex digits
    kind: str  # "report" or "attested" (a stock-radio message a gateway vouches for)
    priority: str
    status: str  # wire.Status label: safe, sos, medical, ...
    people: int
    needs: tuple[str, ...]  # wire.Need labels
    lat: float | None
    lon: float | None
    accuracy_m: float | None  # exact: the accuracy class bound; coarse: None
    coarse: bool  # lat/lon are a grid cell centre, precision_m wide
    precision_m: float | None  # how far the shown position may be from the sender's
    text: str | None
    sender: str  # stable id of who sent it: the key id, or "node-<8 hex>" for stock radios
    key_id: str  # the signing key (a gateway's for attested reports)
    seq: int
    created_at: int  # the sender's clock, Unix seconds
    received_at: float  # when the coordinator first stored it
    flags: tuple[str, ...] = ()  # future-time, too-old, seq-reused
    node_num: int | None = None  # attested: the stock radio's Meshtastic node number
    receipts: tuple[FeedReceipt, ...] = ()
    mark: Mark | None = None  # latest handling; None: new
    extra: dict[str, Any] = field(default_factory=dict)  # room for later fields in to_json

    @property
    def state(self) -> str:
        return "new" if self.mark is None else self.mark.state

    @property
    def has_position(self) -> bool:
        return self.lat is not None and self.lon is not None

    def coarsened(self, cell_m: float) -> FeedReport:
        """This report with its position snapped to a grid cell (for viewers)."""
        if self.lat is None or self.lon is None:
            return replace(self, coarse=True, accuracy_m=None, precision_m=None)
        lat, lon = coarsen(self.lat, self.lon, cell_m)
        # Half the cell diagonal plus what the sender itself did not know.
        precision = cell_m * math.sqrt(2) / 2 + (self.accuracy_m or 0.0)
        return replace(
            self, lat=lat, lon=lon, coarse=True, accuracy_m=None, precision_m=round(precision)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "priority": self.priority,
            "status": self.status,
            "people": self.people,
            "needs": list(self.needs),
            "lat": self.lat,
            "lon": self.lon,
            "accuracy_m": self.accuracy_m,
            "coarse": self.coarse,
            "precision_m": self.precision_m,
            "text": self.text,
            "sender": self.sender,
            "key_id": self.key_id,
            "seq": self.seq,
            "created_at": self.created_at,
            "created_at_iso": iso(self.created_at),
            "received_at": self.received_at,
            "received_at_iso": iso(self.received_at),
            "flags": list(self.flags),
            "node_num": self.node_num,
            "receipts": [r.to_json() for r in self.receipts],
            "gateways": sorted({r.gateway_name or r.gateway_key_id for r in self.receipts}),
            "state": self.state,
            "mark": None if self.mark is None else self.mark.to_json(),
            **self.extra,
        }

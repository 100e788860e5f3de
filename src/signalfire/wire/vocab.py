"""The closed vocabularies of a report: status, needs, priority, accuracy."""

from __future__ import annotations

import enum

from .errors import BadField, EncodeError


class Status(enum.IntEnum):
    """What the sender says about themselves (4 bits on the wire)."""

    SAFE = 0
    SOS = 1  # life-threatening emergency
    MEDICAL = 2
    TRAPPED = 3
    EVACUATE = 4
    NEED_SUPPLIES = 5
    MISSING_PERSON = 6  # a report about someone else
    CANCEL = 7  # withdraws the sender's earlier sos

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", "-")

    @classmethod
    def from_label(cls, label: str) -> Status:
        key = label.strip().upper().replace("-", "_")
        try:
            return cls[key]
        except KeyError:
            known = ", ".join(s.label for s in cls)
            raise EncodeError(f"unknown status {label!r}; use one of: {known}") from None

    @classmethod
    def from_code(cls, code: int) -> Status:
        try:
            return cls(code)
        except ValueError:
            raise BadField(f"status code {code} is not defined in v1 (0-7 are)") from None


class Priority(enum.IntEnum):
    """Delivery class, visible in the clear header so relays can order without decrypting."""

    ROUTINE = 0
    ELEVATED = 1
    LIFE_SAFETY = 2

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", "-")


_PRIORITY_OF = {
    Status.SAFE: Priority.ROUTINE,
    Status.SOS: Priority.LIFE_SAFETY,
    Status.MEDICAL: Priority.LIFE_SAFETY,
    Status.TRAPPED: Priority.LIFE_SAFETY,
    Status.EVACUATE: Priority.ELEVATED,
    Status.NEED_SUPPLIES: Priority.ELEVATED,
    Status.MISSING_PERSON: Priority.ELEVATED,
    Status.CANCEL: Priority.ELEVATED,
}


def priority_of(status: Status) -> Priority:
    return _PRIORITY_OF[status]


class Need(enum.IntFlag):
    """Supplies asked for (one bit each)."""

    WATER = 1 << 0
    FOOD = 1 << 1
    SHELTER = 1 << 2
    MEDICINE = 1 << 3
    POWER = 1 << 4
    TRANSPORT = 1 << 5


NO_NEEDS = Need(0)
ALL_NEEDS = Need.WATER | Need.FOOD | Need.SHELTER | Need.MEDICINE | Need.POWER | Need.TRANSPORT


def need_labels(needs: Need) -> list[str]:
    return [n.name.lower() for n in Need if n & needs and n.name is not None]


def needs_from_labels(labels: list[str] | tuple[str, ...]) -> Need:
    result = Need(0)
    for raw in labels:
        label = raw.strip().lower()
        if not label:
            continue
        try:
            result |= Need[label.upper()]
        except KeyError:
            known = ", ".join(n.name.lower() for n in Need if n.name is not None)
            raise EncodeError(f"unknown need {raw!r}; use any of: {known}") from None
    return result


# Upper bound of each accuracy class in metres; class 0 means "unknown" and
# the last class means "worse than 5 km".
ACCURACY_BOUNDS_M: tuple[float | None, ...] = (
    None,
    5,
    10,
    25,
    50,
    100,
    250,
    500,
    1000,
    2500,
    5000,
    float("inf"),
)
MAX_ACCURACY_CLASS = len(ACCURACY_BOUNDS_M) - 1


def accuracy_class_for(metres: float | None) -> int:
    """The smallest class whose bound covers ``metres`` (None -> 0, unknown)."""
    if metres is None:
        return 0
    if metres != metres or metres < 0:  # NaN or negative
        raise EncodeError(f"accuracy must be a non-negative number of metres, not {metres}")
    for cls, bound in enumerate(ACCURACY_BOUNDS_M):
        if bound is not None and metres <= bound:
            return cls
    return MAX_ACCURACY_CLASS


def accuracy_bound(cls: int) -> float | None:
    if not 0 <= cls <= MAX_ACCURACY_CLASS:
        raise BadField(f"accuracy class {cls} is not defined (0-{MAX_ACCURACY_CLASS} are)")
    return ACCURACY_BOUNDS_M[cls]

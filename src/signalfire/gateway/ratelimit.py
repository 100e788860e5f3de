"""Token buckets per radio node and per sender key, so one source cannot crowd out the rest."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable


class Buckets:
    """``rate_per_minute`` tokens a minute, up to ``burst``; memory bounded by ``max_keys``.

    Evicting the least recently seen key gives a flooder with many fake node
    numbers a fresh bucket each time, but every real source keeps its own, and
    the per-key limit and the store's shedding still bound what a flood costs.
    """

    def __init__(self, rate_per_minute: float, burst: float, max_keys: int = 20_000) -> None:
        self.rate = rate_per_minute / 60.0
        self.burst = burst
        self.max_keys = max_keys
        self._state: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()
        self.refused = 0

    def allow(self, key: Hashable, now: float, cost: float = 1.0) -> bool:
        tokens, last = self._state.get(key, (self.burst, now))
        # max(0, ...): a clock that jumps back (a Pi without RTC) must not drain buckets
        tokens = min(self.burst, tokens + max(0.0, now - last) * self.rate)
        allowed = tokens >= cost
        if allowed:
            tokens -= cost
        else:
            self.refused += 1
        self._state[key] = (tokens, now)
        self._state.move_to_end(key)
        while len(self._state) > self.max_keys:
            self._state.popitem(last=False)
        return allowed

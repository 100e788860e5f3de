"""Medium access for one radio: when a queued frame may go on the air.

Follows the firmware's RadioInterface / RadioLibInterface (v2.7):

- slot time = CAD duration (2.5 symbols) + 7.6 ms of propagation, turnaround and MAC
  processing, truncated to whole milliseconds (computeSlotTimeMsec): 28 ms on LONG_FAST;
- a radio's own packet waits random(0, 2^CW) slots, CW growing from 3 to 8 with the
  channel utilisation it measured over the last minute (getTxDelayMsec);
- a rebroadcast waits by the SNR it was heard with (getTxDelayMsecWeighted): the
  stronger, the longer, since a far relay extends the flood more. CW maps SNR -20..10 dB
  onto 3..8; a ROUTER waits random(0, 2*CW) slots, anyone else first lets routers go
  (2*CWmax slots) and then waits random(0, 2^CW) slots;
- when the timer fires and channel activity detection finds the channel busy, the radio
  backs off with a fresh delay instead of transmitting;
- the queue is ordered by priority (ACK, then reliable, then default), FIFO within one,
  and holds at most 16 packets (MAX_TX_QUEUE).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from signalfire.airtime import Preset
from signalfire.radio.mesh_sim.air import UTILISATION_WINDOW, Air, Scheduler, Timer
from signalfire.radio.mesh_sim.frames import Frame
from signalfire.radio.mesh_sim.roles import Role

CW_MIN = 3
CW_MAX = 8
SNR_MIN = -20
SNR_MAX = 10
MAX_TX_QUEUE = 16
PROCESSING_TIME = 4.5  # seconds to receive, process and build a packet again (empirical, firmware)

# MeshPacket.Priority
PRIORITY_ACK = 120
PRIORITY_RELIABLE = 70
PRIORITY_DEFAULT = 64


def slot_time(preset: Preset) -> float:
    symbol_ms = preset.symbol_time * 1000
    return int(2.5 * symbol_ms + 0.2 + 0.4 + 7.0) / 1000


def arduino_map(x: float, in_min: int, in_max: int, out_min: int, out_max: int) -> int:
    """Arduino's map(): long arithmetic, the input truncated and the quotient towards zero."""
    numerator = (int(x) - in_min) * (out_max - out_min)
    denominator = in_max - in_min
    quotient = abs(numerator) // abs(denominator)
    if (numerator < 0) != (denominator < 0):
        quotient = -quotient
    return quotient + out_min


def cw_for_snr(snr: float) -> int:
    # The firmware does not clamp; an SNR above ~16 dB would give CW 9. Real radios
    # rarely report that much, and the clamp keeps the window bounded here.
    return min(max(arduino_map(snr, SNR_MIN, SNR_MAX, CW_MIN, CW_MAX), CW_MIN), CW_MAX)


def cw_for_utilisation(percent: float) -> int:
    return min(max(arduino_map(percent, 0, 100, CW_MIN, CW_MAX), CW_MIN), CW_MAX)


def priority_of(frame: Frame) -> int:
    if frame.is_routing:
        return PRIORITY_ACK
    return PRIORITY_RELIABLE if frame.want_ack else PRIORITY_DEFAULT


@dataclass(slots=True, eq=False)
class Queued:
    frame: Frame
    priority: int
    rx_snr: float | None  # None: this radio's own packet
    not_before: float = 0.0  # ROUTER_LATE moved it into the late window
    late: bool = False


class TxQueue:
    """One radio's transmit queue and transmit timer."""

    def __init__(
        self,
        node: int,
        role: Role,
        *,
        scheduler: Scheduler,
        air: Air,
        rng: random.Random,
        on_backoff: Callable[[Frame], None],
        on_transmit: Callable[[Frame], None],
        max_len: int = MAX_TX_QUEUE,
    ) -> None:
        self.node = node
        self.role = role
        self._scheduler = scheduler
        self._air = air
        self._rng = rng
        self._slot = slot_time(air.preset)
        self._on_backoff = on_backoff
        self._on_transmit = on_transmit
        self._max_len = max_len
        self._queue: list[Queued] = []
        self._timer: Timer | None = None

    # -- delays ----------------------------------------------------------------------

    def utilisation_percent(self) -> float:
        used = self._air.utilisation[self.node].used(self._scheduler.now)
        return 100.0 * used / UTILISATION_WINDOW

    def own_delay(self) -> float:
        cw = cw_for_utilisation(self.utilisation_percent())
        return self._rng.randrange(1 << cw) * self._slot

    def relay_delay(self, snr: float) -> float:
        cw = cw_for_snr(snr)
        if self.role.rebroadcasts_early:
            return self._rng.randrange(2 * cw) * self._slot
        return (2 * CW_MAX + self._rng.randrange(1 << cw)) * self._slot

    def worst_relay_delay(self, snr: float) -> float:
        """getTxDelayMsecWeightedWorst: by then every CLIENT that heard it has had its turn."""
        return (2 * CW_MAX + (1 << cw_for_snr(snr))) * self._slot

    def retransmission_interval(self, airtime: float) -> float:
        """getRetransmissionMsec: time to let a packet and its ack cross the mesh."""
        cw = cw_for_utilisation(self.utilisation_percent())
        slots = (1 << cw) + 2 * CW_MAX + (1 << ((CW_MAX + CW_MIN) // 2))
        return 2 * airtime + slots * self._slot + PROCESSING_TIME

    def _delay(self, item: Queued) -> float:
        if item.rx_snr is None:
            return self.own_delay()
        return self.relay_delay(item.rx_snr)

    # -- queue -----------------------------------------------------------------------

    def enqueue(self, frame: Frame, *, rx_snr: float | None) -> bool:
        """Queue a frame; False when the queue is full (the firmware drops it)."""
        if len(self._queue) >= self._max_len:
            return False
        item = Queued(frame, priority_of(frame), rx_snr)
        queue = self._queue
        index = len(queue)
        while index > 0 and queue[index - 1].priority < item.priority:
            index -= 1
        queue.insert(index, item)
        self._arm()
        return True

    def contains(self, key: tuple[int, int]) -> bool:
        return any(item.frame.key == key for item in self._queue)

    def cancel(self, key: tuple[int, int]) -> bool:
        """Take a frame that is still waiting off the queue (cancelSending)."""
        for index, item in enumerate(self._queue):
            if item.frame.key == key:
                del self._queue[index]
                return True
        return False

    def defer_late(self, key: tuple[int, int], snr: float) -> bool:
        """ROUTER_LATE heard someone else relay it: go after every client instead of never."""
        for item in self._queue:
            if item.frame.key == key and not item.late:
                item.late = True
                extra = self._rng.randrange(1 << cw_for_snr(snr)) * self._slot
                item.not_before = self._scheduler.now + self.worst_relay_delay(snr) + extra
                return True
        return False

    def clear(self) -> None:
        self._queue.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- the transmit timer ----------------------------------------------------------

    def on_sent(self) -> None:
        """The radio finished a transmission: the next frame gets its own delay."""
        self._arm()

    def _arm(self) -> None:
        if self._timer is None and self._queue and not self._air.transmitting(self.node):
            self._timer = self._scheduler.after(self._delay(self._queue[0]), self._fire)

    def _fire(self) -> None:
        self._timer = None
        queue = self._queue
        if not queue or self._air.transmitting(self.node):
            return
        head = queue[0]
        now = self._scheduler.now
        if head.not_before > now:
            self._timer = self._scheduler.at(head.not_before, self._fire)
            return
        if self._air.channel_busy(self.node):
            self._on_backoff(head.frame)
            self._timer = self._scheduler.after(self._delay(head), self._fire)
            return
        del queue[0]
        self._air.transmit(self.node, head.frame)
        self._on_transmit(head.frame)

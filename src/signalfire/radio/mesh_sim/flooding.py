"""Meshtastic managed flooding for one radio (FloodingRouter + ReliableRouter, v2.7).

- Duplicate detection: each radio remembers the (from, id) pairs it has seen for ten
  minutes (PacketHistory); a copy it has seen is dropped.
- A radio rebroadcasts a packet that is not for it while hop_limit > 0, with hop_limit
  one lower and hop_start kept, after an SNR-weighted delay (see `mac`).
- Hearing a duplicate while its own rebroadcast still waits: a CLIENT cancels it (someone
  nearer the edge already relayed); ROUTER and REPEATER always relay; ROUTER_LATE moves
  it into the late window, after every client.
- A duplicate with hop_limit == hop_start is the original sender trying again (its ack
  got lost): relays that no longer hold it relay it again, and the destination acks again.
- The destination of a want_ack direct message answers with a ROUTING_APP ack
  (request_id = the packet id), flooded back with a hop limit fitted to the hops the
  packet took (Router::getHopLimitForResponse). A relay that hears the ack drops its
  pending rebroadcast of the acked message.
- Reliable sending (virtual radios only; an attached emulated device does its own): a
  want_ack packet is sent again after getRetransmissionMsec, up to `max_retransmits`
  times, until a real ack arrives or the radio hears a neighbour rebroadcast it (an
  implicit ack).
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from meshtastic.protobuf import mesh_pb2

from signalfire.radio.mesh_protocol import BROADCAST_NUM
from signalfire.radio.mesh_sim.air import Air, Scheduler, Timer
from signalfire.radio.mesh_sim.frames import ROUTING_APP, Frame
from signalfire.radio.mesh_sim.mac import TxQueue
from signalfire.radio.mesh_sim.roles import Role
from signalfire.radio.mesh_sim.stats import EventLog, NodeStats

FLOOD_EXPIRE = 600.0  # seconds a radio remembers a (from, id) pair
HISTORY_CAPACITY = 512
MAX_RETRANSMITS = 3
ROUTING_ACK_PAYLOAD = mesh_pb2.Routing(error_reason=mesh_pb2.Routing.Error.NONE).SerializeToString()

# app(node, frame, rx_snr, rx_rssi): a packet this radio hands to its application.
Application = Callable[["MeshNode", Frame, float, float], None]
# settled(node, packet_id, how): a want_ack packet was acked ("ack", "implicit_ack") or
# its retransmissions ran out ("give_up") -- what the sending app waits for.
Settled = Callable[["MeshNode", int, str], None]


class PacketHistory:
    """(from, id) pairs a radio has seen recently."""

    def __init__(self, capacity: int = HISTORY_CAPACITY, lifetime: float = FLOOD_EXPIRE) -> None:
        self._seen: OrderedDict[tuple[int, int], float] = OrderedDict()
        self._capacity = capacity
        self._lifetime = lifetime

    def seen(self, key: tuple[int, int], now: float) -> bool:
        when = self._seen.get(key)
        return when is not None and now - when <= self._lifetime

    def remember(self, key: tuple[int, int], now: float) -> None:
        self._seen[key] = now
        self._seen.move_to_end(key)
        while len(self._seen) > self._capacity:
            self._seen.popitem(last=False)


def response_hop_limit(frame: Frame, configured: int) -> int:
    """Router::getHopLimitForResponse: as many hops as the request took, plus two spare."""
    if frame.hop_start:
        used = (
            frame.hop_start - frame.hop_limit if frame.hop_start >= frame.hop_limit else configured
        )
        if used > configured:
            return used
        if used + 2 < configured:
            return used + 2
    return configured


@dataclass(slots=True, eq=False)
class Pending:
    frame: Frame
    retries_left: int
    first_sent: float
    timer: Timer | None = None


class MeshNode:
    """The routing layer of one simulated radio."""

    def __init__(
        self,
        num: int,
        role: Role,
        *,
        hop_limit: int,
        scheduler: Scheduler,
        air: Air,
        rng: random.Random,
        log: EventLog,
        app: Application,
        settled: Settled,
        new_id: Callable[[], int],
        reliable: bool = True,
        max_retransmits: int = MAX_RETRANSMITS,
        duty_cycle_percent: float = 100.0,
    ) -> None:
        self.num = num
        self.role = role
        self.hop_limit = hop_limit
        self.reliable = reliable
        self.max_retransmits = max_retransmits
        self.duty_cycle_percent = duty_cycle_percent
        self.app = app
        self.settled = settled
        self.listening = True
        self.stats = NodeStats()
        self.history = PacketHistory()
        self.pending: dict[int, Pending] = {}
        # want_ack packets this radio sent, still waiting for the destination's real ack
        # (an implicit ack stops the retries but a DM's real ack may still follow).
        self._awaiting_ack: OrderedDict[int, float] = OrderedDict()
        self._scheduler = scheduler
        self._air = air
        self._log = log
        self._new_id = new_id
        self.queue = TxQueue(
            num,
            role,
            scheduler=scheduler,
            air=air,
            rng=rng,
            on_backoff=self._on_backoff,
            on_transmit=self._on_transmit,
        )

    @property
    def now(self) -> float:
        return self._scheduler.now

    # -- sending ---------------------------------------------------------------------

    def send(self, frame: Frame) -> bool:
        """This radio's application sends a packet (a first send or a device's own retry)."""
        if not self.listening:
            return False
        frame = frame.sent_by(self.num)
        self.history.remember(frame.key, self.now)
        if not self._enqueue(frame, rx_snr=None):
            return False
        self.stats.originated += 1
        self._log.add(self.now, "send", self.num, frame, f"port={frame.portnum} len={frame.length}")
        if (
            self.reliable
            and frame.want_ack
            and not frame.is_routing
            and frame.id not in self.pending
        ):
            self.pending[frame.id] = Pending(frame, self.max_retransmits, self.now)
            if not frame.is_broadcast:
                self._awaiting_ack[frame.id] = self.now
                while len(self._awaiting_ack) > HISTORY_CAPACITY:
                    self._awaiting_ack.popitem(last=False)
        return True

    def _enqueue(self, frame: Frame, *, rx_snr: float | None) -> bool:
        if self.duty_cycle_percent < 100 and self.duty_cycle_used() >= self.duty_cycle_percent:
            # Router::send refuses anything once the radio has used its hour's share.
            self.stats.duty_cycle_blocked += 1
            self._log.add(self.now, "duty_cycle", self.num, frame)
            return False
        if not self.queue.enqueue(frame, rx_snr=rx_snr):
            self.stats.queue_full += 1
            self._log.add(self.now, "queue_full", self.num, frame)
            return False
        return True

    def duty_cycle_used(self) -> float:
        """Percent of the last hour this radio spent transmitting."""
        return self._air.duty[self.num].percent(self.now)

    def _on_backoff(self, frame: Frame) -> None:
        self.stats.backoffs += 1

    def _on_transmit(self, frame: Frame) -> None:
        self._log.add(self.now, "tx", self.num, frame, f"hop={frame.hop_limit}/{frame.hop_start}")

    def on_sent(self, frame: Frame) -> None:
        """The air finished sending one of this radio's frames."""
        pending = self.pending.get(frame.id) if frame.src == self.num else None
        if pending is not None and pending.timer is None:
            # The retry clock starts once the packet is actually out, not while it queues.
            interval = self.queue.retransmission_interval(self._air.airtime_of(frame))
            pending.timer = self._scheduler.after(interval, self._retry, frame.id)
        self.queue.on_sent()

    def _retry(self, packet_id: int) -> None:
        pending = self.pending.get(packet_id)
        if pending is None:
            return
        pending.timer = None
        if pending.retries_left <= 0:
            del self.pending[packet_id]
            self.stats.gave_up += 1
            self._log.add(self.now, "give_up", self.num, pending.frame)
            self.settled(self, packet_id, "give_up")
            return
        pending.retries_left -= 1
        if self._enqueue(pending.frame, rx_snr=None):
            self.stats.retransmissions += 1
            self._log.add(self.now, "retry", self.num, pending.frame)
        else:
            del self.pending[packet_id]
            self.settled(self, packet_id, "give_up")

    def _settle(self, packet_id: int, how: str) -> None:
        pending = self.pending.pop(packet_id, None)
        if pending is not None:
            if pending.timer is not None:
                pending.timer.cancel()
            if how == "implicit_ack":
                self.stats.implicit_acks += 1
                latency = self.now - pending.first_sent
                self._log.add(self.now, how, self.num, pending.frame, f"after={latency:.3f}")
            self.settled(self, packet_id, how)
        if how == "ack":
            sent = self._awaiting_ack.pop(packet_id, None)
            if sent is not None:
                self.stats.acked += 1
                detail = f"request={packet_id:08x} after={self.now - sent:.3f}"
                self._log.add(self.now, how, self.num, None, detail)

    # -- receiving -------------------------------------------------------------------

    def power(self, on: bool) -> None:
        self.listening = on
        if not on:
            self.queue.clear()
            for pending in self.pending.values():
                if pending.timer is not None:
                    pending.timer.cancel()
            self.pending.clear()

    def on_receive(self, frame: Frame, snr: float, rssi: float) -> None:
        stats = self.stats
        stats.received += 1
        now = self.now
        key = frame.key
        if frame.src == self.num:
            # A neighbour relayed our own packet (ReliableRouter: an implicit ack).
            if self.reliable:
                self._settle(frame.id, "implicit_ack")
            else:
                self.app(self, frame, snr, rssi)  # the device draws its own conclusion
            return
        if self.history.seen(key, now):
            stats.duplicates += 1
            self._log.add(now, "dup", self.num, frame, f"hop={frame.hop_limit}")
            self._on_duplicate(frame, snr)
            return
        self.history.remember(key, now)
        self._log.add(now, "rx", self.num, frame, f"hop={frame.hop_limit} snr={snr:.1f}")
        # Someone acked (or answered) a direct message: no point in carrying it further.
        if (
            frame.request_id
            and frame.dst not in (self.num, BROADCAST_NUM)
            and self.queue.cancel((frame.dst, frame.request_id))
        ):
            stats.rebroadcasts_cancelled += 1
            self._log.add(now, "cancel", self.num, frame, "acked")
        if frame.dst in (self.num, BROADCAST_NUM):
            stats.delivered += 1
            if self.reliable and frame.dst == self.num:
                if frame.is_routing and frame.request_id:
                    self._settle(frame.request_id, "ack")
                elif frame.want_ack:
                    self._send_ack(frame)
            self.app(self, frame, snr, rssi)
        self._perhaps_rebroadcast(frame, snr)

    def _on_duplicate(self, frame: Frame, snr: float) -> None:
        repeated = frame.hop_start > 0 and frame.hop_start == frame.hop_limit
        if repeated:
            # The sender is retrying: it did not hear us (or the destination) the first time.
            if self.reliable and frame.dst == self.num and frame.want_ack and not frame.is_routing:
                self._send_ack(frame)
            if not self.queue.contains(frame.key):
                self._perhaps_rebroadcast(frame, snr)
            return
        if self.role.cancels_on_duplicate:
            if self.queue.cancel(frame.key):
                self.stats.rebroadcasts_cancelled += 1
                self._log.add(self.now, "cancel", self.num, frame)
        elif self.role is Role.ROUTER_LATE and self.queue.defer_late(frame.key, snr):
            self.stats.late_deferred += 1
            self._log.add(self.now, "late", self.num, frame)

    def _perhaps_rebroadcast(self, frame: Frame, snr: float) -> None:
        if (
            frame.dst == self.num
            or frame.hop_limit <= 0
            or frame.src == self.num
            or frame.id == 0
            or not self.role.rebroadcasts
        ):
            return
        if self._enqueue(frame.relayed_by(self.num), rx_snr=snr):
            self.stats.relays_queued += 1

    def _send_ack(self, request: Frame) -> None:
        hops = response_hop_limit(request, self.hop_limit)
        ack = Frame(
            src=self.num,
            dst=request.src,
            id=self._new_id(),
            portnum=ROUTING_APP,
            payload=ROUTING_ACK_PAYLOAD,
            hop_limit=hops,
            hop_start=hops,
            request_id=request.id,
            channel=request.channel,
            relay=self.num,
        )
        if self.send(ack):
            self.stats.acks_sent += 1

"""One worker thread per uplink: deliver what is due, life-safety first, back off on failure.

Workers sleep on a condition until a packet is due, a new one arrives
(``notify``) or they are stopped: no busy waiting, so a gateway on a
Raspberry Pi idles at nearly zero CPU for weeks.

Costly links (satellite SBD, SMS) add three things, through optional attributes of
the uplink:

- ``packer`` (signalfire.modem.container.Packer): which due packets share one message,
  chosen from the first ``PACK_CANDIDATES`` in sending order so that little of what is
  paid (50-byte credits, 140-octet SMS) is wasted and nothing more urgent is passed over;
- ``budget_per_day`` and ``cost(packets)``: units (credits, SMS) the link may spend in
  any 24 hours, counted in the store (``record_spend``) so that a restart does not reset
  them, from ``last_spent`` after each send. Past the budget only life-safety reports
  (and the announcements of their senders) go; the rest wait for the window to move;
- ``packer_within(units)``: a packer for a message that costs at most ``units``, used
  when the budget left cannot pay for the next full message;
- an UplinkError with ``hold_s`` (e.g. Iridium's "wait 3 minutes"): the packets are not
  tried again before that.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from ..modem.container import Candidate, Packer
from ..wire.vocab import Priority
from .records import StoredPacket
from .uplinks.base import Delivery, Uplink, UplinkError

log = logging.getLogger(__name__)

BACKOFF_BASE_S = 2.0
BACKOFF_MAX_S = 600.0
PROBE_MAX_S = 60.0
IDLE_CHECK_S = 300.0  # wake at least this often even with nothing due (cheap)
PACK_CANDIDATES = 200  # due packets a packer chooses among
BUDGET_WINDOW_S = 86_400.0


class DeliveryStore(Protocol):
    """The part of GatewayStore a worker uses."""

    def due(
        self, uplink: str, now: float, limit: int, max_total_bytes: int | None = None
    ) -> list[StoredPacket]: ...

    def next_due_at(self, uplink: str) -> float | None: ...

    def mark_done(self, uplink: str, copy_ids: Sequence[bytes], now: float) -> None: ...

    def mark_rejected(
        self, uplink: str, copy_ids: Sequence[bytes], reason: str, now: float
    ) -> None: ...

    def mark_failed(
        self, uplink: str, copy_ids: Sequence[bytes], error: str, next_attempt_at: float, now: float
    ) -> None: ...

    def supersede_older(self, uplink: str, now: float) -> object: ...

    def record_spend(self, uplink: str, units: int, now: float) -> None: ...

    def spent(self, uplink: str, since: float) -> tuple[int, float | None]: ...

    def set_status(self, key: str, value_json: str) -> None: ...


def backoff(failures: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential with +-20 % jitter, so many gateways do not retry in lockstep."""
    delay = min(cap, base * (2 ** max(0, failures - 1)))
    return float(delay * rng.uniform(0.8, 1.2))


class UplinkWorker:
    def __init__(
        self,
        uplink: Uplink,
        store: DeliveryStore,
        *,
        batch_size: int = 200,
        clock: Callable[[], float] = time.time,
        backoff_base: float = BACKOFF_BASE_S,
        backoff_max: float = BACKOFF_MAX_S,
        seed: int | None = None,
    ) -> None:
        self.uplink = uplink
        self.store = store
        self.batch_size = batch_size
        self.clock = clock
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._rng = random.Random(seed)  # noqa: S311 - jitter, not secrets
        self._cond = threading.Condition()
        self._stopping = False
        self._kicked = False
        self._thread = threading.Thread(target=self._run, name=f"uplink-{uplink.name}", daemon=True)
        self.failures = 0
        self.delivered = 0
        self.last_success: float | None = None
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        # Set while the daily budget keeps everything due from going (see _packed).
        self.budget_blocked_until: float | None = None
        # Since when the uplink has failed without a success: its going down and coming
        # back are logged as warnings, once each (the default log level shows them).
        self.down_since: float | None = None

    # -- control -------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def notify(self) -> None:
        """Something new is in the store: look now."""
        with self._cond:
            self._kicked = True
            self._cond.notify()

    def stop(self, timeout: float = 10.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)
        try:
            self.uplink.close()
        except Exception:
            log.exception("closing uplink %s", self.uplink.name)

    def _sleep(self, seconds: float) -> bool:
        """Wait up to ``seconds`` or until notified; False once stopping."""
        with self._cond:
            if not self._kicked and not self._stopping:
                self._cond.wait(max(0.0, seconds))
            self._kicked = False
            return not self._stopping

    # -- the loop ------------------------------------------------------------

    def _run(self) -> None:
        name = self.uplink.name
        probe_failures = 0
        while not self._stopping:
            try:
                # Probe only while the link is in doubt (at start, after a failed batch):
                # a draining backlog must not pay a round trip per batch.
                in_doubt = self.last_success is None or self.failures > 0
                if in_doubt and not self.uplink.probe():
                    probe_failures += 1
                    self._record_error("not reachable")
                    delay = backoff(probe_failures, 1.0, PROBE_MAX_S, self._rng)
                    if not self._sleep(delay):
                        return
                    continue
                probe_failures = 0
                worked = self.deliver_once()
            except Exception as exc:  # a bug must not kill delivery for weeks
                log.exception("uplink %s: unexpected error", name)
                self._record_error(f"{type(exc).__name__}: {exc}")
                worked = False
                if not self._sleep(backoff(self.failures + 1, self.backoff_base, 60, self._rng)):
                    return
            if worked:
                continue  # more may be due right away
            next_due = self.store.next_due_at(name)
            now = self.clock()
            wait = IDLE_CHECK_S if next_due is None else min(IDLE_CHECK_S, next_due - now)
            if self.budget_blocked_until is not None:
                # Due, but over budget: sleep until spending leaves the window (a new
                # life-safety report wakes us through notify()).
                wait = max(wait, min(IDLE_CHECK_S, self.budget_blocked_until - now))
            if not self._sleep(wait):
                return

    def deliver_once(self) -> bool:
        """Send one batch if anything is due; True if a batch was sent (whatever its fate)."""
        name = self.uplink.name
        now = self.clock()
        if self.uplink.costly:
            self.store.supersede_older(name, now)
        packer: Packer | None = getattr(self.uplink, "packer", None)
        if packer is None:
            due: list[StoredPacket] = self.store.due(
                name, now, self.batch_size, max_total_bytes=self.uplink.max_message_bytes
            )
        else:
            due = self._packed(packer, now)
        if not due:
            return False
        hold = 0.0
        try:
            delivery = self.uplink.send(due)
        except UplinkError as exc:
            delivery = Delivery()
            hold = float(getattr(exc, "hold_s", 0.0) or 0.0)
            self._record_error(exc.message)
            if not exc.transient:
                log.error("uplink %s refused the batch for good: %s", name, exc.message)
        spent = int(getattr(self.uplink, "last_spent", 0) or 0)
        if spent > 0:
            self.store.record_spend(name, spent, now)
        self._settle(due, delivery, hold)
        return True

    def _packed(self, packer: Packer, now: float) -> list[StoredPacket]:
        """The packets of the next message on a packing link, within its daily budget."""
        name = self.uplink.name
        candidates = self.store.due(name, now, PACK_CANDIDATES)
        self.budget_blocked_until = None
        if not candidates:
            return []
        chosen = _pick(packer, candidates)
        budget: int | None = getattr(self.uplink, "budget_per_day", None)
        if budget is None:
            return chosen
        spent, oldest = self.store.spent(name, now - BUDGET_WINDOW_S)
        remaining = budget - spent
        cost: Callable[[Sequence[StoredPacket]], int] = self.uplink.cost  # type: ignore[attr-defined]
        if cost(chosen) <= remaining:
            return chosen
        # A smaller message may still fit what is left of the budget (an SMS link's full
        # message is 8 parts; a day's last 3 parts must not go unused).
        within: Callable[[int], Packer | None] | None = getattr(self.uplink, "packer_within", None)
        smaller = within(remaining) if within is not None and remaining > 0 else None
        if smaller is not None:
            fitting = _pick(smaller, candidates)
            if fitting and cost(fitting) <= remaining:
                return fitting
        urgent = _life_safety(candidates)
        unit = getattr(self.uplink, "budget_unit", "units")
        if urgent:
            chosen = _pick(packer, urgent)
            log.warning(
                "uplink %s: daily budget (%d %s) would be exceeded (%d spent): sending %d "
                "life-safety packets anyway",
                name, budget, unit, spent, len(chosen),
            )  # fmt: skip
            return chosen
        self.budget_blocked_until = (oldest if oldest is not None else now) + BUDGET_WINDOW_S
        self._record_error(
            f"daily budget of {budget} {unit} used ({spent} in the last 24 h): routine and "
            "elevated packets wait; life-safety ones still go"
        )
        return []

    def _settle(self, due: list[StoredPacket], delivery: Delivery, hold: float = 0.0) -> None:
        name, now = self.uplink.name, self.clock()
        done = [p.copy_id for p in due if p.copy_id in delivery.acknowledged]
        rejected = {c: r for c, r in delivery.rejected.items() if c not in delivery.acknowledged}
        failed = [
            p.copy_id
            for p in due
            if p.copy_id not in delivery.acknowledged and p.copy_id not in rejected
        ]
        if done:
            self.store.mark_done(name, done, now)
            self.delivered += len(done)
            self.last_success = now
            if self.down_since is not None:
                log.warning(
                    "uplink %s: working again after %.0f s; %d packets delivered",
                    name, now - self.down_since, len(done),
                )  # fmt: skip
                self.down_since = None
        for copy_id, reason in rejected.items():
            log.warning("uplink %s: far side rejected %s for good: %s", name, copy_id.hex(), reason)
            self.store.mark_rejected(name, [copy_id], reason, now)
        if failed:
            self.failures += 1
            delay = backoff(self.failures, self.backoff_base, self.backoff_max, self._rng)
            retry_at = now + max(delay, hold)
            error = self.last_error or "not acknowledged"
            self.store.mark_failed(name, failed, error, retry_at, now)
        else:
            self.failures = 0
        self._publish_status()

    def _record_error(self, message: str) -> None:
        self.last_error = message
        self.last_error_at = self.clock()
        if self.down_since is None:
            self.down_since = self.last_error_at
            log.warning(
                "uplink %s: %s; packets wait in the store and are tried again", self.uplink.name,
                message,
            )  # fmt: skip
        else:
            log.info("uplink %s: %s", self.uplink.name, message)
        self._publish_status()

    def _publish_status(self) -> None:
        try:
            self.store.set_status(
                f"uplink:{self.uplink.name}",
                json.dumps(
                    {
                        "last_success": self.last_success,
                        "last_error": self.last_error,
                        "last_error_at": self.last_error_at,
                        "delivered": self.delivered,
                        "consecutive_failures": self.failures,
                    }
                ),
            )
        except Exception:
            log.exception("uplink %s: could not record status", self.uplink.name)


def _ranked(candidates: list[StoredPacket]) -> list[tuple[int, StoredPacket]]:
    """Candidates with their urgency, most urgent first (stable: oldest first within one).

    An announcement ranks just above the most urgent due report of its sender, not above
    every report: on a paid link the announcements of people saying "safe" must not
    spend the budget before an SOS (whose sender's announcement goes right before it).
    """
    top: dict[bytes, int] = {}
    for p in candidates:
        if p.kind != "announcement":
            top[p.key_id] = max(top.get(p.key_id, 0), int(p.priority))
    ranked = [
        (
            2 * top.get(p.key_id, int(p.priority)) + 1
            if p.kind == "announcement"
            else 2 * p.priority,
            p,
        )
        for p in candidates
    ]
    ranked.sort(key=lambda rp: -rp[0])
    return ranked


def _pick(packer: Packer, candidates: list[StoredPacket]) -> list[StoredPacket]:
    ranked = _ranked(candidates)
    chosen = packer.choose([Candidate(len(p.raw), rank) for rank, p in ranked])
    return [ranked[i][1] for i in chosen]


def _life_safety(candidates: list[StoredPacket]) -> list[StoredPacket]:
    """Life-safety packets, and the announcements their senders' reports need."""
    life = Priority.LIFE_SAFETY
    keys = {p.key_id for p in candidates if p.priority == life and p.kind != "announcement"}
    return [
        p
        for p in candidates
        if p.priority == life or (p.kind == "announcement" and p.key_id in keys)
    ]

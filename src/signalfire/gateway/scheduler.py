"""One worker thread per uplink: deliver what is due, life-safety first, back off on failure.

Workers sleep on a condition until a packet is due, a new one arrives
(``notify``) or they are stopped: no busy waiting, so a gateway on a
Raspberry Pi idles at nearly zero CPU for weeks.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from .records import StoredPacket
from .uplinks.base import Delivery, Uplink, UplinkError

log = logging.getLogger(__name__)

BACKOFF_BASE_S = 2.0
BACKOFF_MAX_S = 600.0
PROBE_MAX_S = 60.0
IDLE_CHECK_S = 300.0  # wake at least this often even with nothing due (cheap)


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
            if not self._sleep(wait):
                return

    def deliver_once(self) -> bool:
        """Send one batch if anything is due; True if a batch was sent (whatever its fate)."""
        name = self.uplink.name
        now = self.clock()
        if self.uplink.costly:
            self.store.supersede_older(name, now)
        due: list[StoredPacket] = self.store.due(
            name, now, self.batch_size, max_total_bytes=self.uplink.max_message_bytes
        )
        if not due:
            return False
        try:
            delivery = self.uplink.send(due)
        except UplinkError as exc:
            delivery = Delivery()
            self._record_error(exc.message)
            if not exc.transient:
                log.error("uplink %s refused the batch for good: %s", name, exc.message)
        self._settle(due, delivery)
        return True

    def _settle(self, due: list[StoredPacket], delivery: Delivery) -> None:
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
        for copy_id, reason in rejected.items():
            log.warning("uplink %s: far side rejected %s for good: %s", name, copy_id.hex(), reason)
            self.store.mark_rejected(name, [copy_id], reason, now)
        if failed:
            self.failures += 1
            retry_at = now + backoff(self.failures, self.backoff_base, self.backoff_max, self._rng)
            error = self.last_error or "not acknowledged"
            self.store.mark_failed(name, failed, error, retry_at, now)
        else:
            self.failures = 0
        self._publish_status()

    def _record_error(self, message: str) -> None:
        self.last_error = message
        self.last_error_at = self.clock()
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

"""MQTT ingest: coordinator workers sharing the gateways' stream (MQTT 5, paho-mqtt).

Gateways publish one signed batch of one packet per message on
``<prefix>/<network id>/reports/<gateway key id>`` at QoS 1
(gateway/uplinks/mqtt.py). Every worker subscribes to the shared subscription
``$share/<group>/<prefix>/<network id>/reports/+``, so the broker hands each
message to one worker of the group, and ingests what it gets with
:meth:`Ingestor.ingest_batches`.

The delivery promise, worker side:

- A message is acknowledged (PUBACK, paho's manual ack) only after what it
  carries is committed. A worker killed at any moment leaves its unacknowledged
  messages in its persistent session (clean_start false, a session expiry, a
  client id that is the same at every start), and the broker sends them again
  when that worker connects again. The store is idempotent, so a message
  ingested and killed before its ack costs a second look, nothing more.
- Messages that can never become good (a bad envelope, a gateway that is not
  enrolled or was revoked) are logged, counted and acknowledged.
- Database errors are not acknowledged: the message is tried again, after a
  back-off, for as long as it takes; it is never dropped.
- Messages are ingested in groups (up to ``max_group``, one transaction, one
  commit) and acknowledged together after the commit: with SQLite a commit is
  an fsync, with PostgreSQL a round trip, and either costs more than a
  message's own work.
- A message received on an earlier connection is ingested but not
  acknowledged: after a reconnection the broker sends it again under the same
  packet id, and acknowledging the stale copy later could acknowledge a newer
  message that reuses that id before it is stored.
- On SIGTERM a worker unsubscribes (the broker stops giving it a share),
  ingests and acknowledges what it already received, and disconnects; what is
  left stays in its session. Mosquitto keeps handing a share of the stream to
  a subscribed worker that is offline (queued in its session), so a crashed
  worker must come back: ``run_workers`` restarts it.

docs/uplinks.md ("Coordinator side") is the operator's description.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import re
import signal
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import wait as wait_for_processes
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from signalfire import batch as batchfmt
from signalfire.errors import SignalfireError
from signalfire.mqtt_client import RememberingClient, describe_connect_error

from .config import MqttSettings
from .ingest import GatewayRefused, Ingestor, IngestResult
from .store import CoordinatorStore

log = logging.getLogger(__name__)

UPLINK = "mqtt"  # the receipts' uplink name
EX_CONFIG = 78  # sysexits.h: a worker that cannot work with these settings; no restart
DEFAULT_MAX_GROUP = 64
# How many unacknowledged messages the broker may have in flight to one worker (MQTT 5
# Receive Maximum). A few groups' worth: enough to keep the worker busy while a group
# commits, few enough that a crash leaves little to send again.
DEFAULT_RECEIVE_MAXIMUM = 4 * DEFAULT_MAX_GROUP
PENDING_RETRY_S = 30.0  # unknown-sender reports: look again this often regardless
PENDING_SOON_S = 1.0  # ... and this soon after a group that left some pending
GRACEFUL_STOP_S = 10.0  # SIGTERM: finish what was received, for at most this long
QUIET_S = 0.3  # ... and stop once nothing arrived for this long
DB_BACKOFF_S = (0.5, 30.0)  # the database is unavailable: wait, doubling, within this
RETRY_BACKOFF_S = (5.0, 300.0)  # one message the store could not take (deferred, bad data)
_TICK_S = 0.5  # the longest the loop sleeps before looking at the stop flag again

# CONNACK refusals that retrying with the same settings cannot fix.
_CONFIG_REFUSALS = {
    0x84: "the broker does not speak MQTT 5",
    0x85: "the broker rejected the client id",
    0x86: "bad user name or password",
    0x87: "not authorised: Mosquitto also answers this to a wrong user name or password",
    0x8A: "this client is banned",
    0x8C: "bad authentication method",
}
# SUBACK refusals, all of them configuration problems.
_SUBSCRIBE_REFUSALS = {
    0x87: "not authorised: the broker's ACL must let the ingest user read the reports topic",
    0x8F: "the broker rejected the topic filter",
    0x9E: "the broker does not support shared subscriptions",
    0xA2: "the broker does not support wildcard subscriptions",
}
# Operational errors are about the database, not the message: back off and retry all.
_DATABASE_DOWN = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError)


class MqttIngestError(SignalfireError):
    """The broker refuses this worker for a reason a retry cannot fix."""


def subscription(settings: MqttSettings, network_id: bytes) -> str:
    """The shared subscription's topic filter for one network."""
    return f"$share/{settings.group}/{settings.topic_prefix}/{network_id.hex()}/reports/+"


def default_client_id_prefix() -> str:
    """``signalfire-ingest-<host name>``: stable across restarts, distinct between machines."""
    host = re.sub(r"[^A-Za-z0-9_.-]", "-", socket.gethostname())[:40] or "host"
    return f"signalfire-ingest-{host}"


def worker_client_id(settings: MqttSettings, index: int) -> str:
    return f"{settings.client_id or default_client_id_prefix()}-{index}"


@dataclass
class IngestStats:
    """What one worker did; the numbers of its stop line."""

    messages: int = 0  # received, redeliveries included
    acked: int = 0
    stored: int = 0  # new reports and announcements
    duplicates: int = 0  # packets already stored (another gateway, a redelivery)
    replayed: int = 0  # messages whose exact bytes were ingested before
    pending: int = 0  # reports of senders not known yet: kept, opened later
    released: int = 0  # pending reports opened by an announcement or a retry
    rejected: int = 0  # packets that failed verification (counted per gateway in the store)
    refused: int = 0  # messages from gateways not enrolled or revoked
    bad: int = 0  # messages that are not a valid signed batch
    topic_mismatch: int = 0  # signed by another gateway than the topic names
    retried: int = 0  # attempts put off: deferred by ingest, or a database error
    database_errors: int = 0
    not_acked_stale: int = 0  # ingested after a reconnection: left for the redelivery
    unacked: int = 0  # received on the current connection and not acknowledged (at stop)

    def line(self) -> str:
        return " ".join(f"{k}={v}" for k, v in vars(self).items())


@dataclass
class _Message:
    generation: int  # which connection delivered it
    mid: int
    qos: int
    topic: str
    payload: bytes
    attempts: int = 0
    due: float = 0.0  # monotonic time of the next attempt (retries only)


@dataclass
class _State:
    """Shared with paho's network thread; guarded by MqttIngestWorker._lock."""

    generation: int = 0
    connected: bool = False
    subscribed: bool = False
    stopping: bool = False
    unsubscribed: bool = False  # UNSUBACK received on the current connection
    session_present: bool = False
    fatal: str | None = None
    outstanding: set[tuple[int, int]] = field(default_factory=set)  # (generation, mid)


class MqttIngestWorker:
    """One member of the shared subscription, with its own store connection.

    ``run(stop)`` blocks until ``stop`` is set, then stops gracefully.
    """

    def __init__(
        self,
        ingestor: Ingestor,
        settings: MqttSettings,
        *,
        index: int = 1,
        password: str | None = None,
        clock: Callable[[], float] = time.time,
        max_group: int = DEFAULT_MAX_GROUP,
        receive_maximum: int = DEFAULT_RECEIVE_MAXIMUM,
        pending_retry_s: float = PENDING_RETRY_S,
        graceful_stop_s: float = GRACEFUL_STOP_S,
    ) -> None:
        if max_group < 1 or receive_maximum < 1:
            raise ValueError("max_group and receive_maximum must be at least 1")
        self.ingestor = ingestor
        self.settings = settings
        self.index = index
        self.client_id = worker_client_id(settings, index)
        self.topic = subscription(settings, ingestor.network_id)
        self._topic_head = f"{settings.topic_prefix}/{ingestor.network_id.hex()}/reports/"
        self.stats = IngestStats()
        self._clock = clock
        self._max_group = max_group
        self._receive_maximum = receive_maximum
        self._pending_retry_s = pending_retry_s
        self._graceful_stop_s = graceful_stop_s
        self._lock = threading.Lock()
        self._state = _State()
        self._inbox: queue.Queue[_Message] = queue.Queue()
        self._retries: list[_Message] = []
        self._db_backoff = 0.0
        self._db_wait_until = 0.0  # monotonic
        self._next_pending_retry = time.monotonic() + pending_retry_s
        self._ready: Callable[[bool], None] | None = None
        self._last_connect_error = ""  # said once, not at every retry

        client = RememberingClient(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=paho.MQTTv5,
        )
        client.manual_ack_set(True)  # PUBACK only after the commit: see the module docstring
        client.reconnect_delay_set(1, 30)
        if settings.username is not None:
            client.username_pw_set(settings.username, password)
        if settings.tls:
            client.tls_set(
                ca_certs=str(settings.ca_file) if settings.ca_file else None,
                certfile=str(settings.cert_file) if settings.cert_file else None,
                keyfile=str(settings.key_file) if settings.key_file else None,
                cert_reqs=ssl.CERT_REQUIRED,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_unsubscribe = self._on_unsubscribe
        client.on_message = self._on_message
        self._client = client

    def __repr__(self) -> str:
        scheme = "mqtts" if self.settings.tls else "mqtt"
        return (
            f"<MqttIngestWorker {self.client_id} {scheme}://{self.settings.host}:"
            f"{self.settings.port} {self.topic}>"
        )

    # -- paho callbacks (network thread): record and hand over, never block -------------

    def _on_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        where = f"{self.settings.host}:{self.settings.port}"
        if reason.is_failure:
            hint = _CONFIG_REFUSALS.get(reason.value)
            message = f"MQTT broker {where} refused the connection: {reason}"
            log.warning("mqtt ingest %s: %s", self.client_id, message)
            if hint:
                with self._lock:
                    self._state.fatal = f"{message} ({hint}; check the [mqtt] settings)"
            return
        self._last_connect_error = ""
        with self._lock:
            self._state.generation += 1
            self._state.connected = True
            self._state.session_present = bool(flags.session_present)
            self._state.unsubscribed = False
            stopping = self._state.stopping
            # The broker sends again whatever the last connection left unacknowledged.
            self._state.outstanding.clear()
        log.info(
            "mqtt ingest %s: connected to %s (session %s)",
            self.client_id,
            where,
            "resumed" if flags.session_present else "new",
        )
        if stopping:
            # Back during a graceful stop: take no new share, but finish what the
            # session holds (the broker resends it now).
            client.unsubscribe(self.topic)
            return
        # Every connect subscribes: a resumed session may or may not hold the
        # subscription (a clean stop unsubscribes), and subscribing again is harmless.
        client.subscribe(self.topic, options=SubscribeOptions(qos=1))

    def _on_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        exc = self._client.last_connect_error
        where = f"{self.settings.host}:{self.settings.port}"
        message = f"cannot reach MQTT broker {where}: {describe_connect_error(exc)}"
        if isinstance(exc, ssl.SSLCertVerificationError):
            # A certificate that does not verify will not start verifying by itself.
            with self._lock:
                self._state.fatal = message
            return
        if message != self._last_connect_error:
            log.warning("mqtt ingest %s: %s; retrying", self.client_id, message)
        self._last_connect_error = message

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        with self._lock:
            was = self._state.connected
            self._state.connected = False
            self._state.subscribed = False
            stopping = self._state.stopping
        if was and not stopping:
            log.warning(
                "mqtt ingest %s: lost the connection to %s:%s (%s); reconnecting",
                self.client_id,
                self.settings.host,
                self.settings.port,
                reason,
            )

    def _on_subscribe(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        reason = reasons[0] if reasons else None
        if reason is None or reason.is_failure:
            hint = _SUBSCRIBE_REFUSALS.get(reason.value if reason else -1, "")
            with self._lock:
                self._state.fatal = (
                    f"MQTT broker {self.settings.host}:{self.settings.port} refused the "
                    f"subscription {self.topic}: {reason}" + (f" ({hint})" if hint else "")
                )
            return
        if reason.value < 1:
            # Granted QoS 0: the broker would not resend what a crash loses.
            with self._lock:
                self._state.fatal = (
                    f"MQTT broker granted QoS 0 for {self.topic}; the ingest needs QoS 1"
                )
            return
        with self._lock:
            first = not self._state.subscribed
            self._state.subscribed = True
            resumed = self._state.session_present
        ready = self._ready
        if first and ready is not None:
            self._ready = None  # once per run
            ready(resumed)
        log.info("mqtt ingest %s: subscribed to %s", self.client_id, self.topic)

    def _on_unsubscribe(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        with self._lock:
            self._state.subscribed = False
            self._state.unsubscribed = True

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        with self._lock:
            generation = self._state.generation
            if msg.qos > 0:
                self._state.outstanding.add((generation, msg.mid))
        try:
            topic = msg.topic
        except UnicodeDecodeError:
            topic = "?"  # the topic only serves a consistency check; the payload is signed
        self._inbox.put(_Message(generation, msg.mid, msg.qos, topic, bytes(msg.payload)))

    # -- the worker loop -------------------------------------------------------------------

    def run(
        self,
        stop: threading.Event,
        *,
        ready: Callable[[bool], None] | None = None,
    ) -> IngestStats:
        """Ingest until ``stop`` is set; ``ready(session_resumed)`` once first subscribed.

        Raises MqttIngestError when the broker refuses the settings.
        """
        self._ready = ready
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = self.settings.session_expiry_s
        properties.ReceiveMaximum = self._receive_maximum
        # clean_start=False on every connect, the first included: a worker that was
        # killed finds the messages it had not acknowledged in its session.
        self._client.connect_async(
            self.settings.host,
            self.settings.port,
            keepalive=self.settings.keepalive,
            clean_start=False,
            properties=properties,
        )
        self._client.loop_start()
        try:
            while not stop.is_set():
                self._raise_fatal()
                self._step(time.monotonic() + _TICK_S)
                self._maybe_retry_pending()
            self._raise_fatal()
            self._drain()
        finally:
            self._client.disconnect()
            self._client.loop_stop()
            with self._lock:
                self.stats.unacked = sum(
                    1 for g, _ in self._state.outstanding if g == self._state.generation
                )
        return self.stats

    def _raise_fatal(self) -> None:
        with self._lock:
            fatal = self._state.fatal
        if fatal is not None:
            raise MqttIngestError(fatal)

    def _step(self, deadline: float) -> bool:
        """Ingest one group if one comes before ``deadline``; whether one did."""
        group = self._take(deadline)
        if not group:
            return False
        self._process(group)
        return True

    def _take(self, deadline: float) -> list[_Message]:
        """Up to max_group messages: retries that are due first, then new ones."""
        now = time.monotonic()
        if self._db_wait_until > now:
            # The database is away: leave the messages where they are for now.
            time.sleep(max(0.0, min(self._db_wait_until, deadline) - now))
            return []
        with self._lock:
            generation, resumed = self._state.generation, self._state.session_present
        if resumed and any(m.generation != generation for m in self._retries):
            # A resumed session resends whatever the old connection left unacknowledged:
            # those copies are in the inbox now, and holding both would only grow.
            self._retries = [m for m in self._retries if m.generation == generation]
        group = [m for m in self._retries if m.due <= now][: self._max_group]
        if group:
            taken = {id(m) for m in group}
            self._retries = [m for m in self._retries if id(m) not in taken]
        if not group:
            due = min((m.due for m in self._retries), default=deadline)
            try:
                group.append(self._inbox.get(timeout=max(0.0, min(due, deadline) - now)))
            except queue.Empty:
                return []
        while len(group) < self._max_group:
            try:
                group.append(self._inbox.get_nowait())
            except queue.Empty:
                break
        return group

    def _process(self, group: list[_Message]) -> None:
        self.stats.messages += sum(1 for m in group if m.attempts == 0)
        try:
            outcomes = self.ingestor.ingest_batches(
                [m.payload for m in group], UPLINK, self._clock()
            )
        except _DATABASE_DOWN as exc:
            self.stats.database_errors += 1
            self._db_backoff = min(DB_BACKOFF_S[1], max(DB_BACKOFF_S[0], self._db_backoff * 2))
            self._db_wait_until = time.monotonic() + self._db_backoff
            log.error(
                "mqtt ingest %s: database unavailable (%s: %s); %d message(s) kept "
                "unacknowledged, retrying in %.1f s",
                self.client_id,
                type(exc).__name__,
                _first_line(exc),
                len(group),
                self._db_backoff,
            )
            for m in group:
                self._retry(m, due=self._db_wait_until, count=False)
            return
        except sa.exc.SQLAlchemyError as exc:
            self.stats.database_errors += 1
            if len(group) > 1:
                # Perhaps one message the database will not take (data it refuses):
                # find it by trying them one by one, so the others are not held up.
                for m in group:
                    m.attempts = max(m.attempts, 1)
                    self._process([m])
                return
            m = group[0]
            backoff = min(RETRY_BACKOFF_S[1], RETRY_BACKOFF_S[0] * 2 ** min(m.attempts, 10))
            log.error(
                "mqtt ingest %s: the database refused message mid=%d on %s (%s: %s); "
                "kept unacknowledged, retrying in %.0f s",
                self.client_id,
                m.mid,
                m.topic,
                type(exc).__name__,
                _first_line(exc),
                backoff,
            )
            self._retry(m, due=time.monotonic() + backoff)
            return
        self._db_backoff = 0.0
        for m, outcome in zip(group, outcomes, strict=True):
            self._settle(m, outcome)

    def _settle(self, m: _Message, outcome: IngestResult | batchfmt.BatchError | Exception) -> None:
        stats = self.stats
        if isinstance(outcome, IngestResult):
            if outcome.deferred:
                # Not kept this time (pending is full, or a bug of ours): the gateway has
                # let go of it, so this worker holds it, unacknowledged, and tries again.
                backoff = min(RETRY_BACKOFF_S[1], RETRY_BACKOFF_S[0] * 2 ** min(m.attempts, 10))
                log.warning(
                    "mqtt ingest %s: packet(s) %s deferred; retrying in %.0f s",
                    self.client_id,
                    ",".join(outcome.deferred),
                    backoff,
                )
                self._retry(m, due=time.monotonic() + backoff)
                return
            if outcome.replayed:
                stats.replayed += 1
            else:
                stats.stored += len(outcome.stored)
                stats.duplicates += len(outcome.duplicates)
                stats.pending += len(outcome.pending)
                stats.rejected += len(outcome.rejected)
            stats.released += len(outcome.released)
            if outcome.pending and not outcome.replayed:
                # Another worker may be committing this sender's announcement right now.
                self._next_pending_retry = min(
                    self._next_pending_retry, time.monotonic() + PENDING_SOON_S
                )
            if m.topic.startswith(self._topic_head) and not m.topic.endswith(outcome.gateway):
                # The topic is not authenticated, the signature is; worth a look all the same.
                stats.topic_mismatch += 1
                log.info(
                    "mqtt ingest %s: batch signed by gateway %s arrived on topic %s",
                    self.client_id,
                    outcome.gateway,
                    m.topic,
                )
        elif isinstance(outcome, GatewayRefused):
            stats.refused += 1
            log.info(
                "mqtt ingest %s: %s from %s on %s (acknowledged, not stored)",
                self.client_id,
                outcome.code,
                outcome.key_id,
                m.topic,
            )
        else:
            stats.bad += 1
            code = outcome.code if isinstance(outcome, batchfmt.BatchError) else "bad-batch"
            # info, not warning: anyone who may publish on the topic can send junk
            log.info(
                "mqtt ingest %s: not a valid signed batch on %s: %s (acknowledged, dropped)",
                self.client_id,
                m.topic,
                code,
            )
        self._ack(m)

    def _retry(self, m: _Message, *, due: float, count: bool = True) -> None:
        m.attempts += 1
        m.due = due
        if count:
            self.stats.retried += 1
        self._retries.append(m)

    def _ack(self, m: _Message) -> None:
        if m.qos == 0:
            return
        with self._lock:
            current = m.generation == self._state.generation and self._state.connected
            if current:
                self._state.outstanding.discard((m.generation, m.mid))
        if not current:
            # Received on an earlier connection: the broker has sent it again (same packet
            # id) on this one, and that copy will be acknowledged. Acknowledging this one
            # too could acknowledge a newer message that reuses the id.
            self.stats.not_acked_stale += 1
            return
        # paho queues the PUBACK for its network thread; a reconnection in between drops
        # it (paho clears its queue) and the broker sends the message again.
        self._client.ack(m.mid, m.qos)
        self.stats.acked += 1

    def _maybe_retry_pending(self) -> None:
        if time.monotonic() < max(self._next_pending_retry, self._db_wait_until):
            return
        self._next_pending_retry = time.monotonic() + self._pending_retry_s
        try:
            self.stats.released += len(self.ingestor.retry_pending(self._clock()))
        except sa.exc.SQLAlchemyError as exc:
            self.stats.database_errors += 1
            log.error(
                "mqtt ingest %s: retrying pending reports failed (%s); later",
                self.client_id,
                type(exc).__name__,
            )

    def _drain(self) -> None:
        """Stop taking a share, finish what was received, within graceful_stop_s.

        Done when the broker confirmed the UNSUBSCRIBE on a live connection and
        nothing arrived for QUIET_S: messages it had already queued for this
        session keep coming after the UNSUBSCRIBE, and after a reconnection it
        first resends what the last connection left unacknowledged.
        """
        with self._lock:
            self._state.stopping = True
            connected = self._state.connected
        if connected:
            self._client.unsubscribe(self.topic)  # else _on_connect does it
        deadline = time.monotonic() + self._graceful_stop_s
        while time.monotonic() < deadline:
            if self._step(min(deadline, time.monotonic() + QUIET_S)):
                continue
            with self._lock:
                settled = self._state.unsubscribed and self._state.connected
            if settled and not any(m.due <= time.monotonic() for m in self._retries):
                break
        left = self._inbox.qsize() + len(self._retries)
        if left:
            log.warning(
                "mqtt ingest %s: stopping with %d message(s) not stored; the broker keeps "
                "them for this worker's next start",
                self.client_id,
                left,
            )


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.splitlines()[0] if text else type(exc).__name__


# -- processes ------------------------------------------------------------------------------

IngestorFactory = Callable[[Path], tuple[CoordinatorStore, Ingestor]]
RESTART_BACKOFF_S = (1.0, 60.0)
HEALTHY_AFTER_S = 60.0  # a worker that ran this long before dying restarts after the shortest delay


def _configure_child_logging(level: int) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def worker_process(
    config_path: str, index: int, log_level: int, make_ingestor: IngestorFactory
) -> None:
    """One worker process (the target ``run_workers`` starts); exits 0, 1 or EX_CONFIG."""
    # Imported here: config imports nothing from this module, but keep the process
    # entry independent of import order all the same.
    from .config import load_config

    _configure_child_logging(log_level)
    stop = threading.Event()

    def _stop(_signum: int, _frame: object) -> None:
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _stop)
    parent = os.getppid()

    def _watch_parent() -> None:
        # A supervisor killed outright must not leave workers behind holding sessions.
        while not stop.wait(1.0):
            if os.getppid() != parent:
                log.warning("ingest worker %d: the supervisor is gone; stopping", index)
                stop.set()

    threading.Thread(target=_watch_parent, name="parent-watch", daemon=True).start()
    try:
        cfg = load_config(Path(config_path))
        assert cfg.mqtt is not None  # run_workers checked
        password = cfg.mqtt.password()
    except SignalfireError as exc:
        _say(f"error: ingest worker {index}: {exc.message}")
        sys.exit(EX_CONFIG)
    try:
        store, ingestor = make_ingestor(Path(config_path))
    except Exception as exc:
        # The database may come back (PostgreSQL restarting): exit 1, restarted later.
        _say(f"error: ingest worker {index}: {getattr(exc, 'message', None) or exc}")
        sys.exit(1)
    worker = MqttIngestWorker(ingestor, cfg.mqtt, index=index, password=password)

    def _ready(resumed: bool) -> None:
        _say(
            f"ingest worker {index} (pid {os.getpid()}) subscribed as {worker.client_id} "
            f"(session {'resumed' if resumed else 'new'})"
        )

    try:
        stats = worker.run(stop, ready=_ready)
    except MqttIngestError as exc:
        _say(f"error: ingest worker {index}: {exc.message}")
        sys.exit(EX_CONFIG)
    finally:
        store.close()
    _say(f"ingest worker {index} stopped: {stats.line()}")


def run_workers(
    config_path: Path,
    workers: int,
    make_ingestor: IngestorFactory,
    *,
    log_level: int = logging.WARNING,
    stop_timeout: float = GRACEFUL_STOP_S + 10.0,
) -> int:
    """Run ``workers`` worker processes until SIGTERM/SIGINT; restart any that dies.

    Returns the exit status: 0 after a requested stop, 2 when a worker found the
    MQTT settings unusable (then all stop). The caller has checked the config.
    """
    ctx = multiprocessing.get_context("spawn")  # no fork of a process with threads
    procs: dict[int, BaseProcess] = {}
    started: dict[int, float] = {}
    restart_at: dict[int, float] = {}
    delays: dict[int, float] = {}
    stopping = threading.Event()
    status = 0

    def _stop(_signum: int, _frame: object) -> None:
        stopping.set()

    previous = {s: signal.signal(s, _stop) for s in (signal.SIGTERM, signal.SIGINT)}

    def _start(index: int) -> None:
        proc = ctx.Process(
            target=worker_process,
            args=(str(config_path), index, log_level, make_ingestor),
            name=f"ingest-worker-{index}",
        )
        proc.start()
        procs[index] = proc
        started[index] = time.monotonic()

    try:
        for index in range(1, workers + 1):
            _start(index)
        while not stopping.is_set():
            now = time.monotonic()
            for index, when in list(restart_at.items()):
                if when <= now:
                    del restart_at[index]
                    _start(index)
            sentinels = [p.sentinel for p in procs.values() if p.exitcode is None]
            timeout = min([0.5, *(w - now for w in restart_at.values())])
            wait_for_processes(sentinels, timeout=max(0.0, timeout))
            for index, proc in list(procs.items()):
                if proc.exitcode is None or index in restart_at or stopping.is_set():
                    continue
                code = proc.exitcode
                if code == EX_CONFIG:
                    _say(f"error: ingest worker {index} cannot work with these settings; stopping")
                    status = 2
                    stopping.set()
                    break
                ran = time.monotonic() - started[index]
                delay = (
                    RESTART_BACKOFF_S[0]
                    if ran >= HEALTHY_AFTER_S
                    else min(
                        RESTART_BACKOFF_S[1],
                        max(RESTART_BACKOFF_S[0], delays.get(index, 0.0) * 2),
                    )
                )
                delays[index] = delay
                how = f"signal {-code}" if code < 0 else f"status {code}"
                log.warning(
                    "ingest worker %d (pid %s) ended with %s; restarting in %.0f s",
                    index,
                    proc.pid,
                    how,
                    delay,
                )
                _say(f"ingest worker {index} died ({how}); restarting in {delay:.0f} s")
                restart_at[index] = time.monotonic() + delay
    finally:
        for proc in procs.values():
            if proc.exitcode is None:
                proc.terminate()  # SIGTERM: the graceful stop
        deadline = time.monotonic() + stop_timeout
        for proc in procs.values():
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.exitcode is None:
                log.warning("ingest worker %s did not stop in time; killing it", proc.name)
                proc.kill()
                proc.join()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return status

"""The ingest core: a signed gateway batch in, verified and deduplicated reports stored.

Transport-neutral: the HTTPS endpoint, the MQTT subscriber and bundle import
all hand the same signed envelope bytes to :meth:`Ingestor.ingest_batch`.

What happens to each packet of a batch (docs/protocol.md sections 5 and 9):

- key announcement: verified, added to the keyring and stored; reports of
  that sender waiting in ``pending`` are opened now.
- report: opened (signature verified, body decrypted). Unknown sender: kept
  in ``pending`` (a protocol MUST). Any other wire error: rejected and counted
  per gateway and code. Opened: stored once per report id, with one receipt
  per gateway and uplink that delivered it.

One bad packet never sinks its batch: every packet is judged on its own and
the answer lists each one. A batch is committed in one transaction, so a
crash or a database error loses the whole answer and the gateway resends;
the idempotent store makes that harmless.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from signalfire import batch as batchfmt
from signalfire import wire

from .store import (
    CoordinatorStore,
    GatewayRow,
    Receipt,
    ReportFlag,
    StoreTx,
    receipt_values,
    report_values,
)

log = logging.getLogger(__name__)

DEFAULT_FUTURE_SKEW_S = 600.0
DEFAULT_MAX_AGE_S = 30 * 86_400.0
DEFAULT_MAX_PENDING = 100_000
DEFAULT_REJECTION_SAMPLES = 5

# Rejection codes of the coordinator's own, beside the wire codes of protocol.md section 9.
ATTESTER_NOT_ENROLLED = "attester-not-enrolled"
ORIGIN_WINDOW_S = 3600  # see Ingestor._first_of_origin
INTERNAL_ERROR = "internal-error"

_UPLINK_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,15}$")


def _check_uplink(uplink: str) -> None:
    if not _UPLINK_RE.match(uplink):
        raise ValueError(f"uplink name {uplink!r} must be 1-16 of a-z, 0-9 and '-'")


class GatewayRefused(Exception):
    """The batch verified, but its gateway may not deliver here."""

    code = "gateway-refused"

    def __init__(self, message: str, key_id: str) -> None:
        super().__init__(message)
        self.message = message
        self.key_id = key_id


class UnknownGateway(GatewayRefused):
    code = "unknown-gateway"


class RevokedGateway(GatewayRefused):
    code = "revoked-gateway"


@dataclass(frozen=True)
class Policy:
    future_skew_s: float = DEFAULT_FUTURE_SKEW_S  # a report created later than this is flagged
    max_age_s: float = DEFAULT_MAX_AGE_S  # a report created longer ago than this is flagged
    max_pending: int = DEFAULT_MAX_PENDING  # unknown-sender reports kept at most
    rejection_samples: int = DEFAULT_REJECTION_SAMPLES  # raw samples kept per gateway and code


@dataclass
class IngestResult:
    """What became of every packet of one batch, by packet id (hex)."""

    batch_id: str
    gateway: str  # key id (hex) of the gateway that signed the batch
    stored: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)  # unknown sender: kept, opened later
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (id, error code)
    # Not kept this time (pending is full, or an internal error): send again later.
    deferred: list[str] = field(default_factory=list)
    # Pending reports of earlier batches that this batch's announcements opened.
    released: list[str] = field(default_factory=list)
    replayed: bool = False  # the same signed bytes were ingested before; first answer repeated

    def response(self) -> dict[str, Any]:
        """The JSON answer to the gateway: stored, duplicates and pending are safely kept."""
        return {
            "stored": list(self.stored),
            "duplicates": list(self.duplicates),
            "pending": list(self.pending),
            "rejected": [{"id": i, "error": code} for i, code in self.rejected],
            "deferred": list(self.deferred),
        }

    def to_json(self) -> str:
        return json.dumps({"batch_id": self.batch_id, "gateway": self.gateway, **self.response()})

    @classmethod
    def from_json(cls, text: str) -> IngestResult:
        obj = json.loads(text)
        return cls(
            batch_id=obj["batch_id"],
            gateway=obj["gateway"],
            stored=obj["stored"],
            duplicates=obj["duplicates"],
            pending=obj["pending"],
            rejected=[(r["id"], r["error"]) for r in obj["rejected"]],
            deferred=obj["deferred"],
        )


@dataclass
class _Run:
    """The state of one batch being ingested.

    The reports of a batch are judged one by one (crypto, pending, rejections), but
    what they write to ``reports`` and ``receipts`` is buffered here and written by
    :meth:`Ingestor._flush` in a few statements for the whole batch: per-report
    statements cost more than opening the report did.
    """

    tx: StoreTx
    batch: batchfmt.Batch
    gateway: str
    uplink: str
    now: float
    pending_seen: bool  # pending held rows at the start or got some: worth cleaning up
    result: IngestResult
    pending_room: int | None = None  # counted when a report first needs to wait there
    # report id -> raw packet, stored or about to be: the same bytes again need no crypto
    known: dict[str, bytes] = field(default_factory=dict)
    new_reports: list[dict[str, Any]] = field(default_factory=list)  # report_values rows
    receipts: list[dict[str, Any]] = field(default_factory=list)  # receipt_values rows
    opened_digests: list[str] = field(default_factory=list)  # to drop from pending
    attesters: dict[str, GatewayRow | None] = field(default_factory=dict)  # key id -> row
    # origin -> (report id, rx_time) of attested reports stored or about to be
    origins: dict[str, tuple[str, int]] = field(default_factory=dict)
    revoked: dict[str, float] | None = None  # sender -> since; read once per batch
    # (code, packet id, raw, message), counted in a few statements when the batch ends
    rejections: list[tuple[str, str, bytes, str]] = field(default_factory=list)


class Ingestor:
    """Verifies, decrypts, deduplicates and stores what gateways deliver.

    ``enrolled_gateways`` are (name, Ed25519 public key) pairs from the
    configuration; they are enrolled in the store if they are not there yet.
    A gateway revoked in the store stays revoked whatever the configuration says.
    """

    def __init__(
        self,
        store: CoordinatorStore,
        keyring: wire.Keyring,
        *,
        enrolled_gateways: Iterable[tuple[str, bytes]] = (),
        policy: Policy | None = None,
        now: float | None = None,
    ) -> None:
        if not keyring.can_open:
            raise ValueError("the coordinator's keyring needs the network private key")
        self.store = store
        self.keyring = keyring
        self.policy = policy or Policy()
        self.network_id = wire.network_id(keyring.network_public)
        # One batch at a time per process: the keyring is shared, and with SQLite
        # there is one writer anyway. Several processes coordinate through the database.
        self._lock = threading.Lock()
        self._in_keyring: set[str] = set()  # ids of stored announcements already added
        start = time.time() if now is None else now
        self._enrol_configured(enrolled_gateways, start)
        with self.store.transaction(write=False) as tx:
            loaded = self._load_announcements(tx)
        released = self.retry_pending(start)
        log.info("ingest ready announcements=%d released=%d", loaded, len(released))

    # -- gateways -------------------------------------------------------------

    def _enrol_configured(self, gateways: Iterable[tuple[str, bytes]], now: float) -> None:
        for name, public_key in gateways:
            with self.store.transaction() as tx:
                row, new = tx.add_gateway(public_key, name, now)
                if new:
                    tx.audit("config", "gateway.add", {"key_id": row.key_id, "name": name}, now)
            if not row.active:
                log.warning(
                    "gateway revoked but still configured key_id=%s name=%r: "
                    "remove it from the configuration",
                    row.key_id,
                    row.name,
                )

    def open_batch(self, data: bytes) -> batchfmt.Batch:
        """Check the envelope and that its gateway is enrolled and not revoked.

        Raises BatchError (a bad envelope) or GatewayRefused; stores nothing.
        """
        batch = batchfmt.decode(data, network_id=self.network_id)
        self._authorise(batch, self.store.gateway(batch.gateway_key_id.hex()))
        return batch

    @staticmethod
    def _authorise(batch: batchfmt.Batch, row: GatewayRow | None) -> None:
        """Raise GatewayRefused unless ``row`` is the batch's gateway, enrolled and active."""
        key_id = batch.gateway_key_id.hex()
        if row is None or row.public_key != batch.gateway_key:
            # info, not warning: any key can sign an envelope, so this can be flooded
            log.info("batch from unknown gateway key_id=%s", key_id)
            raise UnknownGateway(
                f"gateway {key_id} is not enrolled here; ask the coordinator to run "
                "`signalfire coordinator gateway add` with this gateway's public key",
                key_id,
            )
        if not row.active:
            log.warning("batch from revoked gateway key_id=%s name=%r", key_id, row.name)
            raise RevokedGateway(f"gateway {key_id} has been revoked", key_id)

    # -- batches --------------------------------------------------------------

    def ingest_batch(self, data: bytes, uplink: str, now: float) -> IngestResult:
        """Decode, authorise and ingest one signed batch (the envelope bytes)."""
        return self.ingest(self.open_batch(data), data, uplink, now)

    def ingest(self, batch: batchfmt.Batch, data: bytes, uplink: str, now: float) -> IngestResult:
        """Ingest a batch that :meth:`open_batch` accepted; ``data`` are its envelope bytes."""
        _check_uplink(uplink)
        with self._lock, self.store.transaction() as tx:
            result = self._ingest_tx(tx, batch, data, uplink, now)
        if not result.replayed:
            self._log_result(result, uplink)
        return result

    def ingest_batches(
        self, datas: Sequence[bytes], uplink: str, now: float
    ) -> list[IngestResult | batchfmt.BatchError | GatewayRefused]:
        """Decode, authorise and ingest several signed batches in one transaction.

        For the MQTT ingest, where every message is a batch of one packet: a
        commit per message (an fsync with SQLite, a round trip with PostgreSQL)
        would cost more than the message's own work. Answers in order: each
        batch's IngestResult, or the BatchError or GatewayRefused that refused
        it (nothing of that one is stored). A database error raises, and then
        none of them is stored.
        """
        _check_uplink(uplink)
        # Signature checks are CPU work: before taking the lock and the transaction.
        decoded: list[batchfmt.Batch | batchfmt.BatchError] = []
        for data in datas:
            try:
                decoded.append(batchfmt.decode(data, network_id=self.network_id))
            except batchfmt.BatchError as exc:
                decoded.append(exc)
        out: list[IngestResult | batchfmt.BatchError | GatewayRefused] = []
        with self._lock, self.store.transaction() as tx:
            # Looked up in this transaction, so a revocation committed before it counts.
            rows: dict[str, GatewayRow | None] = {}
            for data, batch in zip(datas, decoded, strict=True):
                if isinstance(batch, batchfmt.BatchError):
                    out.append(batch)
                    continue
                key_id = batch.gateway_key_id.hex()
                if key_id not in rows:
                    rows[key_id] = tx.gateway(key_id)
                try:
                    self._authorise(batch, rows[key_id])
                except GatewayRefused as exc:
                    out.append(exc)
                    continue
                out.append(self._ingest_tx(tx, batch, data, uplink, now))
        for result in out:
            if isinstance(result, IngestResult) and not result.replayed:
                self._log_result(result, uplink)
        return out

    def _ingest_tx(
        self, tx: StoreTx, batch: batchfmt.Batch, data: bytes, uplink: str, now: float
    ) -> IngestResult:
        digest = hashlib.sha256(data).hexdigest()
        gateway = batch.gateway_key_id.hex()
        cached = tx.batch_result(digest)
        if cached is not None:
            result = IngestResult.from_json(cached)
            result.replayed = True
            log.info("batch replayed gateway=%s batch=%r", gateway, batch.batch_id)
            return result
        run = _Run(
            tx=tx,
            batch=batch,
            gateway=gateway,
            uplink=uplink,
            now=now,
            pending_seen=tx.has_any_pending(),
            result=IngestResult(batch_id=batch.batch_id, gateway=gateway),
        )
        self._ingest_items(run)
        if run.rejections:
            tx.count_rejections(gateway, run.rejections, now, self.policy.rejection_samples)
        result = run.result
        # A deferred packet must be processed when it is sent again, so such an
        # answer is not the one to repeat.
        if not result.deferred:
            tx.record_batch(
                digest, gateway, batch.batch_id, uplink, batch.sent_at, now, result.to_json()
            )
        return result

    def _ingest_items(self, run: _Run) -> None:
        reports: list[tuple[batchfmt.BatchItem, wire.SealedReport]] = []
        # Announcements first: a sender's first report and its announcement often
        # travel in one batch, in either order.
        for item in run.batch.items:
            packet_id = item.id.hex()
            try:
                packet = wire.parse(item.packet)
            except wire.WireError as exc:
                self._reject(run, packet_id, item.packet, exc.code, exc.message)
                continue
            if isinstance(packet, wire.SealedReport):
                reports.append((item, packet))
                continue
            self._guarded(run, packet_id, functools.partial(self._announcement, run, packet))
        if not reports:
            return
        # One query for every report of the batch already stored, instead of one each.
        run.known = run.tx.reports_raw([sealed.id.hex() for _, sealed in reports])
        for item, sealed in reports:
            self._guarded(run, sealed.id.hex(), functools.partial(self._report, run, item, sealed))
        self._flush(run)

    def _guarded(self, run: _Run, packet_id: str, step: Callable[[], None]) -> None:
        try:
            step()
        except sa.exc.SQLAlchemyError:
            raise  # the transaction is unusable: the whole batch fails and is resent
        except Exception:
            # A bug of ours must not lose the packet or sink the batch: the gateway
            # keeps it and sends it again.
            log.exception("internal error ingesting packet id=%s", packet_id)
            run.result.deferred.append(packet_id)

    def _announcement(self, run: _Run, ann: wire.Announcement) -> None:
        ann_id = ann.id.hex()
        if run.tx.has_announcement(ann_id):
            # The id covers everything the signature signs and nothing changes
            # here, so a copy with a broken signature does no harm either.
            run.result.duplicates.append(ann_id)
            return
        try:
            self.keyring.add(ann)
        except wire.WireError as exc:
            self._reject(run, ann_id, ann.raw, exc.code, exc.message)
            return
        key_id = ann.key_id.hex()
        run.tx.add_announcement(ann_id, ann.raw, key_id, ann.identity_public, run.now)
        self._in_keyring.add(ann_id)
        run.result.stored.append(ann_id)
        run.result.released += self._retry_key(run.tx, key_id, run.now)

    def _report(self, run: _Run, item: batchfmt.BatchItem, sealed: wire.SealedReport) -> None:
        """Judge one report; what it stores goes to the run's buffers (see _flush)."""
        report_id = sealed.id.hex()
        receipt = receipt_values(
            Receipt(
                report_id=report_id,
                gateway_key_id=run.gateway,
                uplink=run.uplink,
                batch_id=run.batch.batch_id,
                radio_node=item.radio_node,
                received_at=item.received_at,
                snr=item.snr,
                rssi=item.rssi,
                hops=item.hops,
            ),
            run.now,
        )
        tx = run.tx
        known = run.known.get(report_id)
        if known == sealed.raw:
            # Same bytes as a report already verified: no need to verify again.
            run.receipts.append(receipt)
            run.result.duplicates.append(report_id)
            return
        digest = hashlib.sha256(sealed.raw).hexdigest()
        try:
            opened = self._open(run, sealed)
        except wire.UnknownSender:
            if tx.has_pending(digest):
                pass  # kept already, by an earlier batch or another gateway
            elif self._pending_room(run) <= 0:
                log.warning(
                    "pending is full (%d): deferring id=%s", self.policy.max_pending, report_id
                )
                run.result.deferred.append(report_id)
                return
            else:
                tx.add_pending(
                    digest, report_id, sealed.raw, sealed.key_id.hex(), run.gateway, run.now
                )
                run.pending_room = self._pending_room(run) - 1
                run.pending_seen = True
            run.receipts.append(receipt)
            run.result.pending.append(report_id)
            return
        except wire.WireError as exc:
            self._reject(run, report_id, sealed.raw, exc.code, exc.message)
            return
        refusal = self._attester_refusal(tx, opened, run.attesters)
        if refusal is not None:
            self._reject(run, report_id, sealed.raw, ATTESTER_NOT_ENROLLED, refusal)
            return
        values = report_values(opened, run.now, self._flags(opened, run.now))
        if run.revoked is None:
            run.revoked = tx.revoked_senders()
        _flag_revoked(values, run.revoked)
        if run.pending_seen:
            # kept there while another process did not know the sender
            run.opened_digests.append(digest)
        first = None if known is not None else self._first_of_origin(run, values)
        if first is not None:
            # Another gateway's report of the same stock-radio text: one report, and
            # this gateway's copy is a receipt of it.
            receipt["report_id"] = first
            receipt["packet_id"] = report_id
            run.receipts.append(receipt)
            run.result.duplicates.append(report_id)
            return
        run.receipts.append(receipt)
        if known is not None:
            # Other bytes under a stored id, and they verify too: the stored report stays.
            run.result.duplicates.append(report_id)
            return
        run.known[report_id] = sealed.raw
        run.new_reports.append(values)

    @staticmethod
    def _first_of_origin(run: _Run, values: dict[str, Any]) -> str | None:
        """The id of an attested report of the same transmission stored earlier, if any.

        Meshtastic packet ids are 32 random bits per sending radio, so a node and
        packet id seen by two gateways within ORIGIN_WINDOW_S of each other are one
        transmission. Two processes ingesting the two copies at the same instant can
        both store theirs; the feed then shows both, as before this check existed.
        """
        origin = values["origin"]
        if origin is None:
            return None
        rx_time = int(json.loads(values["attestation"])["rx_time"])
        hit = run.origins.get(origin)
        if hit is None:
            hit = run.tx.same_origin([origin]).get(origin)
        if hit is not None and hit[0] != values["id"] and abs(hit[1] - rx_time) <= ORIGIN_WINDOW_S:
            return hit[0]
        run.origins.setdefault(origin, (values["id"], rx_time))
        return None

    def _pending_room(self, run: _Run) -> int:
        if run.pending_room is None:
            # Counted only when needed: a count reads the whole table, every batch.
            run.pending_room = self.policy.max_pending - run.tx.pending_count()
        return run.pending_room

    def _flush(self, run: _Run) -> None:
        """Write what the reports judged so far buffered, a statement per kind, not per row.

        New reports go in with one INSERT ... ON CONFLICT DO NOTHING RETURNING; one
        that another ingest process stored meanwhile is not returned and counts as a
        duplicate. Then one query finds sequence numbers reused among them.
        """
        tx = run.tx
        if run.new_reports:
            inserted = tx.add_reports(run.new_reports)
            for values in run.new_reports:
                report_id = values["id"]
                (run.result.stored if report_id in inserted else run.result.duplicates).append(
                    report_id
                )
            pairs = [(v["sender_key"], v["seq"]) for v in run.new_reports if v["id"] in inserted]
            self._flag_reused(tx, tx.same_seq_many(pairs))
            run.new_reports = []
        if run.opened_digests:
            tx.drop_pending_many(run.opened_digests)
            run.opened_digests = []
        tx.add_receipts(run.receipts)
        run.receipts = []

    def _open(self, run: _Run, sealed: wire.SealedReport) -> wire.Opened:
        try:
            return self.keyring.open(sealed)
        except wire.UnknownSender:
            # Another ingest process sharing the database (or `gateway add`) may
            # have stored the announcement since this one loaded its keyring.
            key_id = sealed.key_id.hex()
            if not self._load_announcements(run.tx, key_id):
                raise
            # Opening that sender's pending reports reads and writes reports and
            # receipts: the buffered rows must be there first, as one by one.
            self._flush(run)
            run.result.released += self._retry_key(run.tx, key_id, run.now)
        return self.keyring.open(sealed)

    def _attester_refusal(
        self,
        tx: StoreTx,
        opened: wire.Opened,
        cache: dict[str, GatewayRow | None] | None = None,
    ) -> str | None:
        """Why an attested report must be refused, or None: only enrolled gateways vouch.

        ``cache`` keeps the gateway rows looked up in this transaction (a batch).
        """
        if opened.kind is not wire.Kind.ATTESTED:
            return None
        key_id = opened.key_id.hex()
        if cache is None:
            row = tx.gateway(key_id)
        elif key_id in cache:
            row = cache[key_id]
        else:
            row = cache[key_id] = tx.gateway(key_id)
        if row is None or row.public_key != opened.identity_public:
            return f"attested by {key_id}, which is not an enrolled gateway"
        if not row.active:
            return f"attested by gateway {row.key_id}, which has been revoked"
        return None

    def _flags(self, opened: wire.Opened, now: float) -> int:
        flags = ReportFlag(0)
        created = opened.report.time
        if created > now + self.policy.future_skew_s:
            flags |= ReportFlag.FUTURE_TIME
        if created < now - self.policy.max_age_s:
            flags |= ReportFlag.TOO_OLD
        return int(flags)

    def _store_opened(self, tx: StoreTx, opened: wire.Opened, now: float) -> bool:
        """Store one report now (a pending one released); False if it was there."""
        values = report_values(opened, now, self._flags(opened, now))
        _flag_revoked(values, tx.revoked_senders())
        if not tx.add_report(values):
            return False
        pair = (opened.identity_public.hex(), opened.seq)
        self._flag_reused(tx, {pair: tx.same_seq(*pair)})
        return True

    @staticmethod
    def _flag_reused(tx: StoreTx, same: dict[tuple[str, int], list[str]]) -> None:
        """Flag every report of a (sender key, seq) that more than one report carries."""
        reused: list[str] = []
        for (sender_key, seq), ids in same.items():
            if len(ids) < 2:
                continue
            # A restored backup or a stolen key (protocol.md 5.3): keep and show both.
            reused += ids
            log.warning(
                "sequence number reused sender=%s seq=%d reports=%s",
                wire.key_id(bytes.fromhex(sender_key)).hex(),
                seq,
                ",".join(sorted(ids)),
            )
        if reused:
            tx.add_flags(reused, ReportFlag.SEQ_REUSED)

    def _reject(self, run: _Run, packet_id: str, raw: bytes, code: str, message: str) -> None:
        run.rejections.append((code, packet_id, raw, message))
        run.result.rejected.append((packet_id, code))

    # -- keyring and pending --------------------------------------------------

    def _load_announcements(self, tx: StoreTx, key_id: str | None = None) -> int:
        """Add stored announcements this process has not added yet; returns how many."""
        added = 0
        for ann_id, raw in tx.announcements(key_id):
            if ann_id in self._in_keyring:
                continue
            try:
                self.keyring.add(raw)
            except wire.WireError as exc:
                # Only verified announcements are stored; this one was stored
                # under another network key or has been damaged since.
                log.warning("stored announcement unusable id=%s error=%s", ann_id, exc.code)
            self._in_keyring.add(ann_id)
            added += 1
        return added

    def _retry_key(self, tx: StoreTx, key_id: str, now: float) -> list[str]:
        """Open the pending reports of one sender key id; returns the ids opened."""
        released: list[str] = []
        for row in tx.pending_for(key_id):
            try:
                opened = self.keyring.open(row.raw)
            except wire.UnknownSender:
                tx.touch_pending(row.digest, now)
                continue
            except wire.WireError as exc:
                self._drop_pending(
                    tx, row.digest, row.id, row.raw, row.gateway_key_id, exc.code, exc.message, now
                )
                continue
            refusal = self._attester_refusal(tx, opened)
            if refusal is not None:
                self._drop_pending(
                    tx,
                    row.digest,
                    row.id,
                    row.raw,
                    row.gateway_key_id,
                    ATTESTER_NOT_ENROLLED,
                    refusal,
                    now,
                )
                continue
            tx.drop_pending(row.digest)
            self._store_opened(tx, opened, now)
            released.append(row.id)
        return released

    def _drop_pending(
        self,
        tx: StoreTx,
        digest: str,
        packet_id: str,
        raw: bytes,
        gateway: str,
        code: str,
        message: str,
        now: float,
    ) -> None:
        tx.drop_pending(digest)
        tx.drop_orphan_receipts(packet_id)
        tx.count_rejection(
            gateway, code, packet_id, raw, message, now, self.policy.rejection_samples
        )
        log.warning("pending report rejected id=%s gateway=%s error=%s", packet_id, gateway, code)

    def retry_pending(self, now: float) -> list[str]:
        """Try every pending report whose sender is now known; returns the ids opened.

        Run at start and from time to time: with several ingest processes an
        announcement may be stored by one while another keeps the report.
        """
        released: list[str] = []
        with self._lock, self.store.transaction() as tx:
            self._load_announcements(tx)
            for key_id in tx.pending_key_ids():
                if self.keyring.knows(bytes.fromhex(key_id)):
                    released += self._retry_key(tx, key_id, now)
        if released:
            log.info("pending reports opened count=%d", len(released))
        return released

    @staticmethod
    def _log_result(result: IngestResult, uplink: str) -> None:
        log.info(
            "batch ingested gateway=%s batch=%r uplink=%s stored=%d duplicates=%d pending=%d "
            "rejected=%d deferred=%d released=%d",
            result.gateway,
            result.batch_id,
            uplink,
            len(result.stored),
            len(result.duplicates),
            len(result.pending),
            len(result.rejected),
            len(result.deferred),
            len(result.released),
        )
        if result.rejected:
            codes = Counter(code for _, code in result.rejected)
            # Forgeries and corruption are worth an operator's attention, once per batch.
            log.warning(
                "batch had rejected packets gateway=%s batch=%r %s",
                result.gateway,
                result.batch_id,
                " ".join(f"{code}={n}" for code, n in sorted(codes.items())),
            )


def _flag_revoked(values: dict[str, Any], revoked: dict[str, float]) -> None:
    since = revoked.get(values["sender"])
    if since is not None and values["created_at"] >= since:
        values["flags"] |= int(ReportFlag.REVOKED_SENDER)


def import_announcements(
    store: CoordinatorStore, network_public: bytes, raws: Iterable[bytes], now: float
) -> list[str]:
    """Verify and store key announcements that arrived outside a batch (a gateway's card).

    Needs only the network public key; a running ingestor picks them up when
    a report of that sender arrives, or at its next start. Returns the new ids.
    """
    ring = wire.Keyring(network_public)
    new: list[str] = []
    with store.transaction() as tx:
        for raw in raws:
            ann = wire.parse(raw)
            if not isinstance(ann, wire.Announcement):
                raise wire.BadField("expected a key announcement, got a report")
            ring.add(ann)
            if tx.add_announcement(
                ann.id.hex(), ann.raw, ann.key_id.hex(), ann.identity_public, now
            ):
                new.append(ann.id.hex())
    return new

"""Webhooks for the costly links: RockBLOCK's SBD delivery and an SMS forwarder (Kannel).

Neither service can sign with a gateway's key, so each webhook is authenticated by a
secret in its URL (compared in constant time, never logged) plus an allow-list of the
modems that may deliver: IMEIs for SBD, phone numbers for SMS, each mapped to an
enrolled gateway. The reports inside are signed by their own senders and verified by
the ingest as usual; the gateway only decides whose receipt they carry and that a
revoked gateway's modem is refused.

    POST /api/v1/sbd/rockblock/<token>   form: imei, momsn, transmit_time,
                                         iridium_latitude, iridium_longitude,
                                         iridium_cep, data (hex), device_type, serial
    POST|GET /api/v1/sms/kannel/<token>  Kannel sms-service fields (post-url/get-url):
                                         from=%p, time=%t, coding=%c, udh=%u, data=%b

Answers: 200 with the ingest result (what RockBLOCK or Kannel then stop retrying),
400 for a message that can never be read (its container is unreadable from the first
byte), 403 for a wrong secret or a modem not on the list, 413 too large, 503 when the
database is away or the ingest took too long (they retry; the ingest is idempotent:
an SBD message is recognised again by IMEI, MOMSN and bytes, SMS parts by sender,
reference, part number). RockBLOCK gives a webhook 3 seconds, so the answer comes
within ``ANSWER_WITHIN_S`` whatever happens.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Container
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from signalfire import batch as batchfmt
from signalfire.modem import container
from signalfire.modem.pdu import Concat, PduError, parse_udh

from .config import SbdSettings, SmsSettings
from .ingest import Ingestor
from .store import CoordinatorStore, GatewayRow

log = logging.getLogger(__name__)

ANSWER_WITHIN_S = 2.5  # RockBLOCK waits 3 s for an answer
MAX_FORM_BYTES = 8 * 1024
_IMEI_RE = re.compile(r"^[0-9]{15}$")
_HEX_RE = re.compile(r"^(?:[0-9a-fA-F]{2})*$")
_KEY_ID_RE = re.compile(r"^[0-9a-f]{16}$")
_HEADERS = {"Cache-Control": "no-store"}

sms_metadata = sa.MetaData()
# Parts of concatenated SMS that wait for their siblings. Kept in the coordinator's own
# database (not memory): the SMS forwarder and the gateway both count a part as
# delivered once we answered 200, so a restart must not lose it.
sms_parts = sa.Table(
    "sms_parts",
    sms_metadata,
    sa.Column("sender", sa.String(32), primary_key=True),
    sa.Column("ref", sa.Integer, primary_key=True),
    sa.Column("total", sa.Integer, primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Column("received_at", sa.Float, nullable=False),
)


@dataclass(frozen=True)
class Webhooks:
    """What create_coordinator_app needs to serve the webhooks; None: not served."""

    sbd: SbdSettings | None = None
    sms: SmsSettings | None = None


class Refused(Exception):
    """A webhook request answered with ``status`` and a JSON error: nothing was stored."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _error(status: int, code: str, message: str) -> Response:
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=_HEADERS)


def _secret_matches(given: str, expected: str) -> bool:
    # Digests first: compare_digest is constant-time only for inputs of equal length.
    return hmac.compare_digest(
        hashlib.sha256(given.encode("utf-8", "replace")).digest(),
        hashlib.sha256(expected.encode("utf-8")).digest(),
    )


def normalize_number(number: str) -> str:
    """'+374 91 234567', '0037491234567' -> '+37491234567' (digits, one leading +)."""
    text = "".join(number.split())
    if text.startswith("00"):
        text = "+" + text[2:]
    return text


async def _form(request: Request) -> dict[str, bytes]:
    """Read the body (at most MAX_FORM_BYTES) and parse it with the query."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise Refused(413, "too-large", f"a form may be at most {MAX_FORM_BYTES} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise Refused(413, "too-large", f"a form may be at most {MAX_FORM_BYTES} bytes")
    return parse_form(request.url.query, bytes(body), request.headers.get("content-type", ""))


def parse_form(query: str, body: bytes, content_type: str = "") -> dict[str, bytes]:
    """Query and body fields as bytes (Kannel's %b and %u are binary).

    The body is urlencoded, or a JSON object when ``content_type`` says so (RockBLOCK's
    "HTTP_JSON" delivery): its scalar members become fields, as text.
    Pure: the webhooks' whole reading of what a stranger sends, fuzzed on its own.
    """
    if len(body) > MAX_FORM_BYTES:
        raise Refused(413, "too-large", f"a form may be at most {MAX_FORM_BYTES} bytes")
    json_body = content_type.split(";")[0].strip().lower() == "application/json"
    fields: dict[str, bytes] = {}
    for text in (query, "" if json_body else body.decode("latin-1")):
        try:
            pairs = parse_qsl(text, keep_blank_values=True, encoding="latin-1", max_num_fields=32)
        except ValueError:
            raise Refused(400, "bad-form", "too many form fields") from None
        for key, value in pairs:
            fields[key] = value.encode("latin-1")
    if json_body:
        fields.update(_json_fields(body, "body"))
    return fields


def _json_fields(data: bytes, what: str) -> dict[str, bytes]:
    """A flat JSON object's scalar members as fields (nested members are ignored)."""
    try:
        # RecursionError: deep nesting; ValueError: bad JSON, bad UTF-8, huge integers.
        value = json.loads(data)
    except (ValueError, RecursionError):
        raise Refused(400, "bad-form", f"the {what} is not JSON") from None
    if not isinstance(value, dict) or len(value) > 64:
        raise Refused(400, "bad-form", f"the {what} must be a JSON object of at most 64 members")
    fields: dict[str, bytes] = {}
    for key, member in value.items():
        if isinstance(member, bool):
            text = "true" if member else "false"
        elif isinstance(member, str | int | float):
            text = str(member)
        else:
            continue
        fields[key] = text.encode("utf-8", "surrogatepass")
    return fields


def _b64url(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, binascii.Error):
        raise Refused(403, "bad-jwt", "the JWT is not base64url") from None


def rockblock_claims(token: str, key: RSAPublicKey) -> dict[str, bytes]:
    """The fields a RockBLOCK JWT signs, once its RS256 signature checks out with ``key``.

    Ground Control signs every delivery (the "JWT" field) with its RSA key; with that
    key configured, the delivery's own fields are not trusted at all, only the claims.
    Raises Refused(403) for a missing, malformed or forged token.
    """
    parts = token.split(".")
    if len(parts) != 3 or len(token) > MAX_FORM_BYTES:
        raise Refused(403, "bad-jwt", "the JWT must be three base64url parts")
    header_b64, claims_b64, signature_b64 = parts
    try:
        header = json.loads(_b64url(header_b64))
    except (ValueError, RecursionError):
        raise Refused(403, "bad-jwt", "the JWT header is not JSON") from None
    # Only the algorithm we expect: a token must not choose its own check ("none", HS256).
    if not isinstance(header, dict) or header.get("alg") != "RS256":
        raise Refused(403, "bad-jwt", "the JWT must be signed with RS256")
    try:
        key.verify(
            _b64url(signature_b64),
            f"{header_b64}.{claims_b64}".encode("ascii", "replace"),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except InvalidSignature:
        raise Refused(403, "bad-jwt", "the JWT signature does not verify") from None
    return _json_fields(_b64url(claims_b64), "JWT's claims")


def _text(fields: dict[str, bytes], name: str, required: bool = True) -> str:
    raw = fields.get(name)
    if raw is None:
        if required:
            raise Refused(400, "bad-form", f"form field {name!r} is missing")
        return ""
    try:
        return raw.decode("ascii").strip()
    except UnicodeDecodeError:
        raise Refused(400, "bad-form", f"form field {name!r} is not ASCII") from None


def _find_gateway(store: CoordinatorStore, ref: str) -> GatewayRow | None:
    """A gateway by key id or by name, as the [sbd]/[sms] tables name it."""
    with store.transaction(write=False) as tx:
        if _KEY_ID_RE.match(ref.lower()):
            row = tx.gateway(ref.lower())
            if row is not None:
                return row
        for row in tx.gateways():
            if row.name == ref:
                return row
    return None


def _active_gateway(store: CoordinatorStore, ref: str, what: str) -> GatewayRow:
    row = _find_gateway(store, ref)
    if row is None:
        log.warning("%s is mapped to gateway %r, which is not enrolled", what, ref)
        raise Refused(403, "unknown-gateway", f"{what} belongs to no enrolled gateway")
    if not row.active:
        log.warning("%s belongs to revoked gateway key_id=%s", what, row.key_id)
        raise Refused(403, "revoked-gateway", f"{what} belongs to a revoked gateway")
    return row


def ingest_container(
    ingestor: Ingestor,
    gateway: GatewayRow,
    payload: bytes,
    *,
    identity: bytes,
    batch_id: str,
    uplink: str,
    received_at: float | None,
    now: float,
) -> dict[str, Any]:
    """Unpack a container and ingest its packets as a batch of ``gateway``.

    ``identity`` names the message (modem, sequence number, bytes): a second delivery
    of the same message is recognised as a replay and answered as the first.
    Raises container.ContainerError when nothing in ``payload`` can be read.
    """
    unpacked = container.decode(payload)
    answer: dict[str, Any] = {}
    if unpacked.error is not None:
        # The entries before the damage are good; keep them, say what was wrong.
        log.warning(
            "%s message %s: container damaged after %d packets: %s",
            uplink, batch_id, len(unpacked.packets), unpacked.error.message,
        )  # fmt: skip
        answer["container_error"] = {
            "error": unpacked.error.code,
            "message": unpacked.error.message,
        }
    if not unpacked.packets:
        return {"stored": [], "duplicates": [], "pending": [], "rejected": [], "deferred": []} | (
            answer
        )
    batch = batchfmt.Batch(
        network_id=ingestor.network_id,
        gateway_key=gateway.public_key,
        batch_id=batch_id,
        sent_at=int(now),
        items=tuple(batchfmt.BatchItem(p, received_at=received_at) for p in unpacked.packets),
    )
    digest_input = b"signalfire/" + uplink.encode() + b"\0" + identity + b"\0" + payload
    result = ingestor.ingest(batch, digest_input, uplink, now)
    return result.response() | answer


def _rockblock_time(text: str) -> float | None:
    """RockBLOCK's transmit_time, "YY-MM-DD HH:MM:SS" in UTC; None if absent or odd.

    Ground Control's newer services write ISO 8601 ("2023-03-14T09:15:04Z"): read too.
    """
    for fmt in ("%y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return dt.datetime.strptime(text, fmt).replace(tzinfo=dt.UTC).timestamp()
        except ValueError:
            continue
    return None


def _kannel_time(text: str) -> float | None:
    try:
        return dt.datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=dt.UTC).timestamp()
    except ValueError:
        return None


@dataclass(frozen=True)
class SbdDelivery:
    """One RockBLOCK delivery, checked: the modem, its message number and the bytes."""

    imei: str
    momsn: int
    payload: bytes
    sent_at: float | None


def read_rockblock(
    fields: dict[str, bytes], imeis: Container[str], jwt_key: RSAPublicKey | None = None
) -> SbdDelivery:
    """Check a RockBLOCK form; raises Refused (400, or 403 for an IMEI not in ``imeis``).

    With ``jwt_key``, only what the delivery's JWT signs is read (403 without a valid one).
    """
    if jwt_key is not None:
        token = fields.get("JWT")
        if not token:
            raise Refused(403, "bad-jwt", "a signed JWT is required and missing")
        fields = rockblock_claims(token.decode("latin-1"), jwt_key)
    imei = _text(fields, "imei")
    momsn_text = _text(fields, "momsn")
    data_hex = _text(fields, "data")
    transmit_time = _text(fields, "transmit_time", required=False)
    if not _IMEI_RE.match(imei):
        raise Refused(400, "bad-form", "imei must be 15 digits")
    if imei not in imeis:
        raise Refused(403, "unknown-modem", f"IMEI {imei} is not on the allow-list")
    if not momsn_text.isdigit() or int(momsn_text) > 0xFFFF:
        raise Refused(400, "bad-form", "momsn must be a number 0-65535")
    if not _HEX_RE.match(data_hex) or len(data_hex) > 2 * container.SBD_MO_MAX:
        raise Refused(400, "bad-form", "data must be hex, at most 340 bytes")
    return SbdDelivery(
        imei, int(momsn_text), bytes.fromhex(data_hex), _rockblock_time(transmit_time)
    )


@dataclass(frozen=True)
class SmsDelivery:
    """One SMS from the forwarder, checked; ``concat`` says which part it is, if one."""

    sender: str
    data: bytes
    concat: Concat | None
    sent_at: float | None


def read_kannel(fields: dict[str, bytes], phones: Container[str]) -> SmsDelivery:
    """Check a Kannel form; raises Refused (400, or 403 for a number not in ``phones``)."""
    sender = normalize_number(_text(fields, "from"))
    udh = fields.get("udh", b"")
    data = fields.get("data")
    coding = _text(fields, "coding", required=False)
    sent_text = _text(fields, "time", required=False)
    if sender not in phones:
        raise Refused(403, "unknown-modem", "this number is not allowed to deliver here")
    if data is None or not data:
        raise Refused(400, "bad-form", "form field 'data' is missing or empty")
    if coding and coding != "2":
        raise Refused(400, "bad-form", f"coding {coding} is not 8-bit data (2)")
    try:
        concat = parse_udh(udh)
    except PduError as exc:
        raise Refused(400, "bad-udh", str(exc)) from None
    if len(udh) + len(data) > 140:
        raise Refused(400, "bad-form", "user data longer than one SMS (140 octets)")
    return SmsDelivery(sender, data, concat, _kannel_time(sent_text))


def load_rockblock_key(pem: bytes) -> RSAPublicKey:
    """Ground Control's JWT key from its PEM; ValueError if not an RSA key of 2048+ bits."""
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, RSAPublicKey) or key.key_size < 2048:
        raise ValueError("not an RSA public key of at least 2048 bits")
    return key


def webhook_router(
    ingestor: Ingestor,
    hooks: Webhooks,
    *,
    wall_clock: Callable[[], float] = time.time,
) -> APIRouter:
    """The webhook routes for what ``hooks`` configures (none when it configures nothing)."""
    router = APIRouter(include_in_schema=False)
    store = ingestor.store
    if hooks.sbd is not None:
        _sbd_route(router, ingestor, hooks.sbd, wall_clock)
    if hooks.sms is not None:
        sms_metadata.create_all(store.engine, checkfirst=True)
        _sms_route(router, ingestor, hooks.sms, wall_clock)
    return router


async def _answer(work: Callable[[], dict[str, Any]], what: str) -> Response:
    """Run ``work`` off the event loop and answer within ANSWER_WITHIN_S."""
    try:
        result = await asyncio.wait_for(run_in_threadpool(work), ANSWER_WITHIN_S)
    except Refused as exc:
        return _error(exc.status, exc.code, exc.message)
    except container.ContainerError as exc:
        log.warning("%s: unreadable container: %s", what, exc.message)
        return _error(400, exc.code, f"not a signalfire container: {exc.message}")
    except SQLAlchemyError as exc:
        log.error("%s: database error: %s", what, type(exc).__name__)
        return _error(503, "database-unavailable", "cannot store now; deliver again later")
    except TimeoutError:
        # The work goes on in its thread and may still commit; the retry is a replay.
        log.warning("%s: ingest took longer than %.1f s; asked for a retry", what, ANSWER_WITHIN_S)
        return _error(503, "slow", "still working; deliver again later")
    return JSONResponse(result, headers=_HEADERS)


def _sbd_route(
    router: APIRouter, ingestor: Ingestor, cfg: SbdSettings, wall_clock: Callable[[], float]
) -> None:
    imeis = dict(cfg.modems)
    jwt_key = load_rockblock_key(cfg.jwt_key) if cfg.jwt_key else None

    @router.post("/api/v1/sbd/rockblock/{token}")
    async def rockblock(token: str, request: Request) -> Response:
        if not _secret_matches(token, cfg.token):
            log.info("rockblock webhook: wrong secret")
            return _error(403, "forbidden", "wrong webhook secret")
        try:
            fields = await _form(request)
            delivery = read_rockblock(fields, imeis, jwt_key)
        except Refused as exc:
            if exc.code == "unknown-modem":  # names an IMEI that passed the 15-digit check
                log.info("rockblock webhook: %s", exc.message)
            elif exc.status == 403:
                log.warning("rockblock webhook: %s", exc.message)
            return _error(exc.status, exc.code, exc.message)
        except ClientDisconnect:
            return Response(status_code=400)
        imei, momsn, payload, sent_at = (
            delivery.imei, delivery.momsn, delivery.payload, delivery.sent_at
        )  # fmt: skip
        what = f"sbd imei={imei} momsn={momsn}"

        def work() -> dict[str, Any]:
            gateway = _active_gateway(ingestor.store, imeis[imei], f"IMEI {imei}")
            answer = ingest_container(
                ingestor,
                gateway,
                payload,
                identity=f"{imei}/{momsn}".encode(),
                batch_id=f"sbd-{imei}-{momsn}",
                uplink="sbd",
                received_at=sent_at,
                now=wall_clock(),
            )
            log.info(
                "%s: %d stored, %d duplicates, %d rejected",
                what, len(answer["stored"]), len(answer["duplicates"]), len(answer["rejected"]),
            )  # fmt: skip
            return answer

        return await _answer(work, what)


def _sms_route(
    router: APIRouter, ingestor: Ingestor, cfg: SmsSettings, wall_clock: Callable[[], float]
) -> None:
    phones = {normalize_number(number): gateway for number, gateway in cfg.phones}
    engine = ingestor.store.engine
    lock = threading.Lock()  # one reassembly at a time in this process (see _complete)

    async def kannel(token: str, request: Request) -> Response:
        if not _secret_matches(token, cfg.token):
            log.info("sms webhook: wrong secret")
            return _error(403, "forbidden", "wrong webhook secret")
        try:
            fields = await _form(request)
            delivery = read_kannel(fields, phones)
        except Refused as exc:
            if exc.status == 403:  # normalize_number leaves no whitespace to forge lines with
                number = normalize_number(_text(fields, "from"))
                log.info("sms webhook: number %r is not on the allow-list", number)
            return _error(exc.status, exc.code, exc.message)
        except ClientDisconnect:
            return Response(status_code=400)
        sender, data, concat, sent_at = (
            delivery.sender, delivery.data, delivery.concat, delivery.sent_at
        )  # fmt: skip
        what = f"sms from={sender}"

        def work() -> dict[str, Any]:
            gateway = _active_gateway(ingestor.store, phones[sender], f"number {sender}")
            now = wall_clock()
            if concat is None or concat.total == 1:
                return ingest_container(
                    ingestor, gateway, data, identity=sender.encode(),
                    batch_id=f"sms-{sender}", uplink="sms", received_at=sent_at, now=now,
                )  # fmt: skip
            with lock:
                whole = _store_part(engine, sender, concat.reference, concat.total,
                                    concat.seq, data, now, cfg.part_ttl_s)  # fmt: skip
                if whole is None:
                    return {"part": concat.seq, "of": concat.total, "waiting": True}
                answer = ingest_container(
                    ingestor, gateway, whole,
                    identity=f"{sender}/{concat.reference}/{concat.total}".encode(),
                    batch_id=f"sms-{sender}-{concat.reference}", uplink="sms",
                    received_at=sent_at, now=now,
                )  # fmt: skip
                _drop_parts(engine, sender, concat.reference, concat.total)
                return answer

        return await _answer(work, what)

    router.add_api_route("/api/v1/sms/kannel/{token}", kannel, methods=["POST", "GET"])


def _store_part(
    engine: sa.Engine,
    sender: str,
    ref: int,
    total: int,
    seq: int,
    data: bytes,
    now: float,
    ttl_s: float,
) -> bytes | None:
    """Keep one part (durably); the whole message once every part is there, else None.

    A part that arrives again with other bytes replaces the old one: the 8-bit
    reference wraps, and the newer message is the one still being sent.
    """
    key = {"sender": sender, "ref": ref, "total": total, "seq": seq}
    with engine.begin() as conn:
        conn.execute(sms_parts.delete().where(sms_parts.c.received_at < now - ttl_s))
        conn.execute(
            sms_parts.delete().where(*(getattr(sms_parts.c, k) == v for k, v in key.items()))
        )
        conn.execute(sms_parts.insert().values(**key, data=data, received_at=now))
    # Looked at in a transaction of its own, after the commit: a part committed by
    # another process meanwhile is seen here (or that process sees ours).
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(sms_parts.c.seq, sms_parts.c.data)
            .where(sms_parts.c.sender == sender, sms_parts.c.ref == ref)
            .where(sms_parts.c.total == total)
            .order_by(sms_parts.c.seq)
        ).all()
    if len(rows) < total:
        return None
    return b"".join(bytes(r.data) for r in rows)


def _drop_parts(engine: sa.Engine, sender: str, ref: int, total: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            sms_parts.delete().where(
                sms_parts.c.sender == sender, sms_parts.c.ref == ref, sms_parts.c.total == total
            )
        )

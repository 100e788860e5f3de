"""The uplink batch: packets a gateway hands to a coordinator, signed by the gateway.

One format for every uplink that has room for it (HTTPS body, MQTT message,
USB bundle file); docs/protocol.md section 15 is the specification. Pure:
bytes in, objects out; the caller supplies the clock and the batch id.

    signed envelope (JSON):
      {"type": "signalfire-signed-batch", "version": 1,
       "gateway_key": hex Ed25519 public key,
       "body": "<batch JSON, exactly the signed bytes as a string>",
       "sha256": hex SHA-256 of the body bytes,
       "signature": base64 Ed25519("signalfire/v1 batch\\0" || body bytes)}

The body is carried as a string and signed verbatim, so no canonical JSON is
needed to verify it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from . import wire

BATCH_TYPE = "signalfire-batch"
ENVELOPE_TYPE = "signalfire-signed-batch"
SIGN_CONTEXT = b"signalfire/v1 batch\x00"
MAX_PACKETS = 20_000  # a USB bundle file; HTTPS and MQTT send far fewer at a time
MAX_ENVELOPE_BYTES = 16 * 1024 * 1024
# Integer fields must fit the coordinator's columns (BIGINT, INTEGER): a larger value
# from JSON (which has no limit) would fail in the database, not here. Node numbers
# are Meshtastic's unsigned 32 bits.
_INT64 = (0, 2**63 - 1)
_INT32 = (-(2**31), 2**31 - 1)
_INT_RANGES = {"sent_at": _INT64, "radio_node": (0, 2**32 - 1), "rssi": _INT32, "hops": _INT32}


class BatchError(Exception):
    """A batch or envelope that must not be ingested; the message says why."""

    def __init__(self, message: str, code: str = "bad-batch") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class BatchItem:
    packet: bytes
    received_at: float | None = None
    radio_node: int | None = None
    snr: float | None = None
    rssi: int | None = None
    hops: int | None = None
    verified: str | None = None

    @property
    def id(self) -> bytes:
        return wire.packet_id(self.packet[: -wire.packet.SIGNATURE_SIZE])


@dataclass(frozen=True)
class Batch:
    network_id: bytes
    gateway_key: bytes
    batch_id: str
    sent_at: int
    items: tuple[BatchItem, ...]

    @property
    def gateway_key_id(self) -> bytes:
        return wire.key_id(self.gateway_key)


def encode(
    items: Sequence[BatchItem],
    *,
    gateway: Ed25519PrivateKey,
    network_id: bytes,
    batch_id: str,
    sent_at: int,
) -> bytes:
    """The signed envelope, as bytes ready to POST, publish or write."""
    if len(items) > MAX_PACKETS:
        raise BatchError(f"{len(items)} packets; a batch holds at most {MAX_PACKETS}")
    gateway_key = wire.ed25519_public_bytes(gateway)
    body = json.dumps(
        {
            "type": BATCH_TYPE,
            "version": 1,
            "network": network_id.hex(),
            "gateway": wire.key_id(gateway_key).hex(),
            "batch_id": batch_id,
            "sent_at": sent_at,
            "packets": [_item_json(item) for item in items],
        },
        separators=(",", ":"),
        sort_keys=True,
    ).encode()
    envelope = {
        "type": ENVELOPE_TYPE,
        "version": 1,
        "gateway_key": gateway_key.hex(),
        "body": body.decode(),
        "sha256": hashlib.sha256(body).hexdigest(),
        "signature": base64.b64encode(gateway.sign(SIGN_CONTEXT + body)).decode(),
    }
    return json.dumps(envelope, separators=(",", ":")).encode()


def _item_json(item: BatchItem) -> dict[str, Any]:
    out: dict[str, Any] = {"packet": base64.b64encode(item.packet).decode()}
    for name in ("received_at", "radio_node", "snr", "rssi", "hops", "verified"):
        value = getattr(item, name)
        # A radio reporting a NaN SNR must not make the whole batch malformed: the
        # measurement is dropped, the packet goes.
        if value is not None and not (isinstance(value, float) and not math.isfinite(value)):
            out[name] = value
    return out


def decode(data: bytes, *, network_id: bytes | None = None) -> Batch:
    """Check the envelope's checksum and signature and parse the batch.

    Whether the gateway key is one this coordinator enrolled is the caller's
    decision (``Batch.gateway_key``); packets inside are parsed by the wire
    code later, one by one, so one bad packet does not sink the batch.
    """
    if len(data) > MAX_ENVELOPE_BYTES:
        raise BatchError(f"batch is {len(data)} bytes; at most {MAX_ENVELOPE_BYTES}", "oversize")
    try:
        envelope = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        # RecursionError: arrays nested a thousand deep ("[[[[..."), a few KB of input
        raise BatchError("not a JSON batch envelope") from None
    if not isinstance(envelope, dict) or envelope.get("type") != ENVELOPE_TYPE:
        raise BatchError(f'not a signed batch (want "type": "{ENVELOPE_TYPE}")')
    if envelope.get("version") != 1:
        raise BatchError(f"batch envelope version {envelope.get('version')!r} is not supported")
    fields = [envelope.get(k) for k in ("body", "gateway_key", "signature", "sha256")]
    if not all(isinstance(v, str) for v in fields):
        raise BatchError("batch envelope lacks body, gateway_key, sha256 or signature")
    body_text, gateway_hex, signature_b64, checksum = (str(v) for v in fields)
    try:
        body = body_text.encode()
    except UnicodeEncodeError:
        # JSON can escape a lone surrogate ("\ud800"), which no UTF-8 body holds
        raise BatchError("batch body is not valid UTF-8") from None
    if hashlib.sha256(body).hexdigest() != checksum:
        raise BatchError("batch body does not match its checksum: the file is damaged", "corrupt")
    try:
        gateway_key = bytes.fromhex(gateway_hex)
        signature = base64.b64decode(signature_b64, validate=True)
        Ed25519PublicKey.from_public_bytes(gateway_key).verify(signature, SIGN_CONTEXT + body)
    except (ValueError, binascii.Error, InvalidSignature):
        raise BatchError("batch signature does not verify", "bad-signature") from None
    try:
        obj = json.loads(body)
    # UnicodeDecodeError: json.loads guesses UTF-16/32 from leading NULs in the bytes
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise BatchError("batch body is not JSON") from None
    if not isinstance(obj, dict) or obj.get("type") != BATCH_TYPE or obj.get("version") != 1:
        raise BatchError("batch body is not a version 1 signalfire batch")
    try:
        net = bytes.fromhex(str(obj["network"]))
        if obj["gateway"] != wire.key_id(gateway_key).hex():
            raise BatchError("batch names another gateway than the key that signed it")
        packets = obj["packets"]
        if not isinstance(packets, list) or len(packets) > MAX_PACKETS:
            raise BatchError(f"batch must list at most {MAX_PACKETS} packets")
        items = tuple(_item(p) for p in packets)
        batch = Batch(
            net, gateway_key, _utf8(str(obj["batch_id"])), _in_range("sent_at", obj), items
        )
    # OverflowError: int() of a JSON 1e999, which Python's json reads as infinity
    except (KeyError, TypeError, ValueError, OverflowError, binascii.Error) as exc:
        raise BatchError(f"batch body is malformed ({type(exc).__name__}: {exc})") from None
    if network_id is not None and batch.network_id != network_id:
        raise BatchError("batch is for another network", "not-for-this-network")
    return batch


def _utf8(text: str) -> str:
    """``text``, if it is storable: JSON can escape a lone surrogate ("\\ud800")."""
    text.encode()  # UnicodeEncodeError is a ValueError: "malformed"
    return text


def _in_range(name: str, obj: dict[str, Any]) -> int:
    value = int(obj[name])
    low, high = _INT_RANGES[name]
    if not low <= value <= high:
        raise ValueError(f"{name} {value} is outside {low}..{high}")
    return value


def _item(obj: Any) -> BatchItem:
    if not isinstance(obj, dict):
        raise TypeError("packet entry is not an object")
    packet = base64.b64decode(str(obj["packet"]), validate=True)
    if not 0 < len(packet) <= wire.MAX_PACKET:
        raise ValueError(f"packet of {len(packet)} bytes")

    def opt(name: str, kind: type) -> Any:
        value = obj.get(name)
        if value is None:
            return None
        if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
            # json reads NaN, Infinity and 1e999: stored, they would break every JSON
            # answer that shows the receipt (the API refuses to write them).
            if not math.isfinite(number):
                raise ValueError(f"{name} is not a finite number")
            return number
        if kind is int and isinstance(value, int) and not isinstance(value, bool):
            return _in_range(name, obj)
        if kind is str and isinstance(value, str):
            return _utf8(value)
        raise TypeError(f"{name} has the wrong type")

    return BatchItem(
        packet=packet,
        received_at=opt("received_at", float),
        radio_node=opt("radio_node", int),
        snr=opt("snr", float),
        rssi=opt("rssi", int),
        hops=opt("hops", int),
        verified=opt("verified", str),
    )

"""Fuzz findings in ``batch.decode``: each input now gets a clean BatchError, not a crash.

Before the fix each of these raised out of ``decode`` (a 500 from POST /api/v1/batches,
a traceback from `signalfire bundle import`). Any key can sign an envelope (whether
it is an enrolled gateway is checked after decoding), so the ones behind the
signature are as reachable as the ones in front of it.
"""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from signalfire import batch, wire

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


def envelope(body_text: str) -> bytes:
    """A correctly signed envelope whose body string is ``body_text`` (surrogates too)."""
    signed = body_text.encode("utf-8", "surrogatepass")
    return json.dumps(
        {
            "type": batch.ENVELOPE_TYPE,
            "version": 1,
            "gateway_key": wire.ed25519_public_bytes(KEY).hex(),
            "body": body_text,
            "sha256": hashlib.sha256(signed).hexdigest(),
            "signature": base64.b64encode(KEY.sign(batch.SIGN_CONTEXT + signed)).decode(),
        }
    ).encode()


def v1_body(**overrides: object) -> str:
    obj = {
        "type": batch.BATCH_TYPE,
        "version": 1,
        "network": "00" * 8,
        "gateway": wire.key_id(wire.ed25519_public_bytes(KEY)).hex(),
        "batch_id": "b",
        "sent_at": 1,
        "packets": [],
    }
    return json.dumps(obj | overrides)


def refused(data: bytes) -> batch.BatchError:
    with pytest.raises(batch.BatchError) as caught:
        batch.decode(data)
    return caught.value


def test_the_helpers_make_a_batch_that_decodes() -> None:
    assert batch.decode(envelope(v1_body())).batch_id == "b"


def test_lone_surrogate_in_the_body() -> None:
    # fuzz target batch_signed, input 7: a body of invalid UTF-8 (escaped as \udcxx in
    # the JSON) raised UnicodeEncodeError from body_text.encode().
    assert "UTF-8" in refused(envelope("\udcff")).message


def test_body_bytes_that_json_reads_as_utf32() -> None:
    # fuzz target batch_signed (quick run): leading NULs make json.loads(bytes) guess
    # UTF-32, and the UTF-8 of U+00FF (c3 bf c3 bf) is no UTF-32 code point: a
    # UnicodeDecodeError after the signature had verified.
    text = "\x00\x00\x00{\xff\xff\xff\xff"
    assert text.encode()[:4] == b"\x00\x00\x00{"
    assert refused(envelope(text)).message == "batch body is not JSON"


@pytest.mark.parametrize("depth", [10_000, 100_000])
def test_deeply_nested_envelope(depth: int) -> None:
    # Found reading batch.decode while writing the batch_decode target: a few KB of
    # "[" raised RecursionError from json.loads, before any signature check.
    assert refused(b"[" * depth).message == "not a JSON batch envelope"


def test_deeply_nested_signed_body() -> None:
    # The same behind the signature (any key signs): RecursionError from the body's parse.
    assert refused(envelope("[" * 100_000)).message == "batch body is not JSON"


@pytest.mark.parametrize("sent_at", ["1e999", "-1e999"])
def test_infinite_sent_at(sent_at: str) -> None:
    # Found while writing the batch_signed target: json reads 1e999 as inf, and
    # int(inf) raised OverflowError out of decode.
    body = v1_body(sent_at=0).replace('"sent_at": 0', f'"sent_at": {sent_at}')
    assert "OverflowError" in refused(envelope(body)).message


# Found by replaying structure-aware inputs of the bundle_import target (a body signed
# by an enrolled gateway, ingested into SQLite): these passed decode and then raised
# out of the store's INSERT (OverflowError, UnicodeEncodeError; on PostgreSQL a
# DataError, answered as "database unavailable" and retried for ever).


@pytest.mark.parametrize(
    "overrides",
    [
        {"batch_id": "\ud800"},
        {"sent_at": 10**30},
        {"sent_at": -1},
        {"packets": [{"packet": "AQ==", "radio_node": 2**32}]},
        {"packets": [{"packet": "AQ==", "rssi": 2**31}]},
        {"packets": [{"packet": "AQ==", "hops": -(10**20)}]},
        {"packets": [{"packet": "AQ==", "verified": "\udcff"}]},
    ],
)
def test_values_the_store_cannot_hold(overrides: dict[str, object]) -> None:
    assert "malformed" in refused(envelope(v1_body(**overrides))).message


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
@pytest.mark.parametrize("field", ["received_at", "snr"])
def test_receipt_numbers_must_be_finite(field: str, number: str) -> None:
    # Noted in the first fuzz round: json reads these as nan/inf, the store kept them,
    # and every API answer showing that receipt would have failed to serialize.
    body = v1_body(packets=[{"packet": "AQ==", field: 0.5}])
    body = body.replace(f'"{field}": 0.5', f'"{field}": {number}')
    assert "malformed" in refused(envelope(body)).message


def test_a_gateway_drops_a_nan_measurement_rather_than_send_a_malformed_batch() -> None:
    gateway = Ed25519PrivateKey.generate()
    odd = batch.BatchItem(b"\x01", received_at=float("inf"), snr=float("nan"), rssi=-90)
    data = batch.encode([odd], gateway=gateway, network_id=bytes(8), batch_id="n", sent_at=1)
    (item,) = batch.decode(data).items
    assert (item.received_at, item.snr, item.rssi) == (None, None, -90)


def test_the_largest_storable_values_still_decode() -> None:
    item = {"packet": "AQ==", "radio_node": 2**32 - 1, "rssi": -(2**31), "hops": 2**31 - 1}
    decoded = batch.decode(envelope(v1_body(sent_at=2**63 - 1, packets=[item])))
    assert decoded.sent_at == 2**63 - 1 and decoded.items[0].radio_node == 2**32 - 1

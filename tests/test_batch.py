"""The signed uplink batch (docs/protocol.md section 15)."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from signalfire import batch, wire
from wirekit import Net

T = 1_795_860_000


def make(net: Net, n: int = 3) -> tuple[bytes, list[batch.BatchItem], Ed25519PrivateKey]:
    gateway = Ed25519PrivateKey.generate()
    items = [batch.BatchItem(net.announcement, received_at=T, radio_node=0x1234)] + [
        batch.BatchItem(net.seal(wire.Report(wire.Status.SOS, T, i)), received_at=T + i,
                        radio_node=0x1234, snr=4.5, rssi=-101, hops=2, verified="verified")
        for i in range(n)
    ]  # fmt: skip
    data = batch.encode(
        items, gateway=gateway, network_id=wire.network_id(net.public), batch_id="b1", sent_at=T
    )
    return data, items, gateway


def test_round_trip_keeps_every_field() -> None:
    net = Net()
    data, items, gateway = make(net)
    got = batch.decode(data, network_id=wire.network_id(net.public))
    assert got.items == tuple(items)
    assert got.gateway_key == wire.ed25519_public_bytes(gateway)
    assert got.gateway_key_id == wire.key_id(got.gateway_key)
    assert (got.batch_id, got.sent_at) == ("b1", T)
    assert [i.id for i in got.items][1:] == [wire.parse(i.packet).id for i in items[1:]]


def _mangle(data: bytes, **changes: object) -> bytes:
    envelope = json.loads(data)
    envelope.update(changes)
    return json.dumps(envelope).encode()


@pytest.mark.parametrize(
    ("mangle", "code"),
    [
        (lambda d, e: d[:-5], "bad-batch"),
        (lambda d, e: _mangle(d, body=e["body"].replace('"b1"', '"b2"')), "corrupt"),
        (
            lambda d, e: _mangle(
                d,
                body=e["body"].replace('"b1"', '"b2"'),
                sha256=__import__("hashlib")
                .sha256(e["body"].replace('"b1"', '"b2"').encode())
                .hexdigest(),
            ),
            "bad-signature",
        ),
        (
            lambda d, e: _mangle(
                d, gateway_key=Ed25519PrivateKey.generate().public_key().public_bytes_raw().hex()
            ),
            "bad-signature",
        ),
        (lambda d, e: _mangle(d, version=2), "bad-batch"),
        (lambda d, e: _mangle(d, signature=base64.b64encode(b"x" * 64).decode()), "bad-signature"),
        (lambda d, e: b"\xff\xfe", "bad-batch"),
        (lambda d, e: b"[]", "bad-batch"),
        (lambda d, e: b" " * (batch.MAX_ENVELOPE_BYTES + 1), "oversize"),
    ],
)
def test_tampered_or_malformed_envelopes_are_refused(mangle, code) -> None:  # type: ignore[no-untyped-def]
    data, _, _ = make(Net())
    with pytest.raises(batch.BatchError) as info:
        batch.decode(mangle(data, json.loads(data)))
    assert info.value.code == code
    assert info.value.message


def test_batch_for_another_network_is_refused() -> None:
    data, _, _ = make(Net())
    with pytest.raises(batch.BatchError) as info:
        batch.decode(data, network_id=bytes(8))
    assert info.value.code == "not-for-this-network"


def test_a_signed_body_naming_another_gateway_is_refused() -> None:
    gateway = Ed25519PrivateKey.generate()
    body = json.dumps({
        "type": "signalfire-batch", "version": 1, "network": "00" * 8, "gateway": "11" * 8,
        "batch_id": "x", "sent_at": T, "packets": [],
    }).encode()  # fmt: skip
    envelope = json.dumps({
        "type": "signalfire-signed-batch", "version": 1,
        "gateway_key": gateway.public_key().public_bytes_raw().hex(), "body": body.decode(),
        "sha256": __import__("hashlib").sha256(body).hexdigest(),
        "signature": base64.b64encode(gateway.sign(batch.SIGN_CONTEXT + body)).decode(),
    }).encode()  # fmt: skip
    with pytest.raises(batch.BatchError, match="another gateway"):
        batch.decode(envelope)


def test_packet_entries_are_checked() -> None:
    net = Net()
    gateway = Ed25519PrivateKey.generate()
    huge = batch.BatchItem(bytes(300))
    data = batch.encode([huge], gateway=gateway, network_id=bytes(8), batch_id="x", sent_at=T)
    with pytest.raises(batch.BatchError, match="malformed"):
        batch.decode(data)
    odd = batch.BatchItem(net.announcement, radio_node=None, snr=None)
    assert batch.decode(
        batch.encode([odd], gateway=gateway, network_id=bytes(8), batch_id="y", sent_at=T)
    ).items == (odd,)
    with pytest.raises(batch.BatchError, match="at most"):
        batch.encode([odd] * (batch.MAX_PACKETS + 1), gateway=gateway, network_id=bytes(8),
                     batch_id="z", sent_at=T)  # fmt: skip

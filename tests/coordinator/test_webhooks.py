"""The RockBLOCK and Kannel webhooks: secrets, allow-lists, containers, parts, idempotency.

Each test runs against SQLite and PostgreSQL (the ``world`` fixture).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote_from_bytes

import pytest
from argon2 import PasswordHasher
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.testclient import TestClient

from signalfire import wire
from signalfire.coordinator.accounts import Accounts
from signalfire.coordinator.api import create_coordinator_app
from signalfire.coordinator.config import SbdSettings, SmsSettings
from signalfire.coordinator.feed import Feed, FeedSettings
from signalfire.coordinator.webhooks import (
    Refused,
    Webhooks,
    parse_form,
    read_kannel,
    read_rockblock,
)
from signalfire.modem import container
from signalfire.modem.pdu import Concat, encode_udh

from .kit import NOW, World

SBD_TOKEN = "a" * 20 + "sbd-secret-token"
SMS_TOKEN = "b" * 20 + "sms-secret-token"
IMEI = "300434063480220"
PHONE = "+37491000001"
SBD = f"/api/v1/sbd/rockblock/{SBD_TOKEN}"
SMS = f"/api/v1/sms/kannel/{SMS_TOKEN}"


@contextmanager
def serving(world: World, jwt_key: bytes | None = None) -> Iterator[TestClient]:
    """The coordinator app with both webhooks, on the world's store."""
    store = world.store()
    app = create_coordinator_app(
        ingestor=world.ingestor(store),
        feed=Feed(store, FeedSettings()),
        accounts=Accounts(store, hasher=PasswordHasher(time_cost=1, memory_cost=1024)),
        webhooks=Webhooks(
            sbd=SbdSettings(token=SBD_TOKEN, modems=((IMEI, "gw1"),), jwt_key=jwt_key),
            sms=SmsSettings(token=SMS_TOKEN, phones=((PHONE, "gw2"),)),
        ),
        wall_clock=lambda: NOW,
    )
    try:
        with TestClient(app) as c:
            yield c
    finally:
        store.close()


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    with serving(world) as c:
        yield c


def rockblock(data: bytes, momsn: int = 7, imei: str = IMEI) -> dict[str, str]:
    return {
        "imei": imei,
        "device_type": "ROCKBLOCK",
        "serial": "16302",
        "momsn": str(momsn),
        "transmit_time": "26-11-28 04:05:06",
        "iridium_latitude": "40.18",
        "iridium_longitude": "44.51",
        "iridium_cep": "5.0",
        "data": data.hex(),
    }


def test_rockblock_delivery_is_ingested_once_per_imei_and_momsn(
    world: World, client: TestClient
) -> None:
    who = world.sender()
    data = container.encode([who.announcement, who.report()])
    answer = client.post(SBD, data=rockblock(data))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert len(body["stored"]) == 2 and not body["rejected"]
    again = client.post(SBD, data=rockblock(data))  # RockBLOCK retrying
    assert again.status_code == 200
    assert sorted(again.json()["stored"]) == sorted(body["stored"])
    with world.store().transaction(write=False) as tx:
        receipts = tx.receipts(body["stored"][1])
    assert [(r.uplink, r.batch_id) for r in receipts] == [("sbd", f"sbd-{IMEI}-7")]
    gw1 = wire.key_id(wire.ed25519_public_bytes(world.gateways["gw1"])).hex()
    assert receipts[0].gateway_key_id == gw1  # the gateway the IMEI is mapped to
    # The same reports in another message (another MOMSN) are duplicates, not new rows.
    other = client.post(SBD, data=rockblock(data, momsn=8)).json()
    assert len(other["duplicates"]) == 2 and not other["stored"]


def test_rockblock_refuses_wrong_secret_unknown_imei_and_garbage(
    world: World, client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    data = container.encode([world.sender().announcement])
    with caplog.at_level("DEBUG"):
        wrong = client.post("/api/v1/sbd/rockblock/" + "x" * 36, data=rockblock(data))
    assert wrong.status_code == 403
    ours = " ".join(r.getMessage() for r in caplog.records if r.name.startswith("signalfire"))
    assert "wrong secret" in ours
    assert SBD_TOKEN not in ours and "x" * 36 not in ours  # secrets never logged
    assert client.post(SBD, data=rockblock(data, imei="300434063480221")).status_code == 403
    assert client.post(SBD, data=rockblock(b"\x01\x02junk")).status_code == 400
    bad_hex = rockblock(data) | {"data": "zz"}
    assert client.post(SBD, data=bad_hex).status_code == 400
    assert client.post(SBD, data={"imei": IMEI}).status_code == 400
    assert client.post(SBD, content=b"x" * 20_000).status_code == 413


def test_damaged_container_keeps_what_came_before_and_forgeries_are_rejected(
    world: World, client: TestClient
) -> None:
    who = world.sender()
    good = who.report()
    forged = bytearray(who.report())
    forged[-1] ^= 0x01
    data = container.encode([who.announcement, good, bytes(forged)])  # 3 entries, > 340 B
    cut = data[:-30]  # the last entry cut short
    body = client.post(SBD, data=rockblock(cut)).json()
    assert len(body["stored"]) == 2
    assert body["container_error"]["error"] == "truncated"
    assert len(data) > container.SBD_MO_MAX  # a webhook refuses more than one MO message
    assert client.post(SBD, data=rockblock(data, momsn=9)).status_code == 400
    rest = client.post(SBD, data=rockblock(container.encode([bytes(forged)]), momsn=10)).json()
    assert [e["error"] for e in rest["rejected"]] == ["bad-signature"]


def test_revoked_gateway_modem_is_refused(world: World, client: TestClient) -> None:
    key = wire.ed25519_public_bytes(world.gateways["gw1"])
    world.store().revoke_gateway(wire.key_id(key).hex(), NOW, actor="test")
    data = container.encode([world.sender().announcement])
    answer = client.post(SBD, data=rockblock(data))
    assert answer.status_code == 403 and answer.json()["error"] == "revoked-gateway"


def kannel(ud: bytes, udh: bytes = b"", sender: str = PHONE) -> str:
    """The query string Kannel's get-url makes from %p %t %c %u %b (URL-encoded binary)."""
    return (
        f"?from={quote_from_bytes(sender.encode())}&time=2026-11-28+04:05&coding=2"
        f"&udh={quote_from_bytes(udh)}&data={quote_from_bytes(ud)}"
    )


def test_sms_parts_are_reassembled_in_any_order_and_ingested_once(
    world: World, client: TestClient
) -> None:
    who = world.sender()
    data = container.encode([who.announcement, who.report(), who.report(text="water, 4 people")])
    step = 134
    parts = [data[i : i + step] for i in range(0, len(data), step)]
    assert len(parts) == 3
    udhs = [encode_udh(Concat(42, 3, n + 1)) for n in range(3)]
    first = client.get(SMS + kannel(parts[2], udhs[2]))
    assert first.status_code == 200 and first.json()["waiting"]
    assert client.get(SMS + kannel(parts[2], udhs[2])).json()["waiting"]  # a retried part
    assert client.get(SMS + kannel(parts[0], udhs[0])).json()["waiting"]
    done = client.post(SMS + kannel(parts[1], udhs[1]))
    assert done.status_code == 200 and len(done.json()["stored"]) == 3
    # Parts are dropped once ingested; the whole message again is a replay.
    for n in (0, 1):
        client.get(SMS + kannel(parts[n], udhs[n]))
    again = client.get(SMS + kannel(parts[2], udhs[2])).json()
    assert sorted(again["stored"]) == sorted(done.json()["stored"])


def test_sms_single_message_and_refusals(world: World, client: TestClient) -> None:
    who = world.sender()
    one = container.encode([who.report(seq=5)])
    answer = client.get(SMS + kannel(one))
    assert answer.status_code == 200 and answer.json()["pending"]  # no announcement yet
    assert client.get(SMS + kannel(one, sender="+37491000002")).status_code == 403
    assert client.get(f"/api/v1/sms/kannel/{'c' * 36}" + kannel(one)).status_code == 403
    assert client.get(SMS + kannel(one, udh=b"\x05\x00\x03\x01\x02")).status_code == 400
    assert client.get(SMS + kannel(b"\x01" * 10)).status_code == 400


def test_rockblock_json_delivery_is_read_like_the_form(world: World, client: TestClient) -> None:
    # RockBLOCK's "HTTP_JSON" delivery: the same fields in a JSON object (momsn a number).
    who = world.sender()
    data = container.encode([who.announcement, who.report()])
    body = rockblock(data, momsn=31) | {"momsn": 31, "iridium_cep": 5.0}
    answer = client.post(SBD, json=body)
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["stored"]) == 2
    for junk in (b"[1, 2]", b"{", b"[" * 100_000 + b"]" * 100_000, b'{"imei": 3e999}'):
        refused = client.post(
            SBD, content=junk[:8000], headers={"content-type": "application/json"}
        )
        assert refused.status_code == 400, (junk[:20], refused.text)


def _jwt(claims: dict[str, str], key: rsa.RSAPrivateKey, alg: str = "RS256") -> str:
    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    signed = b64(json.dumps({"alg": alg}).encode()) + "." + b64(json.dumps(claims).encode())
    signature = key.sign(signed.encode(), padding.PKCS1v15(), hashes.SHA256())
    return signed + "." + b64(signature)


def test_with_ground_controls_key_only_what_the_jwt_signs_is_read(world: World) -> None:
    ground_control = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = ground_control.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    who = world.sender()
    data = container.encode([who.announcement, who.report()])
    signed = rockblock(data, momsn=40)
    with serving(world, jwt_key=pem) as client:
        # The unsigned fields say something else: only the claims count.
        forged = container.encode([world.sender().announcement])
        good = rockblock(forged, momsn=41) | {"JWT": _jwt(signed, ground_control)}
        answer = client.post(SBD, data=good)
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["stored"]) == 2
        as_json = client.post(SBD, json={"JWT": _jwt(signed, ground_control)})
        assert as_json.status_code == 200 and as_json.json()["stored"]  # a retry: same ids
        refusals = {
            "missing": rockblock(data, momsn=42),
            "other key": rockblock(data) | {"JWT": _jwt(signed, stranger)},
            "alg none": rockblock(data) | {"JWT": _jwt(signed, ground_control, "none")},
            "garbage": rockblock(data) | {"JWT": "a.b.c"},
            "two parts": rockblock(data) | {"JWT": "e30.e30"},
        }
        for what, form in refusals.items():
            refused = client.post(SBD, data=form)
            assert refused.status_code == 403, what
            assert refused.json()["error"] == "bad-jwt", what
        header, _, signature = _jwt(signed, ground_control).split(".")
        other = json.dumps(signed | {"momsn": "9"}).encode()
        claims = base64.urlsafe_b64encode(other).decode().rstrip("=")
        tampered = f"{header}.{claims}.{signature}"
        assert client.post(SBD, data={"JWT": tampered}).status_code == 403


def test_the_pure_readers_check_every_field() -> None:
    base = {k: v.encode() for k, v in rockblock(b"\x53\x01\x01", momsn=9).items()}
    got = read_rockblock(base, {IMEI})
    assert (got.imei, got.momsn, got.payload) == (IMEI, 9, b"\x53\x01\x01")
    assert got.sent_at == dt.datetime(2026, 11, 28, 4, 5, 6, tzinfo=dt.UTC).timestamp()
    iso = read_rockblock(base | {"transmit_time": b"2026-11-28T04:05:06Z"}, {IMEI})
    assert iso.sent_at == got.sent_at
    assert read_rockblock(base | {"transmit_time": b"yesterday"}, {IMEI}).sent_at is None
    for bad, status in (
        ({"imei": b"12"}, 400), ({"momsn": b"65536"}, 400), ({"data": b"abc"}, 400),
        ({"data": b"00" * 341}, 400), ({"imei": b"300434063480221"}, 403),
        ({"transmit_time": "é".encode()}, 400),
    ):  # fmt: skip
        with pytest.raises(Refused) as info:
            read_rockblock(base | bad, {IMEI})
        assert info.value.status == status, bad
    sms = read_kannel({"from": b"0037491000001", "data": b"\x53", "coding": b"2"}, {PHONE})
    assert (sms.sender, sms.data, sms.concat) == (PHONE, b"\x53", None)
    with pytest.raises(Refused, match="not 8-bit"):
        read_kannel({"from": PHONE.encode(), "data": b"x", "coding": b"0"}, {PHONE})
    with pytest.raises(Refused, match="too many"):
        parse_form("&".join(f"k{i}=v" for i in range(40)), b"")

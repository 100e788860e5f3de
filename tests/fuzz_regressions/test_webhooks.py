"""Fuzz finding in the webhooks: a non-ASCII optional form field was a 500, now a 400.

``_text(fields, "transmit_time")`` (RockBLOCK) and ``_text(fields, "time")`` (Kannel)
ran outside the route's ``try``, so the ``_Refused`` they raise for a non-ASCII value
escaped the route. Found by the webhooks fuzz target's seed replay (RockBLOCK); the
Kannel route had the same shape.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.testclient import TestClient

from signalfire import wire
from signalfire.coordinator.accounts import Accounts
from signalfire.coordinator.api import create_coordinator_app
from signalfire.coordinator.config import SbdSettings, SmsSettings
from signalfire.coordinator.feed import Feed
from signalfire.coordinator.ingest import Ingestor
from signalfire.coordinator.store import CoordinatorStore
from signalfire.coordinator.webhooks import Webhooks

NOW = 1_795_860_000.0
TOKEN = "t" * 24
IMEI = "300434063480220"
PHONE = "+37491000001"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    network = X25519PrivateKey.generate()
    gateway = wire.ed25519_public_bytes(Ed25519PrivateKey.generate())
    store = CoordinatorStore(f"sqlite:///{tmp_path / 'c.db'}", now=NOW)
    ingestor = Ingestor(
        store,
        wire.Keyring(wire.x25519_public_bytes(network), network),
        enrolled_gateways=[("gw1", gateway)],
        now=NOW,
    )
    app = create_coordinator_app(
        ingestor=ingestor,
        feed=Feed(store),
        accounts=Accounts(store, hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)),
        webhooks=Webhooks(
            sbd=SbdSettings(token=TOKEN, modems=((IMEI, "gw1"),)),
            sms=SmsSettings(token=TOKEN, phones=((PHONE, "gw1"),)),
        ),
        wall_clock=lambda: NOW,
    )
    with TestClient(app) as c:
        yield c
    store.close()


def test_rockblock_non_ascii_transmit_time_is_a_400(client: TestClient) -> None:
    body = f"imei={IMEI}&momsn=7&data=c10101&transmit_time=%8B%FF".encode()
    answer = client.post(
        f"/api/v1/sbd/rockblock/{TOKEN}",
        content=body,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 400
    assert answer.json() == {
        "error": "bad-form",
        "message": "form field 'transmit_time' is not ASCII",
    }


def test_kannel_non_ascii_time_is_a_400(client: TestClient) -> None:
    query = "from=%2B37491000001&data=%C1%01%01&coding=2&time=%FF"
    answer = client.post(f"/api/v1/sms/kannel/{TOKEN}?{query}")
    assert answer.status_code == 400
    assert answer.json()["message"] == "form field 'time' is not ASCII"

"""The HTTPS batch endpoint: status codes, the answer's schema, limits; one real server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.applications import Starlette
from starlette.testclient import TestClient

from signalfire import wire
from signalfire.coordinator.app import create_app
from signalfire.coordinator.ingest import Ingestor
from signalfire.coordinator.store import CoordinatorStore

from .kit import World, flip, pid

BATCHES = "/api/v1/batches"


@pytest.fixture
def ingestor(world: World, store: CoordinatorStore) -> Ingestor:
    return world.ingestor(store)


@pytest.fixture
def client(ingestor: Ingestor) -> Iterator[TestClient]:
    with TestClient(create_app(ingestor, max_body_bytes=64 * 1024)) as c:
        yield c


def test_batch_answer_lists_every_packet(world: World, client: TestClient) -> None:
    alice, bob = world.sender(), world.sender()
    good, forged, unknown = alice.report(), flip(alice.report(), -1), bob.report()
    data = world.batch([alice.announcement, good, forged, unknown])
    response = client.post(BATCHES, content=data, headers={"Content-Type": "application/json"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "stored": [pid(alice.announcement), pid(good)],
        "duplicates": [],
        "pending": [pid(unknown)],
        "rejected": [{"id": pid(forged), "error": "bad-signature"}],
        "deferred": [],
    }
    again = client.post(BATCHES, content=data)
    assert again.status_code == 200 and again.json() == response.json()


def test_health_says_ok_and_nothing_else(client: TestClient) -> None:
    response = client.get("/api/v1/health")
    assert response.status_code == 200 and response.json() == {"ok": True}
    assert "server" not in response.headers


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", "/api/v1/batch"),
        ("GET", BATCHES),  # a known path with the wrong method is no different
        ("POST", "/api/v1/health"),
        ("DELETE", BATCHES),
        ("GET", "/api/v2/health"),
    ],
)
def test_everything_else_is_404(client: TestClient, method: str, path: str) -> None:
    response = client.request(method, path)
    assert response.status_code == 404
    assert response.json()["error"] == "not-found"


def test_bad_envelope_is_400_with_a_json_error(client: TestClient) -> None:
    for body in (b"", b"not json", b'{"type": "signalfire-signed-batch", "version": 1}'):
        response = client.post(BATCHES, content=body)
        assert response.status_code == 400
        assert set(response.json()) == {"error", "message"}


def test_unknown_gateway_is_403(world: World, client: TestClient) -> None:
    stranger = Ed25519PrivateKey.generate()
    response = client.post(BATCHES, content=world.batch([], stranger))
    assert response.status_code == 403 and response.json()["error"] == "unknown-gateway"


def test_revoked_gateway_is_403(world: World, store: CoordinatorStore, client: TestClient) -> None:
    key_id = wire.key_id(wire.ed25519_public_bytes(world.gateways["gw2"])).hex()
    store.revoke_gateway(key_id, time.time(), actor="test")
    response = client.post(BATCHES, content=world.batch([], "gw2"))
    assert response.status_code == 403 and response.json()["error"] == "revoked-gateway"
    assert client.post(BATCHES, content=world.batch([], "gw1")).status_code == 200


def test_oversized_body_is_413_declared_or_streamed(world: World, client: TestClient) -> None:
    big = b"x" * (64 * 1024 + 1)
    assert client.post(BATCHES, content=big).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while reading
        for _ in range(100):
            yield b"y" * 1024

    response = client.post(BATCHES, content=chunks())
    assert response.status_code == 413 and response.json()["error"] == "too-large"


def test_rate_limit_per_gateway_is_429_with_retry_after(world: World, ingestor: Ingestor) -> None:
    now = [1000.0]
    app = create_app(ingestor, rate_per_s=0.5, burst=2, clock=lambda: now[0])
    with TestClient(app) as client:
        codes = [client.post(BATCHES, content=world.batch([], "gw1")).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        limited = client.post(BATCHES, content=world.batch([], "gw1"))
        assert limited.status_code == 429 and limited.headers["retry-after"] == "2"
        assert limited.json()["error"] == "rate-limited"
        # another gateway has its own bucket
        assert client.post(BATCHES, content=world.batch([], "gw2")).status_code == 200
        now[0] += 2.0
        assert client.post(BATCHES, content=world.batch([], "gw1")).status_code == 200


def test_a_bad_signature_does_not_drain_the_gateways_bucket(
    world: World, ingestor: Ingestor
) -> None:
    app = create_app(ingestor, rate_per_s=0.001, burst=1, clock=lambda: 0.0)
    with TestClient(app) as client:
        data = world.batch([], "gw1")
        forged = data.replace(b'"signature":"', b'"signature":"A')
        for _ in range(5):
            assert client.post(BATCHES, content=forged).status_code == 400
        assert client.post(BATCHES, content=data).status_code == 200


def _serve(app: Starlette) -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_config=None, lifespan="off", server_header=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def test_real_server_and_http_client(world: World, store: CoordinatorStore) -> None:
    app = create_app(world.ingestor(store))
    alice = world.sender()
    report = alice.report(wire.Status.MEDICAL, text="broken leg")
    data = world.batch([alice.announcement, report], "gw2")
    for base in _serve(app):
        with httpx.Client(base_url=base, timeout=10) as http:
            assert http.get("/api/v1/health").json() == {"ok": True}
            response = http.post(
                BATCHES, content=data, headers={"Content-Type": "application/json"}
            )
            assert response.status_code == 200
            assert response.json()["stored"] == [pid(alice.announcement), pid(report)]
            assert http.get("/nothing/here").status_code == 404
    with store.transaction(write=False) as tx:
        row = tx.report(pid(report))
    assert row is not None and row["text"] == "broken leg"

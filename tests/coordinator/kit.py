"""A small world for coordinator tests: a network, senders, gateways, batches.

Every packet is made with signalfire's own API (wire.enrol, wire.seal_report,
batch.encode); only deliberately corrupted bytes are written by hand.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from signalfire import batch as batchfmt
from signalfire import wire
from signalfire.coordinator.ingest import Ingestor, Policy
from signalfire.coordinator.store import CoordinatorStore, normalize_url

NOW = 1_795_860_000.0  # the coordinator's clock in these tests
# The store, ingest and app tests run against SQLite and PostgreSQL (conftest.py
# starts a throw-away cluster). Set this to the admin URL of an existing server
# to use that one instead (one new database per test, dropped afterwards).
POSTGRES_URL = os.environ.get("SIGNALFIRE_TEST_POSTGRES", "")


def fresh_postgres_database(admin_url: str) -> str:
    engine = sa.create_engine(normalize_url(admin_url), isolation_level="AUTOCOMMIT")
    name = f"signalfire_test_{uuid.uuid4().hex[:12]}"
    with engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    engine.dispose()
    return normalize_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(admin_url: str, url: str) -> None:
    """Drop a test database, ending connections a test left open (engines not disposed)."""
    name = normalize_url(url).database
    assert name and name.startswith("signalfire_test_"), name
    engine = sa.create_engine(normalize_url(admin_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    engine.dispose()


class Sender:
    """An identity enrolled with the network: announcement, key chain, next sequence number."""

    def __init__(self, network_public: bytes, key: Ed25519PrivateKey | None = None) -> None:
        self.key = key or Ed25519PrivateKey.generate()
        self.public = wire.ed25519_public_bytes(self.key)
        self.key_id = wire.key_id(self.public)
        self.announcement, self.chain = wire.enrol(
            self.key, network_public, X25519PrivateKey.generate()
        )
        self.seq = 0

    def seal(self, report: wire.Report, seq: int | None = None) -> bytes:
        use = self.seq if seq is None else seq
        packet, chain = wire.seal_report(report, self.key, self.chain, use)
        if seq is None:
            self.chain, self.seq = chain, use + 1
        return packet

    def report(
        self,
        status: wire.Status = wire.Status.SOS,
        *,
        time: float = NOW,
        text: str | None = None,
        seq: int | None = None,
        attestation: wire.Attestation | None = None,
    ) -> bytes:
        report = wire.Report(
            status=status,
            time=int(time),
            people=3,
            needs=wire.Need.WATER | wire.Need.MEDICINE,
            location=wire.Location.from_degrees(40.1776, 44.5126, accuracy_m=20),
            text=text,
            attestation=attestation,
        )
        return self.seal(report, seq)


class World:
    def __init__(self, tmp_path: Path, db_url: str | None = None) -> None:
        self.tmp_path = tmp_path
        self.network_private = X25519PrivateKey.generate()
        self.network_public = wire.x25519_public_bytes(self.network_private)
        self.network_id = wire.network_id(self.network_public)
        self.gateways = {name: Ed25519PrivateKey.generate() for name in ("gw1", "gw2")}
        self.db_url = db_url or f"sqlite:///{tmp_path / 'coordinator.db'}"
        if db_url is None and POSTGRES_URL:
            self.db_url = fresh_postgres_database(POSTGRES_URL)
        self._batch_ids = itertools.count(1)

    def sender(self) -> Sender:
        return Sender(self.network_public)

    def gateway_sender(self, name: str) -> Sender:
        """The gateway's own identity, enrolled to seal attested reports."""
        return Sender(self.network_public, self.gateways[name])

    def keyring(self) -> wire.Keyring:
        return wire.Keyring(self.network_public, self.network_private)

    def store(self) -> CoordinatorStore:
        return CoordinatorStore(self.db_url, now=NOW)

    def ingestor(
        self, store: CoordinatorStore | None = None, policy: Policy | None = None
    ) -> Ingestor:
        return Ingestor(
            store or self.store(),
            self.keyring(),
            enrolled_gateways=[
                (name, wire.ed25519_public_bytes(key)) for name, key in self.gateways.items()
            ],
            policy=policy,
            now=NOW,
        )

    def batch(
        self,
        packets: Sequence[bytes],
        gateway: str | Ed25519PrivateKey = "gw1",
        *,
        network_id: bytes | None = None,
    ) -> bytes:
        key = self.gateways[gateway] if isinstance(gateway, str) else gateway
        items = [
            batchfmt.BatchItem(
                p, received_at=NOW - 5, radio_node=0x11223344, snr=6.5, rssi=-90, hops=1
            )
            for p in packets
        ]
        return batchfmt.encode(
            items,
            gateway=key,
            network_id=network_id or self.network_id,
            batch_id=f"b{next(self._batch_ids)}",
            sent_at=int(NOW),
        )


def flip(packet: bytes, index: int) -> bytes:
    """The packet with one bit of byte ``index`` flipped (a deliberate corruption)."""
    data = bytearray(packet)
    data[index] ^= 0x01
    return bytes(data)


def pid(packet: bytes) -> str:
    return wire.packet_id(packet[:-64]).hex()

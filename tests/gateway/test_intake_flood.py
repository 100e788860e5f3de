"""Floods at the gateway's intake: junk, forged node numbers and fresh identities stay bounded,
and a real civilian's SOS still gets in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from signalfire import wire
from signalfire.gateway import intake as intake_mod
from signalfire.gateway.intake import GatewayIntake
from signalfire.gateway.store import GatewayStore
from signalfire.radio.api import Received

PORT = 287
T = 1_795_860_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T

    def __call__(self) -> float:
        return self.now


class Civilian:
    def __init__(self, network_public: bytes) -> None:
        self.key = Ed25519PrivateKey.generate()
        self.announcement, self.chain = wire.enrol(
            self.key, network_public, X25519PrivateKey.generate()
        )
        self.seq = 0

    def report(self, status: wire.Status) -> bytes:
        packet, self.chain = wire.seal_report(
            wire.Report(status, int(T), 1), self.key, self.chain, self.seq
        )
        self.seq += 1
        return packet


def heard(payload: bytes, node: int, packet_id: int) -> Received:
    return Received(
        from_node=node, to_node=0xFFFFFFFF, packet_id=packet_id, portnum=PORT, payload=payload,
        channel=0, rx_time=None, snr=5.0, rssi=-90, hop_limit=2, hop_start=3, pki_encrypted=False,
    )  # fmt: skip


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[GatewayIntake, Clock, bytes]]:
    network = wire.x25519_public_bytes(X25519PrivateKey.generate())
    store = GatewayStore(tmp_path / "gw.sqlite")
    clock = Clock()
    intake = GatewayIntake(store, wire.Keyring(network), ["up"], app_port=PORT, clock=clock)
    yield intake, clock, network
    store.close()


def test_fresh_identities_through_one_radio_are_bounded(world) -> None:  # type: ignore[no-untyped-def]
    intake, clock, network = world
    real = Civilian(network)  # announced an hour before the flood, from its own radio
    clock.now = T - 3600
    assert intake.handle(heard(real.announcement, 0x600D, 10_000)) == "stored"
    for n in range(200):  # 200 new identities, each announcing itself and crying SOS, in 20 s
        clock.now = T + n * 0.1
        minted = Civilian(network)
        intake.handle(heard(minted.announcement, 0xBAD, 2 * n))
        intake.handle(heard(minted.report(wire.Status.SOS), 0xBAD, 2 * n + 1))
    admitted = intake.counts["stored"] - 1
    assert admitted <= 5 + 5 + intake_mod.UNVERIFIED_PER_MINUTE  # a handful, not 400
    assert intake.counts["rate-limited:new-identity"] >= 190
    clock.now = T + 21  # the real civilian's SOS still gets through
    assert intake.handle(heard(real.report(wire.Status.SOS), 0x600D, 10_001)) == "stored"


def test_forged_node_numbers_cannot_fill_the_life_safety_queue(world) -> None:  # type: ignore[no-untyped-def]
    intake, clock, network = world
    for node in range(100):
        stranger = Civilian(network)  # never announced: nobody here can check its reports
        for k in range(20):
            clock.now = T + (node * 20 + k) * 0.03  # 2,000 packets in one minute
            intake.handle(heard(stranger.report(wire.Status.SOS), 0x1000 + node, node * 100 + k))
    stored = intake.counts["stored"]
    limit = intake_mod.UNVERIFIED_PER_MINUTE / 2 + intake_mod.UNVERIFIED_PER_MINUTE
    assert stored <= limit
    refused = intake.counts["rate-limited:unverified"] + intake.counts["rate-limited:node"]
    assert refused >= 2000 - limit


def test_routine_chatter_does_not_block_the_same_radios_sos(world) -> None:  # type: ignore[no-untyped-def]
    intake, _, network = world
    civilian = Civilian(network)
    intake.handle(heard(civilian.announcement, 0x77, 1))
    outcomes = [
        intake.handle(heard(civilian.report(wire.Status.SAFE), 0x77, 10 + i)) for i in range(60)
    ]
    assert "rate-limited:node" in outcomes or "rate-limited:key" in outcomes
    assert intake.handle(heard(civilian.report(wire.Status.SOS), 0x77, 999)) == "stored"


def test_junk_and_forgeries_are_counted_and_not_stored(world) -> None:  # type: ignore[no-untyped-def]
    intake, _, network = world
    civilian = Civilian(network)
    intake.handle(heard(civilian.announcement, 0x42, 1))
    good = civilian.report(wire.Status.MEDICAL)
    forged = bytearray(good)
    forged[30] ^= 4
    assert intake.handle(heard(bytes(forged), 0x42, 2)) == "forged"
    assert intake.handle(heard(b"\x01", 0x42, 3)) == "malformed:truncated"
    assert intake.handle(heard(good, 0x42, 4)) == "stored"
    assert intake.handle(heard(good, 0x43, 5)) == "duplicate"  # heard again via another path

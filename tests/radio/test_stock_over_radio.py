"""A stock radio's text through the real library: read, attested, answered by direct message."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from signalfire import wire
from signalfire.intake.stock import StockIntake
from signalfire.keyfiles import load_network_key
from signalfire.profile import init_network
from signalfire.radio.api import POSITION_PORT, TEXT_PORT, Received
from signalfire.radio.emulator import EmulatedDevice
from signalfire.radio.meshtastic_radio import MeshtasticRadio
from signalfire.radio.virtual_mesh import InMemoryMesh
from signalfire.sender import Identity

from .conftest import LIBRARY_TIMEOUT, tcp_port


def test_stock_sos_is_attested_and_answered_in_armenian(
    tmp_path: Path, device: EmulatedDevice, mesh: InMemoryMesh
) -> None:
    profile, key_path = init_network(tmp_path / "net", "town")
    gateway_identity = Identity.create(tmp_path / "gw.key")
    announcement, _ = gateway_identity.enrol(profile)
    intake = StockIntake(gateway_identity, profile)
    radio = MeshtasticRadio(f"tcp:127.0.0.1:{tcp_port(device)}", connect_timeout=LIBRARY_TIMEOUT)
    reports: list[bytes] = []
    done = threading.Event()

    def on_packet(item: Received) -> None:  # what the gateway daemon will do
        now = time.time()
        if item.portnum == POSITION_PORT:
            intake.on_position(item, now)
        elif item.portnum == TEXT_PORT:
            result = intake.on_text(item, now)
            if result is None:
                return
            if result.packet:
                reports.append(result.packet)
            if result.reply:
                radio.send_text(result.reply, dest=result.reply_to, want_ack=True)
            done.set()

    radio.add_listener(on_packet)
    radio.start()
    try:
        assert radio.wait_connected(10)
        civilian = next(iter(mesh.nodes.values()))
        mesh.send_position(civilian, latitude=40.1801, longitude=44.5150)
        time.sleep(0.2)
        mesh.send_text(civilian, "ՕԳՆՈՒԹՅՈՒՆ 3 հոգի, փլատակների տակ", to=device.node_num)
        assert done.wait(10)
        deadline = time.monotonic() + 10
        replies: list[str] = []
        while time.monotonic() < deadline and not replies:
            replies = [
                p.decoded.payload.decode()
                for p in civilian.inbox
                if p.decoded.portnum == TEXT_PORT and p.to == civilian.num
            ]
            time.sleep(0.05)
    finally:
        radio.close()
    assert replies and replies[0].startswith("Ստացանք")
    ring = wire.Keyring(profile.public_key, load_network_key(key_path))
    ring.add(announcement)
    opened = ring.open(reports[0])
    assert opened.kind is wire.Kind.ATTESTED
    assert opened.report.people == 3
    assert opened.report.status in (wire.Status.SOS, wire.Status.TRAPPED)
    assert opened.report.attestation is not None
    assert opened.report.attestation.node_num == civilian.num
    loc = opened.report.location
    assert loc is not None and abs(loc.lat - 40.1801) < 1e-5

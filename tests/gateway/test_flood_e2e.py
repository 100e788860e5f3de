"""A flood through the whole gateway: one radio sends 100 packets a second, SOS still gets out.

The device emulator (the real Meshtastic stream protocol), the gateway daemon
(the real meshtastic library, intake, store, scheduler, HTTPS uplink) and a
real coordinator. One virtual radio sends junk bytes and routine reports of
one sender key on the signalfire port, 100 a second for 12 seconds, while
four other civilians send an SOS each: every SOS must reach the coordinator
within 10 seconds of leaving its radio, the flood must be counted as
rate-limited or malformed, and nothing real is dropped.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from signalfire import wire
from signalfire.gateway.config import load_config
from signalfire.gateway.daemon import GatewayDaemon
from signalfire.profile import init_network
from signalfire.radio.emulator import EmulatedDevice
from signalfire.radio.virtual_mesh import InMemoryMesh
from signalfire.sender import Identity

from .coordkit import CoordinatorServer
from .test_daemon import write_config

pytestmark = pytest.mark.slow

FLOOD_PER_S = 100
FLOOD_S = 12.0
SOS_DEADLINE_S = 10.0


@pytest.fixture
def mesh() -> InMemoryMesh:
    return InMemoryMesh.generate(5, seed=31)


@pytest.fixture
def device(mesh: InMemoryMesh) -> Iterator[EmulatedDevice]:
    radio = EmulatedDevice(mesh, seed=31, enforce_rate_limits=False)
    radio.start()
    yield radio
    radio.stop()


def test_sos_leaves_the_gateway_within_10_s_of_a_100_per_second_flood(
    tmp_path: Path, device: EmulatedDevice, mesh: InMemoryMesh
) -> None:
    profile, key_path = init_network(tmp_path / "net", "town")
    gateway = Identity.create(tmp_path / "gw.key")
    coordinator = CoordinatorServer(tmp_path, profile, key_path, {"gw": gateway.public})
    coordinator.start()
    assert device.tcp_address is not None
    config = write_config(tmp_path, device.tcp_address[1], coordinator.url)
    daemon = GatewayDaemon(load_config(config))
    daemon.start()
    flooder, *civilians = list(mesh.nodes.values())
    rng = random.Random(5)
    spammer = Identity.create(tmp_path / "spam.key")
    sent = {"junk": 0, "routine": 0}
    ran = {"start": 0.0, "end": 0.0}
    stop = threading.Event()

    def flood() -> None:
        announced = False
        ran["start"] = time.monotonic()
        deadline = ran["start"] + FLOOD_S
        n = 0
        while time.monotonic() < deadline and not stop.is_set():
            if n % 2:
                junk = bytes([1]) + rng.randbytes(rng.randint(10, 200))
                mesh.send_data(flooder, junk, portnum=profile.app_port)
                sent["junk"] += 1
            else:
                sealed = spammer.seal(profile, wire.Report(wire.Status.SAFE, int(time.time()), 1))
                if sealed.announcement and not announced:
                    mesh.send_data(flooder, sealed.announcement, portnum=profile.app_port)
                    announced = True
                mesh.send_data(flooder, sealed.packet, portnum=profile.app_port)
                sent["routine"] += 1
            n += 1
            time.sleep(max(0.0, (n / FLOOD_PER_S) - (FLOOD_S - (deadline - time.monotonic()))))
        ran["end"] = time.monotonic()

    arrived: dict[str, float] = {}

    def watch() -> None:
        # When each report first shows at the coordinator, polled from the start.
        while not stop.is_set():
            now = time.monotonic()
            for rid in coordinator.report_ids():
                arrived.setdefault(rid, now)
            time.sleep(0.05)

    try:
        assert daemon.radio.wait_connected(10)
        threading.Thread(target=watch, daemon=True).start()
        flood_thread = threading.Thread(target=flood, daemon=True)
        flood_thread.start()
        time.sleep(2.0)  # the flood is in full swing
        sos_sent: dict[str, float] = {}
        for n, node in enumerate(civilians):
            civ = Identity.create(tmp_path / f"civ{n}.key")
            sealed = civ.seal(profile, wire.Report(wire.Status.SOS, int(time.time()), 2 + n))
            assert sealed.announcement is not None
            mesh.send_data(node, sealed.announcement, portnum=profile.app_port)
            mesh.send_data(node, sealed.packet, portnum=profile.app_port)
            sos_sent[wire.parse(sealed.packet).id.hex()] = time.monotonic()
            time.sleep(1.5)
        deadline = time.monotonic() + 30
        while not set(sos_sent) <= set(arrived) and time.monotonic() < deadline:
            time.sleep(0.1)
        stop.set()
        flood_thread.join(5)
    finally:
        daemon.stop()
        coordinator.stop()

    latencies = {rid: arrived[rid] - sos_sent[rid] for rid in sos_sent if rid in arrived}
    assert set(sos_sent) <= set(arrived), f"SOS lost in the flood: {set(sos_sent) - set(arrived)}"
    assert max(latencies.values()) < SOS_DEADLINE_S, latencies
    counts = daemon.intake.counts
    flood_total = sent["junk"] + sent["routine"]
    # The flood really ran at its rate while every SOS was sent (it stops once they are in).
    assert flood_total >= 0.7 * FLOOD_PER_S * (ran["end"] - ran["start"]), (sent, ran)
    assert ran["end"] >= max(sos_sent.values()), ran
    limited = sum(v for k, v in counts.items() if k.startswith("rate-limited"))
    refused = limited + sum(v for k, v in counts.items() if k.startswith("malformed"))
    # Nearly all of the flood was refused and counted; what got in is within the limits
    # (30 packets a minute from one radio).
    assert refused >= flood_total * 0.9, dict(counts)
    assert counts["stored"] <= len(sos_sent) * 2 + 40, dict(counts)
    seconds = ran["end"] - ran["start"]
    shown = sorted(round(v, 2) for v in latencies.values())
    print(f"flood {sent} over {seconds:.1f} s; SOS latencies {shown} s; intake {dict(counts)}")

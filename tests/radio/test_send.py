"""`signalfire send` end to end: the real CLI, the real meshtastic library, the emulated radio."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from signalfire import wire
from signalfire.keyfiles import load_network_key
from signalfire.profile import NetworkProfile, init_network, load_profile
from signalfire.radio.emulator import EmulatedDevice
from signalfire.radio.virtual_mesh import InMemoryMesh
from signalfire.sender import Identity

from .conftest import tcp_port

SIGNALFIRE = shutil.which("signalfire", path=os.path.dirname(sys.executable)) or "signalfire"


@pytest.fixture
def world(tmp_path: Path) -> Path:
    init_network(tmp_path / "net", "testnet")
    Identity.create(tmp_path / "civ.key")
    return tmp_path


def send(world: Path, device: EmulatedDevice, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            SIGNALFIRE, "send", "--radio", f"tcp:127.0.0.1:{tcp_port(device)}",
            "--identity", str(world / "civ.key"), "--network", str(world / "net"),
            "--connect-timeout", "15", "--json", *args,
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def on_air(mesh: InMemoryMesh, port: int = 287) -> list[bytes]:
    return [bytes(p.decoded.payload) for p in mesh.transmitted if p.decoded.portnum == port]


def keyring(world: Path) -> wire.Keyring:
    private = load_network_key(world / "net" / "network.key")
    return wire.Keyring(wire.x25519_public_bytes(private), private)


def test_direct_message_to_the_gateway_is_acknowledged_and_opens(
    world: Path, device: EmulatedDevice, mesh: InMemoryMesh
) -> None:
    gateway = next(iter(mesh.nodes.values()))
    res = send(
        world, device, "--status", "sos", "--people", "3", "--lat", "40.18", "--lon", "44.51",
        "--text", "Օգնեք", "--to", gateway.node_id,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["outcome"] == "acked"
    assert [a["what"] for a in out["attempts"]] == ["announcement", "report"]
    announcement, packet = on_air(mesh)
    ring = keyring(world)
    ring.add(announcement)
    opened = ring.open(packet)
    assert opened.report.status is wire.Status.SOS
    assert opened.report.text == "Օգնեք"
    assert opened.id.hex() == out["id"]
    # the urgent first report's announcement travelled at its priority
    parsed = wire.parse(announcement)
    assert isinstance(parsed, wire.Announcement)
    assert parsed.priority is wire.Priority.LIFE_SAFETY
    # the second report needs no announcement and has the next sequence number
    res = send(world, device, "--status", "safe", "--to", gateway.node_id)
    out = json.loads(res.stdout)
    assert [a["what"] for a in out["attempts"]] == ["report"]
    assert out["seq"] == 1
    assert ring.open(on_air(mesh)[-1]).seq == 1


def test_broadcast_is_relayed_and_says_so_in_plain_words(
    world: Path, device: EmulatedDevice, mesh: InMemoryMesh
) -> None:
    res = subprocess.run(
        [
            SIGNALFIRE, "send", "--radio", f"tcp:127.0.0.1:{tcp_port(device)}",
            "--identity", str(world / "civ.key"), "--network", str(world / "net"),
            "--status", "need-supplies", "--needs", "water,food", "--from-radio-gps",
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "nearby radio passed your report on" in res.stdout
    announcement, packet = on_air(mesh)
    ring = keyring(world)
    ring.add(announcement)
    loc = ring.open(packet).report.location
    assert loc is not None
    own = device.state.position
    assert abs(loc.lat - own.latitude_i * 1e-7) < 1e-4
    assert all(p.to == 0xFFFFFFFF for p in mesh.transmitted if p.decoded.portnum == 287)


def test_unreachable_destination_exits_4_and_keeps_the_sequence(
    world: Path, device: EmulatedDevice, mesh: InMemoryMesh
) -> None:
    res = send(world, device, "--status", "trapped", "--to", "!12345678", "--timeout", "3",
               "--tries", "2")  # fmt: skip
    assert res.returncode == 4, res.stderr
    out = json.loads(res.stdout)
    assert out["outcome"] in ("failed", "timeout")
    reports = [a for a in out["attempts"] if a["what"] == "report"]
    assert len(reports) == 2
    # both tries carried the very same bytes: one report id downstream
    payloads = on_air(mesh)
    report_copies = [p for p in payloads if len(p) != wire.ANNOUNCEMENT_SIZE]
    assert len(set(report_copies)) == 1
    assert Identity.load(world / "civ.key").next_seq(_profile(world)) == 1


def test_radio_that_does_not_answer_sends_nothing(world: Path) -> None:
    res = subprocess.run(
        [
            SIGNALFIRE, "send", "--radio", "tcp:127.0.0.1:1", "--identity", str(world / "civ.key"),
            "--network", str(world / "net"), "--status", "sos", "--connect-timeout", "2",
        ],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert res.returncode == 1
    assert "did not answer" in res.stderr and "Nothing was sent" in res.stderr
    assert res.stdout == ""
    assert Identity.load(world / "civ.key").next_seq(_profile(world)) == 0


def test_oversize_text_is_refused_before_the_radio_is_used(
    world: Path, device: EmulatedDevice, mesh: InMemoryMesh
) -> None:
    res = send(world, device, "--status", "sos", "--lat", "1", "--lon", "1", "--text", "Ж" * 80)
    assert res.returncode == 1
    assert "shorten the text" in res.stderr
    assert on_air(mesh) == []


def _profile(world: Path) -> NetworkProfile:
    return load_profile(world / "net")

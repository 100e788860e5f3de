"""The gateway daemon end to end: emulated radio -> intake -> store -> HTTPS -> real coordinator."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from signalfire import wire
from signalfire.gateway.config import GatewayConfigError, load_config
from signalfire.gateway.daemon import GatewayDaemon
from signalfire.profile import init_network
from signalfire.radio.emulator import EmulatedDevice
from signalfire.radio.virtual_mesh import InMemoryMesh
from signalfire.sender import Identity

from .coordkit import CoordinatorServer

SIGNALFIRE = shutil.which("signalfire", path=os.path.dirname(sys.executable)) or "signalfire"
T = 1_795_860_000


@pytest.fixture
def mesh() -> InMemoryMesh:
    return InMemoryMesh.generate(3, seed=21)


@pytest.fixture
def device(mesh: InMemoryMesh) -> Iterator[EmulatedDevice]:
    radio = EmulatedDevice(mesh, seed=21, enforce_rate_limits=False)
    radio.start()
    yield radio
    radio.stop()


def write_config(tmp: Path, radio_port: int, coordinator_url: str, **extra: str) -> Path:
    path = tmp / "gateway.toml"
    lines = [
        "[gateway]",
        'name = "test-gw"',
        'identity = "gw.key"',
        'network = "net/network.json"',
        'data_dir = "data"',
        "[radio]",
        f'spec = "tcp:127.0.0.1:{radio_port}"',
        "[intake]",
        "receipt_interval_s = 0",
        "[[uplink]]",
        'type = "https"',
        'name = "coordinator"',
        f'url = "{coordinator_url}"',
        "timeout_s = 5",
        *[f"{k} = {v}" for k, v in extra.items()],
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def wait_until(predicate, timeout: float = 30.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_reports_and_stock_texts_reach_the_coordinator(
    tmp_path: Path, device: EmulatedDevice, mesh: InMemoryMesh
) -> None:
    profile, key_path = init_network(tmp_path / "net", "town")
    gateway = Identity.create(tmp_path / "gw.key")
    coordinator = CoordinatorServer(tmp_path, profile, key_path, {"gw": gateway.public})
    coordinator.start()
    port = device.tcp_address[1]  # type: ignore[index]
    daemon = GatewayDaemon(load_config(write_config(tmp_path, port, coordinator.url)))
    daemon.start()
    expected: set[str] = set()
    try:
        assert daemon.radio.wait_connected(10)
        nodes = list(mesh.nodes.values())
        for n, node in enumerate(nodes):
            civ = Identity.create(tmp_path / f"civ{n}.key")
            for status in (wire.Status.SOS, wire.Status.SAFE):
                sealed = civ.seal(profile, wire.Report(status, T, 2))
                if sealed.announcement:
                    mesh.send_data(node, sealed.announcement, portnum=profile.app_port)
                mesh.send_data(node, sealed.packet, portnum=profile.app_port)
                expected.add(wire.parse(sealed.packet).id.hex())
        mesh.send_position(nodes[0], latitude=40.18, longitude=44.51)
        time.sleep(0.2)
        mesh.send_text(nodes[0], "TRAPPED 3 basement", to=device.node_num)
        assert wait_until(lambda: len(coordinator.report_ids()) == len(expected) + 1)
        assert expected <= set(coordinator.report_ids())
        attested = coordinator.query(
            "SELECT status, people, text FROM reports WHERE kind = 'attested'"
        )
        assert attested == [("trapped", 3, "basement")]
        assert wait_until(
            lambda: any(p.decoded.portnum == 1 and p.to == nodes[0].num for p in nodes[0].inbox)
        )
    finally:
        daemon.stop()
    res = subprocess.run(
        [SIGNALFIRE, "gateway", "status", "--config", str(tmp_path / "gateway.toml"), "--json"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    status = json.loads(res.stdout)
    up = status["stats"]["uplinks"]["coordinator"]
    assert up["pending_total"] == 0
    assert up["done"] >= len(expected) + 1
    assert status["status"]["radio"]["state"] in ("closed", "connected")
    human = subprocess.run(
        [SIGNALFIRE, "gateway", "status", "--config", str(tmp_path / "gateway.toml")],
        capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert human.returncode == 0 and "coordinator" in human.stdout
    coordinator.stop()


def test_forged_and_junk_packets_are_counted_not_stored(
    tmp_path: Path, device: EmulatedDevice, mesh: InMemoryMesh
) -> None:
    profile, _ = init_network(tmp_path / "net", "town")
    Identity.create(tmp_path / "gw.key")
    daemon = GatewayDaemon(
        load_config(write_config(tmp_path, device.tcp_address[1], "http://127.0.0.1:9"))
    )  # type: ignore[index]
    daemon.start()
    try:
        assert daemon.radio.wait_connected(10)
        node = next(iter(mesh.nodes.values()))
        civ = Identity.create(tmp_path / "civ.key")
        sealed = civ.seal(profile, wire.Report(wire.Status.SOS, T, 1))
        assert sealed.announcement is not None
        mesh.send_data(node, sealed.announcement, portnum=profile.app_port)
        forged = bytearray(sealed.packet)
        forged[20] ^= 1
        mesh.send_data(node, bytes(forged), portnum=profile.app_port)
        mesh.send_data(node, b"\x07garbage", portnum=profile.app_port)
        mesh.send_data(node, sealed.packet, portnum=profile.app_port)
        assert wait_until(lambda: daemon.intake.counts["stored"] >= 2)
        assert wait_until(lambda: daemon.intake.counts["forged"] == 1)
        assert daemon.intake.counts["malformed:unknown-version"] == 1
    finally:
        daemon.stop()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace('spec = "tcp:127.0.0.1:1"', 'spec = "usb:/dev/x"'), "[radio] spec"),
        (lambda t: t.replace('identity = "gw.key"', 'identity = "missing.key"'), "keys new"),
        (
            lambda t: t.replace('type = "https"', 'type = "pigeon"'),
            "use one of https, mqtt, bundle",
        ),
        (lambda t: t.replace('url = "http://127.0.0.1:9"', 'url = "ftp://x"'), "https://HOST"),
        (lambda t: t.replace("[gateway]", "[gateway\n"), "not valid TOML"),
        (lambda t: t + "[limits]\nper_node_per_minute = 0\n", "at least 1"),
        (lambda t: t.replace("[radio]", "min_free_md = 5\n[radio]"), "did you mean min_free_mb"),
        (lambda t: t.replace("timeout_s = 5", "timeout = 5"), "[[uplink]] #1 timeout is not"),
        (lambda t: t + "[uplinks]\nx = 1\n", "[uplinks] is not a section"),
        (lambda t: t.replace("[radio]", "keep_delivered_hours = -1\n[radio]"), "0 to 8784"),
    ],
)
def test_bad_config_names_the_setting_and_the_fix(tmp_path: Path, edit, message: str) -> None:  # type: ignore[no-untyped-def]
    init_network(tmp_path / "net", "town")
    Identity.create(tmp_path / "gw.key")
    path = write_config(tmp_path, 1, "http://127.0.0.1:9")
    path.write_text(edit(path.read_text()))
    with pytest.raises(GatewayConfigError) as info:
        load_config(path)
    assert message in info.value.message
    assert str(path) in info.value.message


def test_example_config_is_valid(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "gateway.example.toml"
    init_network(tmp_path, "town")
    Identity.create(tmp_path / "gateway.key")
    target = tmp_path / "gateway.toml"
    target.write_text(example.read_text())
    config = load_config(target)
    assert config.name == "hill-school"
    assert [u.type for u in config.uplinks] == ["https"]
    assert config.store_path == tmp_path / "data" / "gateway.sqlite"


def test_uplink_files_are_relative_to_the_config_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """systemd runs the daemon in /var/lib/signalfire with its config in /etc/signalfire."""
    etc, var = tmp_path / "etc", tmp_path / "var"
    etc.mkdir()
    var.mkdir()
    init_network(etc / "net", "town")
    Identity.create(etc / "gw.key")
    (etc / "ca.pem").write_text("not checked here\n")
    (etc / "mqtt-password").write_text("secret\n")
    path = write_config(etc, 1, "https://coordinator.example.org", ca_file='"ca.pem"')
    path.write_text(
        path.read_text()
        + '[[uplink]]\ntype = "mqtt"\nname = "broker"\nhost = "127.0.0.1"\n'
        + 'username = "gw"\npassword_file = "mqtt-password"\nca_file = "ca.pem"\n'
        + '[[uplink]]\ntype = "bundle"\nname = "usb"\ndir = "usb/signalfire"\n'
    )
    monkeypatch.chdir(var)
    config = load_config(path)
    by_name = {u.name: u.settings for u in config.uplinks}
    assert by_name["coordinator"]["ca_file"] == str(etc / "ca.pem")
    assert by_name["broker"]["password_file"] == str(etc / "mqtt-password")
    assert by_name["broker"]["ca_file"] == str(etc / "ca.pem")
    assert by_name["usb"]["dir"] == str(etc / "usb" / "signalfire")

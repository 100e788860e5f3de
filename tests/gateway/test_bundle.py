"""USB bundles: export what no uplink delivered, import anywhere, idempotently."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from signalfire import wire
from signalfire.gateway.intake import stored_packet
from signalfire.gateway.records import Verified
from signalfire.gateway.store import GatewayStore
from signalfire.profile import init_network
from signalfire.sender import Identity

from .coordkit import CoordinatorServer
from .test_daemon import write_config

SIGNALFIRE = shutil.which("signalfire", path=os.path.dirname(sys.executable)) or "signalfire"
T = 1_795_860_000


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SIGNALFIRE, *args], capture_output=True, text=True, timeout=120)


def test_export_then_import_twice_over_http_and_locally(tmp_path: Path) -> None:
    profile, key_path = init_network(tmp_path / "net", "town")
    gateway = Identity.create(tmp_path / "gw.key")
    config = write_config(tmp_path, 1, "http://127.0.0.1:9")
    (tmp_path / "data").mkdir()
    store = GatewayStore(tmp_path / "data" / "gateway.sqlite")
    expected: set[str] = set()
    civ = Identity.create(tmp_path / "civ.key")
    for n in range(25):
        sealed = civ.seal(
            profile, wire.Report(wire.Status.SOS if n % 3 else wire.Status.SAFE, T + n, 1)
        )
        for raw in filter(None, (sealed.announcement, sealed.packet)):
            parsed = wire.parse(raw)
            store.add(
                stored_packet(raw, parsed, None, time.time(), Verified.VERIFIED), ["coordinator"]
            )
        expected.add(wire.parse(sealed.packet).id.hex())
    store.close()
    stick = tmp_path / "usb"
    stick.mkdir()
    res = run("bundle", "export", "--config", str(config), "--to", str(stick), "--per-file", "10")
    assert res.returncode == 0, res.stderr
    files = sorted(stick.glob("*.sfbundle"))
    assert len(files) == 3  # 26 packets (25 reports + the announcement), 10 a file
    assert "26 packet(s) in 3 bundle file(s)" in res.stdout

    coordinator = CoordinatorServer(tmp_path, profile, key_path, {"gw": gateway.public})
    coordinator.start()
    try:
        first = run("bundle", "import", *map(str, files), "--to", coordinator.url)
        assert first.returncode == 0, first.stderr
        assert "stored 26" in first.stdout  # 25 reports and the announcement
        assert set(coordinator.report_ids()) == expected
        again = run("bundle", "import", *map(str, files), "--to", coordinator.url)
        assert again.returncode == 0
        # a replayed batch gets its first answer back and changes nothing
        assert "stored 26" in again.stdout
        assert len(coordinator.report_ids()) == len(expected)
    finally:
        coordinator.stop()

    # At the coordinator itself, straight into its database; a damaged file is named,
    # the good ones still go in.
    coord_toml = tmp_path / "coordinator.toml"
    coord_toml.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "local.db"}"\n'
        f'[network]\nprofile = "{tmp_path / "net" / "network.json"}"\n'
        f'key = "{key_path}"\n'
        f'[[gateways]]\nname = "gw"\nkey = "{gateway.public.hex()}"\n'
    )
    damaged = tmp_path / "damaged.sfbundle"
    data = bytearray(files[0].read_bytes())
    data[len(data) // 2] ^= 0x20
    damaged.write_bytes(bytes(data))
    local = run("bundle", "import", str(damaged), *map(str, files[1:]),
                "--coordinator-config", str(coord_toml))  # fmt: skip
    assert local.returncode == 1
    assert "damaged.sfbundle" in local.stderr
    # the announcement was in the damaged first file: the 16 reports of the good files
    # are kept, pending, until it arrives; importing it (repaired) releases them
    assert "stored 0, duplicates 0, pending 16" in local.stdout
    fixed = run("bundle", "import", str(files[0]), "--coordinator-config", str(coord_toml))
    assert fixed.returncode == 0 and "stored 10" in fixed.stdout


def test_export_refuses_a_missing_stick(tmp_path: Path) -> None:
    init_network(tmp_path / "net", "town")
    Identity.create(tmp_path / "gw.key")
    config = write_config(tmp_path, 1, "http://127.0.0.1:9")
    (tmp_path / "data").mkdir()
    GatewayStore(tmp_path / "data" / "gateway.sqlite").close()
    res = run("bundle", "export", "--config", str(config), "--to", str(tmp_path / "nope"))
    assert res.returncode == 1
    assert "mount the USB stick" in res.stderr

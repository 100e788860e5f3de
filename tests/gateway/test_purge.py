"""Purging what every uplink delivered: the daemon's periodic pass and `gateway purge`."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from signalfire.gateway.cli import gateway
from signalfire.gateway.config import load_config
from signalfire.gateway.daemon import GatewayDaemon
from signalfire.gateway.store import GatewayStore
from signalfire.profile import init_network
from signalfire.sender import Identity

from .storekit import packet


def _site(tmp_path: Path, keep: str = "") -> Path:
    init_network(tmp_path / "net", "town")
    Identity.create(tmp_path / "gw.key")
    config = tmp_path / "gateway.toml"
    lines = [
        "[gateway]", 'name = "gw"', 'identity = "gw.key"', 'network = "net/network.json"',
        'data_dir = "data"', keep,
        "[radio]", 'spec = "tcp:127.0.0.1:1"',
        "[[uplink]]", 'type = "https"', 'name = "coordinator"', 'url = "http://127.0.0.1:9"',
        "[[uplink]]", 'type = "bundle"', 'name = "usb"', 'dir = "usb"',
    ]  # fmt: skip
    config.write_text("\n".join(lines) + "\n")
    return config


def _fill(store: GatewayStore, now: float) -> tuple[list[bytes], list[bytes]]:
    """Six packets heard an hour ago: 3 delivered on both uplinks, 3 not on the USB stick."""
    packets = [packet(n, received_at=now - 3600) for n in range(6)]
    store.add_many(packets, ["coordinator", "usb"])
    delivered, half = [p.copy_id for p in packets[:3]], [p.copy_id for p in packets[3:]]
    store.mark_done("coordinator", delivered + half, now - 3000)
    store.mark_done("usb", delivered, now - 3000)
    return delivered, half


def test_the_daemon_purges_what_every_uplink_delivered_after_keep_hours(tmp_path: Path) -> None:
    daemon = GatewayDaemon(load_config(_site(tmp_path, "keep_delivered_hours = 2")))
    try:
        now = time.time()
        delivered, half = _fill(daemon.store, now)
        assert daemon.purge_delivered(now) == 0  # an hour old: kept for two
        assert daemon.purge_delivered(now + 3 * 3600) == 3
        assert all(daemon.store.get(i) is None for i in delivered)
        assert all(daemon.store.get(i) is not None for i in half)  # the USB stick waits
    finally:
        daemon.store.close()


def test_gateway_purge_by_hand_keeps_what_is_not_delivered(tmp_path: Path) -> None:
    config = _site(tmp_path)
    cfg = load_config(config)
    assert cfg.keep_delivered_s == 72 * 3600  # the default
    cfg.data_dir.mkdir()
    now = time.time()
    with GatewayStore(cfg.store_path) as store:
        delivered, half = _fill(store, now)
    runner = CliRunner()
    kept = runner.invoke(gateway, ["purge", "--config", str(config)])
    assert kept.exit_code == 0, kept.output
    assert kept.output.startswith("deleted 0 packets delivered on every uplink")
    gone = runner.invoke(gateway, ["purge", "--config", str(config), "--keep-hours", "0"])
    assert gone.exit_code == 0, gone.output
    assert "deleted 3 packets" in gone.output and "more than 0 h ago; 3 stay" in gone.output
    with GatewayStore(cfg.store_path) as store:
        assert all(store.get(i) is None for i in delivered)
        assert all(store.get(i) is not None for i in half)
    missing = runner.invoke(gateway, ["purge", "--config", str(_site(tmp_path / "new"))])
    assert missing.exit_code == 1 and "no store at" in missing.output


def test_a_gateway_without_uplinks_says_so_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = _site(tmp_path)
    text = config.read_text()
    config.write_text(text[: text.index("[[uplink]]")])
    daemon = GatewayDaemon(load_config(config))
    with caplog.at_level("WARNING", logger="signalfire"):
        daemon.start()
        daemon.stop()
    assert any("no [[uplink]]" in r.getMessage() for r in caplog.records)
    assert daemon.purge_delivered(time.time() + 10**6) == 0  # nothing is ever delivered

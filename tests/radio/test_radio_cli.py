"""The unmodified `meshtastic` CLI against the emulator, and `signalfire radio emulate` itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from meshtastic.protobuf import portnums_pb2

from signalfire.radio.cli import parse_host_port, radio
from signalfire.radio.emulator import EmulatedDevice
from signalfire.radio.virtual_mesh import InMemoryMesh

from .conftest import connect_tcp, connect_tcp_port, tcp_port

# `--info` asks PyPI whether a newer meshtastic exists (5 s timeout). Point it at a closed
# local port so the test neither waits nor touches the network.
OFFLINE = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}


def meshtastic_cli(device: EmulatedDevice, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "meshtastic", "--host", f"127.0.0.1:{tcp_port(device)}"]
    return subprocess.run(
        [*command, "--timeout", "20", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **OFFLINE},
        check=False,
    )


def texts_sent(device: EmulatedDevice) -> list[tuple[int, bytes]]:
    return [
        (p.to, p.decoded.payload)
        for p in device.client_packets
        if p.decoded.portnum == portnums_pb2.PortNum.TEXT_MESSAGE_APP
    ]


def test_cli_info_shows_owner_nodes_and_config(device: EmulatedDevice, mesh: InMemoryMesh) -> None:
    result = meshtastic_cli(device, "--info")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Owner: Signalfire Gateway (SFGW)" in out
    assert f'"myNodeNum": {device.node_num}' in out
    for node in mesh.nodes.values():
        assert node.node_id in out
        assert node.long_name in out
    assert '"region": "EU_868"' in out
    assert '"hopLimit": 3' in out
    assert "Index 0: PRIMARY" in out
    assert '"name": "signalfire"' in out


def test_cli_nodes_lists_every_node(device: EmulatedDevice, mesh: InMemoryMesh) -> None:
    result = meshtastic_cli(device, "--nodes")
    assert result.returncode == 0, result.stderr
    assert "Signalfire Gateway" in result.stdout
    for node in mesh.nodes.values():
        assert node.long_name in result.stdout
        assert node.node_id in result.stdout


def test_cli_sendtext_is_recorded_and_put_on_the_air(
    device: EmulatedDevice, mesh: InMemoryMesh
) -> None:
    result = meshtastic_cli(device, "--sendtext", "hello")
    assert result.returncode == 0, result.stderr
    assert (0xFFFFFFFF, b"hello") in texts_sent(device)
    assert mesh.wait_for_transmit(lambda p: p.decoded.payload == b"hello") is not None


def test_cli_sendtext_to_a_node_waits_for_its_ack(
    device: EmulatedDevice, mesh: InMemoryMesh
) -> None:
    node = next(iter(mesh.nodes.values()))
    result = meshtastic_cli(device, "--sendtext", "status?", "--dest", node.node_id, "--ack")
    assert result.returncode == 0, result.stderr
    assert "Received an ACK." in result.stdout
    assert (node.num, b"status?") in texts_sent(device)


def test_cli_set_changes_the_radio(device: EmulatedDevice) -> None:
    result = meshtastic_cli(
        device, "--set", "lora.hop_limit", "5", "--set", "display.screen_on_secs", "60"
    )
    assert result.returncode == 0, result.stderr
    # The CLI has exited, but the radio may still be reading what it wrote last.
    committed = device.wait_for(
        lambda: any(
            m.WhichOneof("payload_variant") == "commit_edit_settings" for m in device.admin_messages
        ),
        timeout=15,
    )
    seen = [m.WhichOneof("payload_variant") for m in device.admin_messages]
    assert committed, f"no commit; admin messages {seen}\n{result.stdout}\n{result.stderr}"
    assert device.state.config.lora.hop_limit == 5
    assert device.state.config.display.screen_on_secs == 60
    kinds = [m.WhichOneof("payload_variant") for m in device.admin_messages]
    # Two sections: the CLI wraps them in an edit transaction (asking for a session key
    # before begin and commit, interleaved as its replies arrive).
    ordered = [k for k in kinds if k != "get_config_request"]
    assert ordered == ["begin_edit_settings", "set_config", "set_config", "commit_edit_settings"]
    assert "get_config_request" in kinds
    interface = connect_tcp(device)
    try:
        assert interface.localNode.localConfig.lora.hop_limit == 5
    finally:
        interface.close()


def test_cli_configure_applies_a_profile(device: EmulatedDevice, tmp_path: Path) -> None:
    profile = tmp_path / "gateway.yaml"
    profile.write_text(
        "owner: North Gate\nowner_short: NGT\n"
        "config:\n  lora:\n    region: EU_868\n    hopLimit: 4\n"
        "module_config:\n  telemetry:\n    deviceUpdateInterval: 900\n"
    )
    result = meshtastic_cli(device, "--configure", str(profile))
    assert result.returncode == 0, result.stderr
    assert device.wait_for(
        lambda: (
            bool(device.admin_messages)
            and device.admin_messages[-1].HasField("commit_edit_settings")
        )
    )
    assert device.state.owner.long_name == "North Gate"
    assert device.state.owner.short_name == "NGT"
    assert device.state.config.lora.hop_limit == 4
    assert device.state.module_config.telemetry.device_update_interval == 900


def read_first_lines(process: subprocess.Popen[str], count: int) -> list[str]:
    assert process.stdout is not None
    return [process.stdout.readline().strip() for _ in range(count)]


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_radio_emulate_command_runs_until_signalled(stop_signal: int) -> None:
    command = "from signalfire.radio.cli import radio; radio()"
    options = ["--tcp", "127.0.0.1:0", "--pty", "--nodes", "2", "--seed", "5"]
    process = subprocess.Popen(
        [sys.executable, "-c", command, "emulate", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        tcp_line, pty_line = read_first_lines(process, 2)
        assert tcp_line.startswith("tcp 127.0.0.1:")
        assert pty_line.startswith("pty /dev/")
        port = int(tcp_line.rsplit(":", 1)[1])
        mesh = InMemoryMesh.generate(2, seed=5)  # same seed, same virtual nodes
        interface: Any = connect_tcp_port(port)
        try:
            assert set(interface.nodes) >= {n.node_id for n in mesh.nodes.values()}
        finally:
            interface.close()
        process.send_signal(stop_signal)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_radio_emulate_needs_a_transport() -> None:
    result = CliRunner().invoke(radio, ["emulate"])
    assert result.exit_code == 2
    assert "--tcp" in result.output


def test_parse_host_port() -> None:
    assert parse_host_port("127.0.0.1:4403") == ("127.0.0.1", 4403)
    assert parse_host_port("[::1]:0") == ("::1", 0)
    assert parse_host_port(":4403") == ("127.0.0.1", 4403)

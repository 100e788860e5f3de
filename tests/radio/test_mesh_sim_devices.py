"""The mesh simulator in real time behind emulated radios and the real meshtastic library."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from signalfire.keyfiles import load_network_key
from signalfire.radio.cli import radio
from signalfire.radio.emulator import EmulatedDevice
from signalfire.radio.mesh_protocol import BROADCAST_NUM
from signalfire.radio.mesh_sim import MeshSimulator, Scenario, ScenarioError
from signalfire.wire import Keyring, Status

from .conftest import Inbox, connect_tcp, connect_tcp_port

TOWN = Path(__file__).resolve().parents[2] / "scenarios" / "town.toml"
SPEED = 20.0  # a 1.3 s report takes 65 ms of wall time
APP_PORT = 287


def two_hop_town(keys_dir: Path) -> Scenario:
    """civ and texter are two relays away from gw (2 km links; 4 km is out of range).

    They do not relay for each other (CLIENT_MUTE), so every copy that reaches gw came
    over r1 and r2 and the hop fields are exact.
    """
    return Scenario.from_dict(
        {
            "scenario": {"seed": 5, "duration": 600},
            "mesh": {"shadowing_db": 0.0, "fading_db": 0.0, "loss": 0.0},
            "signalfire": {"keys_dir": str(keys_dir)},
            "gateways": [{"name": "gw", "east_m": 6000}],
            "relays": [
                {"name": "r1", "east_m": 2000, "height_m": 2},
                {"name": "r2", "east_m": 4000, "height_m": 2},
            ],
            "civilians": [
                {"name": "civ", "east_m": 0, "role": "CLIENT_MUTE"},
                {"name": "texter", "east_m": 0, "north_m": 300, "role": "CLIENT_MUTE"},
            ],
            "events": [
                {
                    "at": 2,
                    "from": "civ",
                    "type": "report",
                    "status": "trapped",
                    "people": 3,
                    "text": "under the school roof",
                },
                {"at": 30, "from": "texter", "type": "text", "text": "SOS 2", "to": "gw"},
            ],
        }
    )


def on_app_port(topic: str, packet: dict[str, Any]) -> bool:
    # The library names ports it knows; 287 it does not, so it stays a number.
    return topic == "receive" and packet["decoded"]["portnum"] in (APP_PORT, str(APP_PORT))


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[MeshSimulator]:
    simulator = MeshSimulator(two_hop_town(tmp_path))
    yield simulator
    simulator.stop()


@pytest.fixture
def gateway(sim: MeshSimulator) -> Iterator[EmulatedDevice]:
    radio = sim.device("gw", retry_interval=0.5)
    radio.start()
    yield radio
    radio.stop()


def test_a_device_takes_the_place_of_its_scenario_node(
    sim: MeshSimulator, gateway: EmulatedDevice
) -> None:
    assert gateway.node_num == sim.num("gw")
    assert sim.summary()["per_node"]["gw"]["attached"]
    with pytest.raises(RuntimeError, match="real time"):
        sim.run(10)
    stranger = EmulatedDevice(sim, seed=99)
    with pytest.raises(ScenarioError, match="not a node"):
        stranger.start()
    assert not stranger.running


def test_library_receives_a_sealed_report_and_a_text_from_two_hops_away(
    sim: MeshSimulator, gateway: EmulatedDevice, inbox: Inbox
) -> None:
    interface = connect_tcp(gateway)
    try:
        assert sim.node("civ").node.node_id in interface.nodes  # gateways know the town
        sim.start(speed=SPEED)
        report = sim.outgoing[1].payload
        got = inbox.wait_for(
            lambda t, p, i: on_app_port(t, p) and p["decoded"]["payload"] == report, timeout=20
        )
        assert got is not None, sim.summary()
        text = inbox.wait_for(lambda t, p, i: t == "text", timeout=20)
        assert text is not None, sim.summary()
    finally:
        interface.close()

    # The report and the key announcement ahead of it, byte for byte, from the civilian.
    announcement, sealed = sim.outgoing[:2]
    assert (announcement.label, sealed.label) == ("announcement", "report")
    reports = [p for t, p, _ in inbox.items if on_app_port(t, p)]
    assert [p["decoded"]["payload"] for p in reports] == [announcement.payload, sealed.payload]
    for packet in reports:
        assert packet["from"] == sim.num("civ")
        assert packet["to"] == BROADCAST_NUM
        assert packet["hopStart"] == 3
        assert packet["hopLimit"] == 1  # relayed by r1 and r2
        assert packet["rxSnr"] <= 15

    assert sim.keys is not None and sim.keys.key_path is not None
    keyring = Keyring(sim.keys.profile.public_key, load_network_key(sim.keys.key_path))
    keyring.add(reports[0]["decoded"]["payload"])
    opened = keyring.open(reports[1]["decoded"]["payload"])
    assert opened.report.status is Status.TRAPPED
    assert opened.report.people == 3
    assert opened.report.text == "under the school roof"

    # The stock text DM: the right sender, two hops, PKI as between radios that know keys.
    _, packet, _ = text
    assert packet["from"] == sim.num("texter")
    assert packet["fromId"] == sim.node("texter").node.node_id
    assert packet["to"] == gateway.node_num
    assert packet["decoded"]["text"] == "SOS 2"
    assert (packet["hopStart"], packet["hopLimit"]) == (3, 1)
    assert packet["pkiEncrypted"] is True
    # The emulated gateway acked the DM itself; the ack crossed both relays back.
    assert sim.wait_for(lambda: sim.nodes[sim.num("texter")].stats.acked == 1, timeout=10)
    summary = sim.summary()
    assert summary["delivery"]["ratio"] == 1.0
    assert summary["per_node"]["gw"]["tx"] >= 1  # the ack went out over the simulated air


def test_radio_emulate_runs_a_scenario_file(tmp_path: Path, inbox: Inbox) -> None:
    command = "from signalfire.radio.cli import radio; radio()"
    options = ["--tcp", "127.0.0.1:0", "--scenario", str(TOWN), "--speed", "50"]
    process = subprocess.Popen(
        [sys.executable, "-c", command, "emulate", *options, "--keys-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline().strip()
        assert first.startswith("tcp 127.0.0.1:"), process.stderr.read() if process.stderr else ""
        this_radio = process.stdout.readline().split()
        assert this_radio[2] == "gateway-centre"  # the first gateway of the file
        interface: Any = connect_tcp_port(int(first.rsplit(":", 1)[1]))
        try:
            heard = inbox.wait_for(lambda t, p, i: t == "receive" and p["from"] != 0, timeout=20)
            assert heard is not None
            assert heard[1]["to"] in (BROADCAST_NUM, interface.myInfo.my_node_num)
        finally:
            interface.close()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert (tmp_path / "network" / "network.json").exists()  # made for the town's reports


def test_radio_emulate_explains_a_bad_scenario(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[mesh]\npreset = "LONG_WRONG"\n[[gateways]]\nname = "gw"\n')
    runner = CliRunner()
    result = runner.invoke(radio, ["emulate", "--tcp", "127.0.0.1:0", "--scenario", str(bad)])
    assert result.exit_code == 1
    assert "unknown modem preset" in result.output
    result = runner.invoke(
        radio, ["emulate", "--tcp", "127.0.0.1:0", "--scenario", str(TOWN), "--chatter", "5"]
    )
    assert result.exit_code == 2
    assert "--chatter" in result.output
    result = runner.invoke(radio, ["emulate", "--tcp", "127.0.0.1:0", "--scenario", str(TOWN)])
    assert result.exit_code == 1
    assert "--keys-dir" in result.output  # the town has signalfire reports to seal

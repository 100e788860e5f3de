"""signalfire's Radio adapter over the real meshtastic library, against the emulator.

Each known trap of the library has a test here (see meshtastic_radio.py).
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import meshtastic.tcp_interface
import pytest
from meshtastic.protobuf import portnums_pb2
from pubsub import pub

from signalfire.radio.api import RadioError, RadioState, Received, SendOutcome
from signalfire.radio.device_state import default_state
from signalfire.radio.emulator import EmulatedDevice
from signalfire.radio.meshtastic_radio import MeshtasticRadio, RadioSpec, parse_spec
from signalfire.radio.virtual_mesh import InMemoryMesh, VirtualNode

from .conftest import LIBRARY_TIMEOUT, tcp_port

APP_PORT = 287


class Collector:
    def __init__(self) -> None:
        self.items: list[Received] = []
        self.states: list[tuple[RadioState, str]] = []
        self._cond = threading.Condition()

    def __call__(self, item: Received) -> None:
        with self._cond:
            self.items.append(item)
            self._cond.notify_all()

    def on_state(self, state: RadioState, reason: str) -> None:
        with self._cond:
            self.states.append((state, reason))
            self._cond.notify_all()

    def wait(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        with self._cond:
            return self._cond.wait_for(predicate, timeout)


def start_radio(spec: str, **kwargs: Any) -> tuple[MeshtasticRadio, Collector]:
    radio = MeshtasticRadio(spec, connect_timeout=LIBRARY_TIMEOUT, **kwargs)
    got = Collector()
    radio.add_listener(got)
    radio.add_state_listener(got.on_state)
    radio.start()
    assert radio.wait_connected(10), radio.state
    return radio, got


@pytest.fixture
def tcp_radio(device: EmulatedDevice) -> Iterator[tuple[MeshtasticRadio, Collector]]:
    radio, got = start_radio(f"tcp:127.0.0.1:{tcp_port(device)}")
    yield radio, got
    radio.close()


def test_parse_spec() -> None:
    assert parse_spec("serial:/dev/ttyUSB0") == RadioSpec("serial", "/dev/ttyUSB0")
    assert parse_spec("tcp:meshtastic.local") == RadioSpec("tcp", "meshtastic.local", 4403)
    assert parse_spec("tcp:10.0.0.5:4404") == RadioSpec("tcp", "10.0.0.5", 4404)
    assert parse_spec("ble:T-Echo_ab12") == RadioSpec("ble", "T-Echo_ab12")
    for bad in ("usb:/dev/x", "serial:", "tcp:host:99999", "/dev/ttyUSB0"):
        with pytest.raises(RadioError):
            parse_spec(bad)


def test_receives_text_position_and_reports_keyed_on_node_number(
    device: EmulatedDevice, mesh: InMemoryMesh, tcp_radio: tuple[MeshtasticRadio, Collector]
) -> None:
    radio, got = tcp_radio
    assert radio.my_node == device.node_num
    node = next(iter(mesh.nodes.values()))
    mesh.send_text(node, "SOS 3", to=device.node_num)
    mesh.send_position(node, latitude=40.18, longitude=44.51)
    mesh.send_data(node, b"\x01" + bytes(106), portnum=APP_PORT)
    assert got.wait(lambda: len(got.items) >= 3)
    by_port = {r.portnum: r for r in got.items}
    text = by_port[portnums_pb2.PortNum.TEXT_MESSAGE_APP]
    assert (text.text, text.from_node, text.to_node) == ("SOS 3", node.num, device.node_num)
    assert text.snr is not None and text.hops is not None
    pos = by_port[portnums_pb2.PortNum.POSITION_APP].position
    assert pos is not None and abs(pos.lat - 40.18) < 1e-6 and abs(pos.lon - 44.51) < 1e-6
    assert by_port[APP_PORT].payload == b"\x01" + bytes(106)


def test_unknown_node_has_no_fromid_but_we_key_on_its_number(
    device: EmulatedDevice, mesh: InMemoryMesh, tcp_radio: tuple[MeshtasticRadio, Collector]
) -> None:
    _radio, got = tcp_radio
    stranger = VirtualNode(0x0BADF00D, "Stranger", "STR", 40.0, 44.0)
    mesh.nodes[stranger.num] = stranger  # joined after the radio sent its node list
    library_view: list[Any] = []

    def spy(packet: dict[str, Any], interface: Any) -> None:
        library_view.append(packet)

    pub.subscribe(spy, "meshtastic.receive.text")
    try:
        mesh.send_text(stranger, "help", to=device.node_num)
        assert got.wait(lambda: any(r.from_node == stranger.num for r in got.items))
    finally:
        pub.unsubscribe(spy, "meshtastic.receive.text")
    assert library_view and library_view[0].get("fromId") is None  # the trap is real


def test_lambda_listeners_vanish_ours_do_not(
    device: EmulatedDevice, mesh: InMemoryMesh, tcp_radio: tuple[MeshtasticRadio, Collector]
) -> None:
    _radio, got = tcp_radio
    lambda_calls: list[Any] = []
    pub.subscribe(lambda packet, interface: lambda_calls.append(packet), "meshtastic.receive")
    gc.collect()
    node = next(iter(mesh.nodes.values()))
    mesh.send_text(node, "after gc", to=device.node_num)
    assert got.wait(lambda: any(r.text == "after gc" for r in got.items))
    assert lambda_calls == []  # pypubsub only held a weak reference to the lambda


def test_a_failing_listener_does_not_stop_delivery(
    device: EmulatedDevice, mesh: InMemoryMesh, tcp_radio: tuple[MeshtasticRadio, Collector]
) -> None:
    radio, got = tcp_radio

    def broken(item: Received) -> None:
        raise RuntimeError("listener bug")

    radio._listeners.insert(0, broken)  # runs before the collector
    node = next(iter(mesh.nodes.values()))
    for n in range(3):
        mesh.send_text(node, f"msg {n}", to=device.node_num)
    assert got.wait(lambda: sum(1 for r in got.items if r.text and r.text.startswith("msg")) == 3)
    assert radio.listener_errors >= 3


def test_send_outcomes(
    device: EmulatedDevice, mesh: InMemoryMesh, tcp_radio: tuple[MeshtasticRadio, Collector]
) -> None:
    radio, _ = tcp_radio
    node = next(iter(mesh.nodes.values()))
    dm = radio.send(b"\x01" * 107, portnum=APP_PORT, dest=node.num, want_ack=True)
    assert dm.wait(5) is SendOutcome.ACKED
    assert dm.answered_by == node.num
    bc = radio.send(b"\x01" * 107, portnum=APP_PORT, want_ack=True)
    assert bc.wait(5) is SendOutcome.RELAYED
    lost = radio.send(b"x", portnum=APP_PORT, dest=0x12345678, want_ack=True)
    assert lost.wait(5) is SendOutcome.FAILED
    assert lost.error_reason == "MAX_RETRANSMIT"
    assert [p.decoded.payload for p in device.client_packets[:1]] == [b"\x01" * 107]


def test_real_payload_limits_and_no_sys_exit(tcp_radio: tuple[MeshtasticRadio, Collector]) -> None:
    radio, _ = tcp_radio
    with pytest.raises(RadioError, match="231"):
        radio.send(bytes(232), portnum=APP_PORT)
    with pytest.raises(RadioError, match="219"):
        radio.send(bytes(220), portnum=APP_PORT, dest=0x1, pki=True)
    with pytest.raises(RadioError, match="port"):
        radio.send(b"x", portnum=0)  # the library would sys.exit here
    assert radio.state is RadioState.CONNECTED


def test_hop_limit_is_never_zero_even_if_the_device_config_lacks_it(
    mesh: InMemoryMesh,
) -> None:
    state = default_state(seed=11, avoid_nums={n.num for n in mesh.node_infos()})
    state.config.lora.hop_limit = 0
    device = EmulatedDevice(mesh, state=state, seed=11)
    device.start()
    try:
        # the bare library sends hop_limit 0 ...
        bare = meshtastic.tcp_interface.TCPInterface(
            "127.0.0.1", portNumber=tcp_port(device), timeout=LIBRARY_TIMEOUT
        )
        bare.sendData(b"bare", portNum=APP_PORT)
        bare.close()
        radio, _ = start_radio(f"tcp:127.0.0.1:{tcp_port(device)}")
        try:
            radio.send(b"ours", portnum=APP_PORT)
            assert device.wait_for(lambda: len(device.client_packets) >= 2)
        finally:
            radio.close()
        hops = {bytes(p.decoded.payload): p.hop_limit for p in device.client_packets}
        assert hops[b"bare"] == 0
        assert hops[b"ours"] == 3
    finally:
        device.stop()


def test_not_connected_means_not_sent_not_an_exception() -> None:
    radio = MeshtasticRadio("tcp:127.0.0.1:1", connect_timeout=1)
    out = radio.send(b"x", portnum=APP_PORT)
    assert out.outcome is SendOutcome.NOT_SENT


def test_serial_unplug_and_replug_reconnects_and_loses_nothing(
    mesh: InMemoryMesh, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    link = tmp_path / "ttyMESH"
    device = EmulatedDevice(mesh, tcp=None, pty=True, pty_link=link, seed=5)
    device.start()
    radio, got = start_radio(f"serial:{link}", backoff_initial=0.1, backoff_max=0.5)
    node = next(iter(mesh.nodes.values()))
    stop = threading.Event()
    sent: list[str] = []

    def stream() -> None:
        n = 0
        while not stop.is_set():
            text = f"report {n}"
            mesh.send_text(node, text, to=device.node_num)
            sent.append(text)
            n += 1
            time.sleep(0.05)

    streamer = threading.Thread(target=stream)
    try:
        streamer.start()
        assert got.wait(lambda: len(got.items) >= 5)
        device.unplug()  # mid-stream: the radio keeps hearing the mesh and holds packets
        assert got.wait(lambda: radio.state is not RadioState.CONNECTED, timeout=5)
        time.sleep(0.5)
        replugged = time.monotonic()
        device.plug()
        assert radio.wait_connected(5)
        assert time.monotonic() - replugged < 5
        time.sleep(0.3)
        stop.set()
        streamer.join()
        expected = set(sent)
        assert got.wait(lambda: expected <= {r.text for r in got.items}, timeout=5), sorted(
            expected - {r.text for r in got.items}
        )
        assert radio.reconnects >= 1
        assert any(s is RadioState.DISCONNECTED for s, _ in got.states)
    finally:
        stop.set()
        radio.close()
        device.stop()


def test_tcp_drop_is_reported_and_reconnected_not_silent(
    device: EmulatedDevice, mesh: InMemoryMesh, tcp_radio: tuple[MeshtasticRadio, Collector]
) -> None:
    """The bare TCPInterface reconnects once, silently (see test_radio_library); ours reports."""
    radio, got = tcp_radio
    device.unplug()
    assert got.wait(lambda: radio.state is not RadioState.CONNECTED, timeout=5)
    device.plug()
    assert got.wait(lambda: radio.state is RadioState.CONNECTED, timeout=5)
    assert radio.reconnects == 1
    states = [s for s, _ in got.states]
    assert RadioState.DISCONNECTED in states
    assert states[-1] is RadioState.CONNECTED
    node = next(iter(mesh.nodes.values()))
    mesh.send_text(node, "after the blip", to=device.node_num)
    assert got.wait(lambda: any(r.text == "after the blip" for r in got.items))


def test_radio_gone_for_good_then_back_reconnects_with_backoff(
    mesh: InMemoryMesh, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING", logger="signalfire")
    device = EmulatedDevice(mesh, seed=9)
    device.start()
    port = tcp_port(device)
    radio, got = start_radio(f"tcp:127.0.0.1:{port}", backoff_initial=0.1, backoff_max=0.4)
    try:
        device.stop()  # power cut: the library's one retry fails, it publishes lost
        assert got.wait(
            lambda: sum("retrying" in reason for _, reason in got.states) >= 2, timeout=10
        )
        device2 = EmulatedDevice(mesh, tcp=("127.0.0.1", port), seed=9)
        device2.start()
        try:
            assert got.wait(lambda: radio.state is RadioState.CONNECTED, timeout=10)
            node = next(iter(mesh.nodes.values()))
            mesh.send_text(node, "back", to=device2.node_num)
            assert got.wait(lambda: any(r.text == "back" for r in got.items))
        finally:
            radio.close()
            device2.stop()
    finally:
        device.stop()
    # At the default level (warnings) the operator's log says it went and came back,
    # once each, however many retries lay between.
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("signalfire")]
    assert len([m for m in ours if "retrying" in m or "connection lost" in m]) == 1, ours
    assert len([m for m in ours if "connected again" in m]) == 1, ours


def test_ble_without_bluetooth_keeps_retrying_with_a_clear_reason() -> None:
    radio = MeshtasticRadio("ble:T-Echo_0000", connect_timeout=2, backoff_initial=0.2)
    got = Collector()
    radio.add_state_listener(got.on_state)
    radio.start()
    try:
        assert got.wait(
            lambda: any(s is RadioState.DISCONNECTED and "retrying" in r for s, r in got.states),
            timeout=30,
        )
    finally:
        radio.close()
    assert radio.state is RadioState.CLOSED


def test_our_subscriptions_do_not_break_other_listeners_in_the_process() -> None:
    """pypubsub fixes a topic's arguments from its first listener: ours must match the library."""
    import subprocess
    import sys

    code = (
        "from pubsub import pub\n"
        "from signalfire.radio.meshtastic_radio import MeshtasticRadio\n"
        "r = MeshtasticRadio('tcp:127.0.0.1:1', connect_timeout=1)\n"
        "r.start()\n"
        "def plugin(packet, interface): pass\n"
        "def gone(interface): pass\n"
        "pub.subscribe(plugin, 'meshtastic.receive')\n"
        "pub.subscribe(gone, 'meshtastic.connection.lost')\n"
        "r.close()\n"
        "print('ok')\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok"

"""The unmodified meshtastic library against the emulated radio, on TCP and on a pty."""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import Any

import meshtastic.serial_interface
import meshtastic.tcp_interface
import pytest
from meshtastic.protobuf import channel_pb2, config_pb2, mesh_pb2, portnums_pb2

from signalfire.radio.emulator import EmulatedDevice
from signalfire.radio.mesh_protocol import BROADCAST_NUM
from signalfire.radio.packets import data_packet
from signalfire.radio.virtual_mesh import InMemoryMesh

from .conftest import LIBRARY_TIMEOUT, Inbox, connect_tcp, tcp_port

TEXT = portnums_pb2.PortNum.TEXT_MESSAGE_APP


def close_after_unplug(interface: Any) -> None:
    """SerialInterface.close() races the reader thread's own cleanup after an unplug and can
    raise from pyserial (flush on a port the reader just closed): let the reader finish."""
    interface._rxThread.join(2)
    with contextlib.suppress(Exception):
        interface.close()


class Responses:
    """Collects onResponse callbacks. The library passes plain ACKs only to a callback
    named `onAckNak` (or registered with ackPermitted), so that is its name."""

    def __init__(self) -> None:
        self.packets: list[dict[str, Any]] = []
        self._event = threading.Event()

    def onAckNak(self, packet: dict[str, Any]) -> None:
        self.packets.append(packet)
        self._event.set()

    def wait(self, timeout: float = 5.0) -> dict[str, Any]:
        assert self._event.wait(timeout), "no response arrived"
        return self.packets[0]


def test_library_connects_and_sees_the_radio_and_its_nodes(
    device: EmulatedDevice, mesh: InMemoryMesh, iface: Any
) -> None:
    assert iface.myInfo.my_node_num == device.node_num
    assert iface.getLongName() == "Signalfire Gateway"
    assert iface.getShortName() == "SFGW"
    assert len(iface.getPublicKey() or "") > 0
    assert iface.metadata.firmware_version.startswith("2.7.")
    lora = iface.localNode.localConfig.lora
    assert lora.hop_limit == 3
    assert lora.tx_enabled
    assert lora.region == config_pb2.Config.LoRaConfig.RegionCode.EU_868
    channels = iface.localNode.channels
    assert len(channels) == 8
    assert channels[0].role == channel_pb2.Channel.Role.PRIMARY
    assert channels[0].settings.name == "signalfire"
    assert len(channels[0].settings.psk) == 32
    assert all(c.role == channel_pb2.Channel.Role.DISABLED for c in channels[1:])
    expected = {device.node_id} | {node.node_id for node in mesh.nodes.values()}
    assert set(iface.nodes) == expected
    for node in mesh.nodes.values():
        seen = iface.nodes[node.node_id]
        assert seen["user"]["longName"] == node.long_name
        assert seen["position"]["latitude"] == pytest.approx(node.latitude, abs=1e-6)


def test_direct_message_reaches_the_mesh_and_the_destination_acks(
    device: EmulatedDevice, mesh: InMemoryMesh, iface: Any
) -> None:
    node = next(iter(mesh.nodes.values()))
    responses = Responses()
    sent = iface.sendText(
        "are you safe?", node.node_id, wantAck=True, onResponse=responses.onAckNak
    )

    on_air = mesh.wait_for_transmit(lambda p: p.id == sent.id)
    assert on_air is not None
    assert getattr(on_air, "from") == device.node_num  # the radio fills in `from`
    assert on_air.to == node.num
    assert on_air.decoded.payload == b"are you safe?"
    assert on_air.hop_limit == on_air.hop_start == 3
    assert node.inbox[-1].id == sent.id

    ack = responses.wait()
    assert ack["from"] == node.num  # a real ack, from the destination
    assert ack["decoded"]["routing"]["errorReason"] == "NONE"
    assert ack["decoded"]["requestId"] == sent.id


def test_broadcast_gets_an_implicit_ack_from_the_radio_itself(
    device: EmulatedDevice, iface: Any
) -> None:
    responses = Responses()
    sent = iface.sendData(
        b"\x01report", portNum=portnums_pb2.PortNum.PRIVATE_APP, wantAck=True,
        onResponse=responses.onAckNak,
    )  # fmt: skip
    ack = responses.wait()
    assert ack["from"] == device.node_num
    assert ack["decoded"]["routing"]["errorReason"] == "NONE"
    assert ack["decoded"]["requestId"] == sent.id


def test_unknown_destination_ends_in_max_retransmit(
    device: EmulatedDevice, mesh: InMemoryMesh, iface: Any
) -> None:
    responses = Responses()
    sent = iface.sendData(b"x", 0x0BADBEEF, wantAck=True, onResponse=responses.onAckNak)
    nak = responses.wait()
    assert nak["from"] == device.node_num
    assert nak["decoded"]["routing"]["errorReason"] == "MAX_RETRANSMIT"
    assert nak["decoded"]["requestId"] == sent.id
    attempts = [p for p in mesh.transmitted if p.id == sent.id]
    assert len(attempts) == 1 + device.max_retransmits


def test_text_from_the_mesh_reaches_a_pubsub_listener(
    device: EmulatedDevice, mesh: InMemoryMesh, iface: Any, inbox: Inbox
) -> None:
    node = list(mesh.nodes.values())[1]
    sent = mesh.send_text(node, "SOS 3 trapped")
    got = inbox.wait_for(lambda topic, p, i: topic == "text" and p["id"] == sent.id)
    assert got is not None
    _, packet, interface = got
    assert interface is iface
    assert packet["fromId"] == node.node_id
    assert packet["from"] == node.num
    assert packet["to"] == device.node_num
    assert packet["decoded"]["text"] == "SOS 3 trapped"
    assert packet["rxSnr"] == pytest.approx(node.rx_snr)
    assert packet["rxRssi"] == node.rx_rssi
    assert packet["hopStart"] == 3
    assert packet["hopLimit"] == 3 - node.hops_away
    assert packet["rxTime"] > 0
    assert packet["pkiEncrypted"] is True  # a DM from a node whose key the radio knows


def test_stranger_has_no_from_id_and_gets_our_node_info(
    device: EmulatedDevice, mesh: InMemoryMesh, iface: Any, inbox: Inbox
) -> None:
    stranger = 0x5EEDF00D
    packet = data_packet(
        sender=stranger, to=BROADCAST_NUM, portnum=TEXT, payload=b"who is there", packet_id=77
    )
    device.deliver(packet)
    device.deliver(packet)  # a flood duplicate: must reach the client once
    got = inbox.wait_for(lambda topic, p, i: topic == "text" and p["from"] == stranger)
    assert got is not None
    assert got[1]["fromId"] is None  # the library only knows ids of nodes in its list
    hello = mesh.wait_for_transmit(
        lambda p: p.to == stranger and p.decoded.portnum == portnums_pb2.PortNum.NODEINFO_APP
    )
    assert hello is not None
    assert hello.decoded.want_response
    time.sleep(0.2)
    assert len([i for i in inbox.items if i[0] == "text" and i[1]["from"] == stranger]) == 1


def test_position_and_private_app_packets_reach_the_library(
    mesh: InMemoryMesh, iface: Any, inbox: Inbox
) -> None:
    node = list(mesh.nodes.values())[2]
    mesh.send_position(node, latitude=40.2, longitude=44.5)
    got = inbox.wait_for(lambda topic, p, i: topic == "position" and p["from"] == node.num)
    assert got is not None
    assert iface.nodesByNum[node.num]["position"]["latitude"] == pytest.approx(40.2)

    sent = mesh.send_data(node, b"\x01\x02signed report", want_ack=True)
    got = inbox.wait_for(lambda topic, p, i: topic == "receive" and p["id"] == sent.id)
    assert got is not None
    assert got[1]["decoded"]["portnum"] == "PRIVATE_APP"
    assert got[1]["decoded"]["payload"] == b"\x01\x02signed report"
    # The radio acks a want_ack DM on the air, as a real one does.
    ack = mesh.wait_for_transmit(lambda p: p.decoded.request_id == sent.id)
    assert ack is not None
    assert ack.to == node.num
    assert ack.decoded.portnum == portnums_pb2.PortNum.ROUTING_APP


def test_packets_heard_without_a_client_are_delivered_after_connect(
    device: EmulatedDevice, mesh: InMemoryMesh, inbox: Inbox
) -> None:
    node = next(iter(mesh.nodes.values()))
    sent = mesh.send_text(node, "queued while nobody listened")
    assert device.wait_for(lambda: device.queued_for_client == 1)
    interface = connect_tcp(device)
    try:
        got = inbox.wait_for(lambda topic, p, i: topic == "text" and p["id"] == sent.id)
        assert got is not None
        assert got[2] is interface
    finally:
        interface.close()


def test_admin_reads_and_writes_like_a_radio(
    device: EmulatedDevice, iface: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    local = iface.localNode
    local.requestChannels()  # get_channel_request 1..8, each answered in turn
    assert local.waitForConfig()
    assert [c.index for c in local.channels] == list(range(8))
    assert local.channels[0].settings.name == "signalfire"

    local.getMetadata()  # waits for get_device_metadata_response, then prints it
    assert "firmware_version: 2.7.26" in capsys.readouterr().out

    local.localConfig.lora.hop_limit = 5
    local.writeConfig("lora")
    local.setOwner(long_name="Gateway North", short_name="GWN")
    assert device.wait_for(
        lambda: any(m.HasField("set_owner") for m in device.admin_messages), timeout=5
    )
    kinds = [m.WhichOneof("payload_variant") for m in device.admin_messages]
    assert "set_config" in kinds
    assert "get_channel_request" in kinds

    iface.close()  # otherwise it reconnects and pushes the next client out, as on a radio
    again = connect_tcp(device)
    try:
        assert again.localNode.localConfig.lora.hop_limit == 5
        assert again.getLongName() == "Gateway North"
        assert again.getShortName() == "GWN"
    finally:
        again.close()


def test_no_nodes_handshake(device: EmulatedDevice) -> None:
    interface = meshtastic.tcp_interface.TCPInterface(
        hostname="127.0.0.1", portNumber=tcp_port(device), noNodes=True, timeout=LIBRARY_TIMEOUT
    )
    try:
        assert interface.configId == 69420  # the library's NODELESS_WANT_CONFIG_ID
        assert set(interface.nodes) == {device.node_id}  # our own node only
        assert interface.localNode.localConfig.lora.hop_limit == 3
    finally:
        interface.close()


def test_tcp_interface_reconnects_silently_after_a_short_unplug(
    device: EmulatedDevice, mesh: InMemoryMesh, iface: Any, inbox: Inbox
) -> None:
    device.unplug()
    time.sleep(0.2)
    device.plug()  # same port; the library retries once after 1 s and redoes the handshake
    node = next(iter(mesh.nodes.values()))
    sent = mesh.send_text(node, "after the blip")
    got = inbox.wait_for(lambda topic, p, i: topic == "text" and p["id"] == sent.id, timeout=5)
    assert got is not None
    assert got[2] is iface
    assert not [i for i in inbox.items if i[0] == "lost"]  # no event told anyone


def test_stopping_the_radio_is_seen_as_connection_lost_on_tcp(
    device: EmulatedDevice, inbox: Inbox
) -> None:
    interface = connect_tcp(device)
    try:
        device.stop()
        # TCPInterface first tries to reconnect once (1 s), then gives up.
        got = inbox.wait_for(lambda topic, p, i: topic == "lost" and i is interface, timeout=8)
        assert got is not None
        assert not interface.isConnected.is_set()
    finally:
        interface.close()


def test_serial_interface_on_a_pty(mesh: InMemoryMesh, inbox: Inbox) -> None:
    radio = EmulatedDevice(mesh, tcp=None, pty=True, seed=3)
    radio.start()
    try:
        assert radio.pty_path is not None
        serial = meshtastic.serial_interface.SerialInterface(
            devPath=radio.pty_path, timeout=LIBRARY_TIMEOUT
        )
        try:
            assert serial.myInfo.my_node_num == radio.node_num
            assert set(serial.nodes) >= {n.node_id for n in mesh.nodes.values()}
            node = next(iter(mesh.nodes.values()))
            sent = mesh.send_text(node, "over serial")
            got = inbox.wait_for(lambda topic, p, i: topic == "text" and p["id"] == sent.id)
            assert got is not None
            assert got[2] is serial
            assert got[1]["fromId"] == node.node_id

            serial.sendText("reply over serial", node.node_id)
            assert mesh.wait_for_transmit(lambda p: p.decoded.payload == b"reply over serial")

            radio.stop()  # the USB cable is pulled
            got = inbox.wait_for(lambda topic, p, i: topic == "lost" and i is serial)
            assert got is not None
        finally:
            close_after_unplug(serial)
    finally:
        radio.stop()


def test_unplug_and_plug_back_keeps_what_the_radio_heard(
    mesh: InMemoryMesh, inbox: Inbox, tmp_path: Path
) -> None:
    link = tmp_path / "ttyMESH0"
    radio = EmulatedDevice(mesh, tcp=None, pty=True, pty_link=link, seed=4)
    radio.start()
    try:
        first = meshtastic.serial_interface.SerialInterface(
            devPath=str(link), timeout=LIBRARY_TIMEOUT
        )
        try:
            radio.unplug()
            assert inbox.wait_for(lambda topic, p, i: topic == "lost" and i is first)
        finally:
            close_after_unplug(first)
        assert not link.exists()
        node = next(iter(mesh.nodes.values()))
        sent = mesh.send_text(node, "heard while unplugged")
        radio.plug()
        second = meshtastic.serial_interface.SerialInterface(
            devPath=str(link), timeout=LIBRARY_TIMEOUT
        )
        try:
            got = inbox.wait_for(lambda topic, p, i: topic == "text" and p["id"] == sent.id)
            assert got is not None
            assert got[2] is second
        finally:
            second.close()
    finally:
        radio.stop()


def test_owner_and_nodes_survive_a_power_cycle(device: EmulatedDevice) -> None:
    device.state.owner.long_name = "Renamed"
    device.stop()
    device.start()
    interface = connect_tcp(device)
    try:
        assert interface.getLongName() == "Renamed"
        assert interface.myInfo.my_node_num == device.node_num
        assert isinstance(interface.nodesByNum[device.node_num]["num"], int)
    finally:
        interface.close()


def test_library_hop_limit_comes_from_the_radio_config(
    device: EmulatedDevice, mesh: InMemoryMesh, iface: Any
) -> None:
    sent = iface.sendData(b"r", portNum=portnums_pb2.PortNum.PRIVATE_APP)
    on_air = mesh.wait_for_transmit(lambda p: p.id == sent.id)
    assert on_air is not None
    assert on_air.hop_limit == 3
    assert on_air.priority == mesh_pb2.MeshPacket.Priority.RELIABLE

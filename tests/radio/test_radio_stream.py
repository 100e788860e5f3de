"""The emulated radio at the byte level: framing, the handshake, queue status, robustness."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from meshtastic.protobuf import mesh_pb2, portnums_pb2

from signalfire.radio.emulator import NONCE_ONLY_CONFIG, NONCE_ONLY_NODES, EmulatedDevice
from signalfire.radio.framing import FrameDecoder, encode_frame
from signalfire.radio.mesh_protocol import BROADCAST_NUM
from signalfire.radio.packets import data_packet
from signalfire.radio.virtual_mesh import InMemoryMesh

from .conftest import connect_tcp, tcp_port


class RawClient:
    """A bare stream client: frames in, FromRadio messages out."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.decoder = FrameDecoder()
        self.received: list[Any] = []

    def close(self) -> None:
        self.sock.close()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, message: Any) -> None:
        self.send_raw(encode_frame(message.SerializeToString()))

    def read_until(self, predicate: Callable[[Any], bool], timeout: float = 5.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            for message in self.received:
                if predicate(message):
                    return message
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no matching FromRadio")
            self.sock.settimeout(remaining)
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("radio closed the connection")
            for payload in self.decoder.feed(data):
                self.received.append(mesh_pb2.FromRadio.FromString(payload))

    def handshake(self, nonce: int = 4242) -> list[Any]:
        self.send(mesh_pb2.ToRadio(want_config_id=nonce))
        done = self.read_until(lambda m: m.WhichOneof("payload_variant") == "config_complete_id")
        end = self.received.index(done) + 1
        burst, self.received = self.received[:end], self.received[end:]
        return burst


@pytest.fixture
def raw(device: EmulatedDevice) -> Iterator[RawClient]:
    client = RawClient(tcp_port(device))
    yield client
    client.close()


def kinds(messages: list[Any]) -> list[str]:
    return [m.WhichOneof("payload_variant") for m in messages]


def text_packet(
    to: int,
    packet_id: int,
    text: bytes = b"hi",
    portnum: int = portnums_pb2.PortNum.TEXT_MESSAGE_APP,
) -> Any:
    packet = mesh_pb2.MeshPacket(to=to, id=packet_id, hop_limit=3)
    packet.decoded.portnum = portnum
    packet.decoded.payload = text
    return mesh_pb2.ToRadio(packet=packet)


def test_handshake_order_follows_the_firmware(
    device: EmulatedDevice, mesh: InMemoryMesh, raw: RawClient
) -> None:
    burst = raw.handshake(4242)
    order = kinds(burst)
    n_others = len(mesh.nodes)
    assert order[:4] == ["my_info", "deviceuiConfig", "node_info", "metadata"]
    assert order[4:12] == ["channel"] * 8
    assert order[12:22] == ["config"] * 10
    modules = order[22 : order.index("node_info", 22)]
    assert set(modules) == {"moduleConfig"} and len(modules) >= 13
    assert order[-1 - n_others : -1] == ["node_info"] * n_others
    assert burst[-1].config_complete_id == 4242
    assert burst[2].node_info.num == device.node_num
    assert burst[2].node_info.user.id == device.node_id
    assert len(burst[2].node_info.user.public_key) == 32
    sections = [m.config.WhichOneof("payload_variant") for m in burst[12:22]]
    assert sections[:8] == [
        "device", "position", "power", "network", "display", "lora", "bluetooth", "security",
    ]  # fmt: skip
    assert all(len(m.SerializeToString()) <= 512 for m in burst)


def test_special_nonces(device: EmulatedDevice, raw: RawClient) -> None:
    only_config = kinds(raw.handshake(NONCE_ONLY_CONFIG))
    assert only_config.count("node_info") == 1  # ours, never the others
    assert "config" in only_config
    only_nodes = raw.handshake(NONCE_ONLY_NODES)
    assert set(kinds(only_nodes)) == {"node_info", "config_complete_id"}
    assert only_nodes[-1].config_complete_id == NONCE_ONLY_NODES


def test_garbage_partial_and_oversize_frames_do_not_break_the_radio(
    device: EmulatedDevice, raw: RawClient
) -> None:
    raw.send_raw(bytes([0xC3] * 32))  # what the library sends to wake a radio
    raw.send_raw(b"plain text that is not a frame\r\n\x00\xff\x94\x94\x13")
    raw.send_raw(b"\x94\xc3" + (1000).to_bytes(2, "big") + bytes(1000))  # oversize: dropped
    raw.send_raw(encode_frame(b"\xff\xff\xff\xff"))  # a frame that is not a ToRadio
    frame = encode_frame(mesh_pb2.ToRadio(want_config_id=99).SerializeToString())
    for i in range(len(frame)):  # one byte per segment
        raw.send_raw(frame[i : i + 1])
        time.sleep(0.001)
    raw.read_until(lambda m: m.config_complete_id == 99)
    # And a real client still gets through afterwards.
    raw.close()
    interface = connect_tcp(device)
    try:
        assert interface.myInfo.my_node_num == device.node_num
    finally:
        interface.close()


def test_queue_status_after_each_packet_and_heartbeat(
    device: EmulatedDevice, mesh: InMemoryMesh, raw: RawClient
) -> None:
    raw.handshake()
    raw.send(mesh_pb2.ToRadio(heartbeat=mesh_pb2.Heartbeat()))
    status = raw.read_until(lambda m: m.HasField("queueStatus")).queueStatus
    assert status.res == 0 and status.free > 0 and status.mesh_packet_id == 0
    raw.received.clear()

    raw.send(text_packet(BROADCAST_NUM, 0x1234, portnum=256))
    status = raw.read_until(lambda m: m.HasField("queueStatus")).queueStatus
    assert status.mesh_packet_id == 0x1234 and status.res == 0 and status.free > 0
    assert status.maxlen >= status.free
    assert getattr(device.client_packets[-1], "from") == device.node_num

    # The same id again is a resend: the firmware ignores it without a word.
    raw.received.clear()
    raw.send(text_packet(BROADCAST_NUM, 0x1234, portnum=256))
    raw.send(mesh_pb2.ToRadio(heartbeat=mesh_pb2.Heartbeat()))
    raw.read_until(lambda m: m.HasField("queueStatus") and m.queueStatus.mesh_packet_id == 0)
    assert not [m for m in raw.received if m.queueStatus.mesh_packet_id == 0x1234]
    assert len([p for p in mesh.transmitted if p.id == 0x1234]) == 1


def test_text_rate_limit_answers_with_a_routing_error(
    device: EmulatedDevice, mesh: InMemoryMesh, raw: RawClient
) -> None:
    raw.handshake()
    raw.send(text_packet(BROADCAST_NUM, 0x100))
    raw.send(text_packet(BROADCAST_NUM, 0x101))  # within 2 s: dropped by the firmware
    error = raw.read_until(lambda m: m.packet.decoded.request_id == 0x101).packet
    routing = mesh_pb2.Routing.FromString(error.decoded.payload)
    assert routing.error_reason == mesh_pb2.Routing.Error.RATE_LIMIT_EXCEEDED
    assert raw.read_until(lambda m: m.queueStatus.mesh_packet_id == 0x101)
    assert [p.id for p in mesh.transmitted if p.id in (0x100, 0x101)] == [0x100]


def test_a_new_tcp_client_replaces_the_old_one(device: EmulatedDevice, raw: RawClient) -> None:
    raw.handshake()
    second = RawClient(tcp_port(device))
    try:
        with pytest.raises((ConnectionError, OSError)):
            raw.read_until(lambda m: False, timeout=3)
        assert second.handshake(7)[-1].config_complete_id == 7
    finally:
        second.close()


def test_disconnect_closes_the_tcp_connection(raw: RawClient) -> None:
    raw.handshake()
    raw.send(mesh_pb2.ToRadio(disconnect=True))
    with pytest.raises((ConnectionError, OSError)):
        raw.read_until(lambda m: False, timeout=3)


def test_flood_duplicates_and_foreign_packets_are_filtered(
    device: EmulatedDevice, mesh: InMemoryMesh, raw: RawClient
) -> None:
    raw.handshake()
    node = next(iter(mesh.nodes.values()))
    broadcast = data_packet(
        sender=node.num, to=BROADCAST_NUM, portnum=1, payload=b"flood", packet_id=500
    )
    for hop_limit in (3, 2, 1):  # the same packet relayed three times
        broadcast.hop_limit = hop_limit
        device.deliver(broadcast)
    foreign = data_packet(sender=node.num, to=0x0F0F0F0F, portnum=1, payload=b"x", packet_id=501)
    device.deliver(foreign)
    marker = data_packet(
        sender=node.num, to=device.node_num, portnum=1, payload=b"m", packet_id=502
    )
    device.deliver(marker)
    raw.read_until(lambda m: m.packet.id == 502)
    ids = [m.packet.id for m in raw.received if m.HasField("packet")]
    assert ids.count(500) == 1
    assert 501 not in ids


def test_held_packets_are_bounded_like_the_firmware(device: EmulatedDevice) -> None:
    node_num = 0x12345678
    for i in range(40):
        port = portnums_pb2.PortNum.TEXT_MESSAGE_APP if i % 2 else 256
        packet = data_packet(
            sender=node_num, to=device.node_num, portnum=port, payload=b"q", packet_id=1000 + i
        )
        device.deliver(packet)
    assert device.wait_for(lambda: device.queued_for_client == 32)
    client = RawClient(tcp_port(device))
    try:
        client.handshake()
        client.read_until(lambda m: m.packet.id == 1039)
        ids = [m.packet.id for m in client.received if m.HasField("packet")]
        assert len(ids) == 32
        assert ids == sorted(ids)
    finally:
        client.close()

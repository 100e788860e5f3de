"""Fixtures that run the real meshtastic library against an emulated radio."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import meshtastic.tcp_interface
import pytest
from pubsub import pub

from signalfire.radio.emulator import EmulatedDevice
from signalfire.radio.virtual_mesh import InMemoryMesh

# The library waits this long for anything; keep a broken test from hanging for minutes.
LIBRARY_TIMEOUT = 10


class Inbox:
    """Collects what pubsub listeners receive, for the test thread to wait on."""

    def __init__(self) -> None:
        self.items: list[tuple[str, dict[str, Any], Any]] = []
        self._cond = threading.Condition()

    def put(self, topic: str, payload: dict[str, Any], interface: Any) -> None:
        with self._cond:
            self.items.append((topic, payload, interface))
            self._cond.notify_all()

    def wait_for(
        self, predicate: Callable[[str, dict[str, Any], Any], bool], timeout: float = 5.0
    ) -> tuple[str, dict[str, Any], Any] | None:
        found: list[tuple[str, dict[str, Any], Any]] = []

        def match() -> bool:
            found[:] = [item for item in self.items if predicate(*item)]
            return bool(found)

        with self._cond:
            if self._cond.wait_for(match, timeout):
                return found[0]
        return None


INBOX = Inbox()


# pypubsub keeps only weak references to listeners: these must be module-level functions.
def _on_text(packet: dict[str, Any], interface: Any) -> None:
    INBOX.put("text", packet, interface)


def _on_position(packet: dict[str, Any], interface: Any) -> None:
    INBOX.put("position", packet, interface)


def _on_receive(packet: dict[str, Any], interface: Any) -> None:
    INBOX.put("receive", packet, interface)


def _on_lost(interface: Any) -> None:
    INBOX.put("lost", {}, interface)


_LISTENERS: dict[str, Callable[..., None]] = {
    "meshtastic.receive.text": _on_text,
    "meshtastic.receive.position": _on_position,
    "meshtastic.receive": _on_receive,
    "meshtastic.connection.lost": _on_lost,
}


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    INBOX.items.clear()
    for topic, listener in _LISTENERS.items():
        pub.subscribe(listener, topic)
    yield INBOX
    for topic, listener in _LISTENERS.items():
        pub.unsubscribe(listener, topic)


@pytest.fixture
def mesh() -> InMemoryMesh:
    return InMemoryMesh.generate(3, seed=7)


@pytest.fixture
def device(mesh: InMemoryMesh) -> Iterator[EmulatedDevice]:
    radio = EmulatedDevice(mesh, seed=7, retry_interval=0.1, max_retransmits=2)
    radio.start()
    yield radio
    radio.stop()


def tcp_port(device: EmulatedDevice) -> int:
    address = device.tcp_address
    assert address is not None
    return address[1]


def connect_tcp_port(port: int) -> Any:
    return meshtastic.tcp_interface.TCPInterface(
        hostname="127.0.0.1", portNumber=port, timeout=LIBRARY_TIMEOUT
    )


def connect_tcp(device: EmulatedDevice) -> Any:
    return connect_tcp_port(tcp_port(device))


@pytest.fixture
def iface(device: EmulatedDevice) -> Iterator[Any]:
    interface = connect_tcp(device)
    yield interface
    interface.close()

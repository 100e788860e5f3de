"""The emulator's TCP link at the socket level."""

from __future__ import annotations

import asyncio
import socket
import time

from signalfire.radio.transports import Link, TcpServer


class SlowRadio:
    """Greets every client and answers each chunk after a pause, as a busy radio does."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.closed = asyncio.Event()

    def link_opened(self, link: Link) -> None:
        link.write(b"greeting the client never reads" * 100)

    def link_data(self, link: Link, data: bytes) -> None:
        self.received += data
        time.sleep(0.3)  # busy: the client hangs up meanwhile
        link.write(b"reply")

    def link_closed(self, link: Link) -> None:
        self.closed.set()


def client_writes_then_resets(port: int) -> None:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(b"first;")
    time.sleep(0.1)  # the radio is now busy with the first message
    sock.sendall(b"last;")
    sock.close()  # the greeting is unread: the kernel resets the connection


def test_what_a_client_wrote_before_resetting_is_still_read() -> None:
    async def scenario() -> bytes:
        radio = SlowRadio()
        server = TcpServer(radio, "127.0.0.1", 0)
        await server.open()
        try:
            await asyncio.to_thread(client_writes_then_resets, server.port)
            await asyncio.wait_for(radio.closed.wait(), 5)
        finally:
            await server.close()
        return bytes(radio.received)

    assert asyncio.run(scenario()) == b"first;last;"

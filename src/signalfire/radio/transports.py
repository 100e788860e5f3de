"""The two ways a client reaches an emulated radio: a TCP port (like a WiFi/Ethernet node on
4403) and a pseudo-terminal (like a USB serial port). Both run on the emulator's asyncio loop
and hand raw bytes to a `LinkHandler`; framing and protocol live above them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import tty
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)

# A client that stops reading must not make the emulator buffer without bound. A real radio
# drops what the link cannot take; so does the emulator, past these limits.
TCP_WRITE_LIMIT = 256 * 1024
PTY_WRITE_LIMIT = 64 * 1024


class Link(Protocol):
    name: str
    # Serial consoles carry plain-text log lines between frames; TCP does not.
    carries_log_text: bool
    # The firmware drops a TCP client on ToRadio.disconnect; a serial port just goes quiet.
    closes_on_disconnect: bool

    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...


class LinkHandler(Protocol):
    def link_opened(self, link: Link) -> None: ...

    def link_data(self, link: Link, data: bytes) -> None: ...

    def link_closed(self, link: Link) -> None: ...


TCP_CLOSE_GRACE = 0.5  # seconds a client gets to close its side after our end-of-stream


class _TcpLink(asyncio.Protocol):
    carries_log_text = False
    closes_on_disconnect = True

    def __init__(self, server: TcpServer) -> None:
        self._server = server
        self._transport: asyncio.Transport | None = None
        self.name = "tcp"
        self.gone = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        peer = transport.get_extra_info("peername")
        self.name = f"tcp {peer[0]}:{peer[1]}" if peer else "tcp"
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._server.client_connected(self)

    def data_received(self, data: bytes) -> None:
        self._server.handler.link_data(self, data)

    def eof_received(self) -> bool:
        return False  # close our side too: the client hung up

    def connection_lost(self, exc: Exception | None) -> None:
        if isinstance(exc, ConnectionResetError | BrokenPipeError):
            self._read_what_is_left()
        self.gone.set()
        self._server.client_gone(self)

    def _read_what_is_left(self) -> None:
        """Hand on what the client wrote before it reset the connection.

        A client that hangs up with our replies unread makes its kernel send a reset. When
        our next write fails on that reset, asyncio drops the transport without reading the
        bytes the client sent before hanging up, though the kernel still holds them: the last
        admin message of a one-shot `meshtastic --set` (its commit) was lost that way
        whenever the radio ran a quarter of a second behind. A radio reads its input first.
        """
        transport = self._transport
        sock = transport.get_extra_info("socket") if transport is not None else None
        if sock is None:
            return
        try:
            raw = sock.dup()  # asyncio's socket wrapper has no recv(); the socket is open still
        except OSError:
            return
        with raw:
            raw.setblocking(False)
            while True:
                try:
                    data = raw.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                self._server.handler.link_data(self, data)

    def write(self, data: bytes) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if transport.get_write_buffer_size() > TCP_WRITE_LIMIT:
            log.warning("%s is not reading; dropping the connection", self.name)
            transport.abort()
            return
        transport.write(data)

    def close(self) -> None:
        # Half-close and keep reading until the client closes too: closing with unread
        # input would make the kernel send a reset, and the library treats a reset
        # (connection lost) differently from end-of-stream (silent reconnect).
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if transport.can_write_eof():
            transport.write_eof()
            asyncio.get_running_loop().call_later(TCP_CLOSE_GRACE, transport.close)
        else:
            transport.close()


class TcpServer:
    """Serves one API client at a time: a new connection replaces the old one, as on a radio."""

    def __init__(self, handler: LinkHandler, host: str, port: int) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self._client: _TcpLink | None = None

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _TcpLink(self), self.host, self.port, reuse_address=True
        )
        # Keep the port a caller got from port 0, so that plugging back in reuses it.
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._client is not None:
            client, self._client = self._client, None
            client.close()
            self.handler.link_closed(client)
            # The socket is only really closed once the loop has run the transport's
            # close; wait for it so that a stop() that follows leaves nothing half-open.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(client.gone.wait(), 1.0)

    def client_connected(self, link: _TcpLink) -> None:
        old, self._client = self._client, link
        if old is not None:
            log.info("%s replaces %s", link.name, old.name)
            old.close()
            self.handler.link_closed(old)
        self.handler.link_opened(link)

    def client_gone(self, link: _TcpLink) -> None:
        if self._client is link:
            self._client = None
            self.handler.link_closed(link)


class _PtyLink:
    carries_log_text = True
    closes_on_disconnect = False

    def __init__(self, port: PtyPort, name: str) -> None:
        self._port = port
        self.name = name

    def write(self, data: bytes) -> None:
        self._port.write(data)

    def close(self) -> None:
        """A serial port cannot hang up on its client; nothing to do."""


class PtyPort:
    """A pseudo-terminal whose slave side looks like a radio's USB serial port.

    The emulator keeps its own slave descriptor open: otherwise the master reads EIO
    between clients and the terminal settings would reset. Closing the port closes both
    sides, which a client sees as the device being unplugged.
    """

    def __init__(self, handler: LinkHandler, link_path: Path | None = None) -> None:
        self.handler = handler
        self.link_path = link_path
        self.path: str | None = None
        self._master: int | None = None
        self._slave: int | None = None
        self._link: _PtyLink | None = None
        self._pending = bytearray()
        self.dropped_bytes = 0

    def open(self) -> None:
        master, slave = os.openpty()
        # Raw mode: no echo of what we write, no newline translation of binary frames.
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self.path = os.ttyname(slave)
        if self.link_path is not None:
            tmp = self.link_path.with_name(self.link_path.name + ".tmp")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            tmp.symlink_to(self.path)
            tmp.replace(self.link_path)
        loop = asyncio.get_running_loop()
        loop.add_reader(master, self._readable)
        self._link = _PtyLink(self, f"pty {self.path}")
        self.handler.link_opened(self._link)

    def close(self) -> None:
        if self._master is None:
            return
        loop = asyncio.get_running_loop()
        loop.remove_reader(self._master)
        loop.remove_writer(self._master)
        for fd in (self._master, self._slave):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = None
        self._pending.clear()
        if self.link_path is not None and self.path is not None:
            with contextlib.suppress(OSError):
                if os.readlink(self.link_path) == self.path:
                    self.link_path.unlink()
        link, self._link = self._link, None
        if link is not None:
            self.handler.link_closed(link)

    def _readable(self) -> None:
        if self._master is None or self._link is None:
            return
        try:
            data = os.read(self._master, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return  # EIO while no slave is open; ours always is, so this is transient
        if data:
            self.handler.link_data(self._link, data)

    def write(self, data: bytes) -> None:
        if self._master is None:
            return
        if self._pending:
            self._queue(data)
            return
        try:
            written = os.write(self._master, data)
        except (BlockingIOError, InterruptedError):
            written = 0
        except OSError:
            return
        if written < len(data):
            self._queue(data[written:])

    def _queue(self, data: bytes) -> None:
        if len(self._pending) + len(data) > PTY_WRITE_LIMIT:
            self.dropped_bytes += len(data)
            return
        was_empty = not self._pending
        self._pending += data
        if was_empty and self._master is not None:
            asyncio.get_running_loop().add_writer(self._master, self._writable)

    def _writable(self) -> None:
        if self._master is None:
            return
        try:
            written = os.write(self._master, self._pending)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            written = len(self._pending)
        del self._pending[:written]
        if not self._pending:
            asyncio.get_running_loop().remove_writer(self._master)

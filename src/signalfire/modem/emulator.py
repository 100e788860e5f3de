"""The common part of the modem emulators: a pseudo-terminal that speaks AT commands.

The client opens the slave side like a USB serial port (pyserial, termios and all);
the emulator reads the master side in a thread, one command line (ending in CR) at a
time, or a counted binary block, or text up to Ctrl-Z, as the command set requires.
:meth:`PtyModem.unplug` closes both sides, which the client sees as the device gone;
:meth:`PtyModem.replug` makes a new terminal and points ``link_path`` at it, as udev's
``/dev/serial/by-id`` names survive a real replug.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import select
import threading
import time
import tty
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

import httpx

log = logging.getLogger(__name__)

CTRL_Z = b"\x1a"
ESC = b"\x1b"
_Item = TypeVar("_Item")


class NetworkSide(Generic[_Item]):
    """What happens beyond a modem's antenna: a thread carries each accepted message on.

    The modem answers its client at once and hands the message here; ``carry`` (with an
    HTTP client of the thread's own) plays the network: the satellite constellation and
    RockBLOCK's webhook, or the SMSC, the recipient and the SMS forwarder.
    """

    def __init__(self, name: str, carry: Callable[[httpx.Client, _Item], None]) -> None:
        self._name = name
        self._carry = carry
        self._queue: queue.Queue[_Item | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(5)

    def put(self, item: _Item) -> None:
        self._queue.put(item)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """True once every message handed over has been carried (or given up on)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def _run(self) -> None:
        client = httpx.Client(timeout=5.0)
        try:
            while True:
                item = self._queue.get()
                try:
                    if item is None:
                        return
                    self._carry(client, item)
                except Exception:
                    log.exception("%s: the emulated network failed", self._name)
                finally:
                    self._queue.task_done()
        finally:
            client.close()


class PtyModem:
    """Subclasses implement :meth:`handle_line` and, for binary input, :meth:`handle_block`."""

    def __init__(self, link_path: Path | None = None) -> None:
        self.link_path = link_path
        self.echo = True  # modems echo commands until ATE0
        self.commands: list[str] = []  # every command line received, for tests to read
        self._master: int | None = None
        self._slave: int | None = None
        self._tty: str | None = None
        self._buf = bytearray()
        self._need: int | None = None  # bytes of a binary block still expected
        self._until_ctrl_z = False
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._fd_lock = threading.Lock()

    # -- life cycle ------------------------------------------------------------

    @property
    def path(self) -> str:
        """Where a client opens the modem: ``link_path`` if given, else the pty's name."""
        if self.link_path is not None:
            return str(self.link_path)
        assert self._tty is not None, "start the emulator first"
        return self._tty

    @property
    def plugged(self) -> bool:
        return self._master is not None

    def start(self) -> None:
        self._open_pty()
        self._thread = threading.Thread(
            target=self._run, name=f"{type(self).__name__}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self._close_pty()

    def unplug(self) -> None:
        """The USB cable is pulled: the client's next read or write fails."""
        self._close_pty()

    def replug(self) -> None:
        self._close_pty()
        self._open_pty()

    def _open_pty(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo by the tty itself, no CR/LF translation of binary data
        with self._fd_lock:
            self._master, self._slave = master, slave
            self._tty = os.ttyname(slave)
            self._buf.clear()
            self._need = None
            self._until_ctrl_z = False
        if self.link_path is not None:
            tmp = self.link_path.with_name(self.link_path.name + ".tmp")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            tmp.symlink_to(self._tty)
            tmp.replace(self.link_path)

    def _close_pty(self) -> None:
        with self._fd_lock:
            fds, self._master, self._slave = (self._master, self._slave), None, None
        for fd in fds:
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)

    # -- the loop ----------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            master = self._master
            if master is None:
                self._stop.wait(0.02)
                continue
            try:
                ready, _, _ = select.select([master], [], [], 0.05)
                if not ready:
                    continue
                data = os.read(master, 4096)
            except (OSError, ValueError):
                self._stop.wait(0.02)  # unplugged under us, or EIO between clients
                continue
            if data:
                try:
                    self._feed(data)
                except Exception:  # a bug in a handler must not kill the modem
                    log.exception("%s: handler failed", type(self).__name__)

    def _feed(self, data: bytes) -> None:
        self._buf += data
        while self._buf:
            if self._need is not None:
                if len(self._buf) < self._need:
                    return
                block = bytes(self._buf[: self._need])
                del self._buf[: self._need]
                self._need = None
                self.handle_block(block)
                continue
            if self._until_ctrl_z:
                for end in (CTRL_Z, ESC):
                    at = self._buf.find(end)
                    if at >= 0:
                        text = bytes(self._buf[:at])
                        del self._buf[: at + 1]
                        self._until_ctrl_z = False
                        self.handle_text(text, cancelled=end == ESC)
                        break
                else:
                    return
                continue
            at = self._buf.find(b"\r")
            if at < 0:
                if len(self._buf) > 4096:
                    self._buf.clear()  # line noise; a real modem would drop it too
                return
            raw = bytes(self._buf[:at])
            del self._buf[: at + 1]
            line = raw.decode("ascii", "replace").strip()
            if self.echo:
                self.write(raw + b"\r")
            if not line:
                continue
            self.commands.append(line)
            self.handle_line(line)

    # -- for subclasses --------------------------------------------------------------

    def expect_block(self, n: int) -> None:
        """The next ``n`` bytes are binary data for :meth:`handle_block`."""
        self._need = n

    def expect_text(self) -> None:
        """What follows, up to Ctrl-Z (send) or ESC (cancel), goes to :meth:`handle_text`."""
        self._until_ctrl_z = True

    def handle_line(self, line: str) -> None:
        raise NotImplementedError

    def handle_block(self, block: bytes) -> None:
        raise NotImplementedError

    def handle_text(self, text: bytes, *, cancelled: bool) -> None:
        raise NotImplementedError

    def write(self, data: bytes) -> None:
        with self._write_lock:
            master = self._master
            if master is None:
                return
            with contextlib.suppress(OSError):  # unplugged
                os.write(master, data)

    def reply(self, *lines: str) -> None:
        """Each line framed as a modem frames it: CR LF text CR LF."""
        self.write(b"".join(b"\r\n" + line.encode("ascii") + b"\r\n" for line in lines))

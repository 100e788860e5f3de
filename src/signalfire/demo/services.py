"""The demo's moving parts as processes: signalfire services, a Mosquitto broker, a cuttable link.

Each service is the real command an operator runs (`signalfire coordinator
serve`, `signalfire gateway run`, ...) in its own process with its own log
file, so that killing one with SIGKILL is exactly a power cut and nothing in
the demo process can paper over it.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from signalfire.errors import SignalfireError

_SIGNALFIRE = "from signalfire.cli import main; main()"
START_TIMEOUT_S = 30.0


class ServiceError(SignalfireError):
    """A demo service did not start or died; the message names its log file."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float, alive: Service | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None:
            alive.check()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise ServiceError(f"nothing listens on port {port} after {timeout:.0f} s")


class Service:
    """One command in a process of its own, output to ``log``."""

    def __init__(self, name: str, argv: list[str], log: Path, cwd: Path | None = None) -> None:
        self.name = name
        self.argv = argv
        self.log = log
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def signalfire(cls, name: str, args: list[str], log: Path) -> Service:
        return cls(name, [sys.executable, "-c", _SIGNALFIRE, *args], log)

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        out = self.log.open("ab")
        try:
            self.proc = subprocess.Popen(  # noqa: S603 - our own commands, no shell
                self.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.cwd,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                start_new_session=True,  # Ctrl-C in the terminal is the demo's to handle
            )
        finally:
            out.close()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise ServiceError(
                f"{self.name} exited with status {self.proc.returncode}; see {self.log}"
            )

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL if it does not stop in time."""
        if not self.running:
            return
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def kill(self) -> None:
        """SIGKILL: what pulling the power does (no clean shutdown, no flush)."""
        if self.running:
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait(5)


def find_mosquitto() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    for folder in ("/usr/sbin", "/usr/local/sbin"):
        candidate = Path(folder) / "mosquitto"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def mosquitto(binary: str, workdir: Path, port: int) -> Service:
    """A loopback-only broker with persistence, like the one a coordinator site runs."""
    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / "data"
    data.mkdir(exist_ok=True)
    lines = [
        "persistence true",
        f"persistence_location {data}/",
        "allow_anonymous true",  # loopback only, one machine: the demo has no other users
        f"listener {port} 127.0.0.1",
    ]
    if os.getuid() == 0:
        # As root, mosquitto drops to the "mosquitto" user and could not write here.
        lines.insert(0, f"user {pwd.getpwuid(os.getuid()).pw_name}")
    conf = workdir / "mosquitto.conf"
    conf.write_text("\n".join(lines) + "\n")
    return Service("mosquitto", [binary, "-c", str(conf)], workdir / "mosquitto.log")


class CuttableLink:
    """A TCP relay in front of a service: ``cut()`` is a dead uplink, ``restore()`` brings it back.

    While cut, open connections are reset and new ones are refused (accepted
    and closed at once), as a gateway sees when its upstream network is down.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = int(self._listener.getsockname()[1])
        self._cut = threading.Event()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        threading.Thread(target=self._accept, name="link-accept", daemon=True).start()

    @property
    def is_cut(self) -> bool:
        return self._cut.is_set()

    def cut(self) -> None:
        self._cut.set()
        with self._lock:
            for s in list(self._open):
                _reset(s)
            self._open.clear()

    def restore(self) -> None:
        self._cut.clear()

    def close(self) -> None:
        self._closed.set()
        self.cut()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._cut.is_set():
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                self._open.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with self._lock:
                    self._open.discard(s)
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()


def _reset(s: socket.socket) -> None:
    # SO_LINGER 0: close sends RST, the way a dropped route looks to the sender.
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
    except OSError:
        pass

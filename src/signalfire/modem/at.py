"""An AT command channel over pyserial: commands, final result codes, binary transfers.

Modems answer a command with lines framed by CR LF and a final result code (``OK``,
``ERROR``, ``+CME ERROR: n``, ``+CMS ERROR: n``; Iridium's SBD commands also answer with
bare digits before ``OK``). Lines that arrive unasked (``+CDS: ...`` delivery reports,
``SBDRING``) are kept in :attr:`AtChannel.unsolicited` for whoever waits for them.

A modem that disappears (USB unplugged, the pty closed) raises :class:`ModemGone`; the
caller closes the channel and opens it again later.
"""

from __future__ import annotations

import contextlib
import logging
import termios
import time
from collections import deque
from collections.abc import Callable, Iterable

import serial

log = logging.getLogger(__name__)

FINAL_OK = "OK"
FINAL_ERRORS = ("ERROR", "+CME ERROR", "+CMS ERROR", "NO CARRIER")
DEFAULT_TIMEOUT_S = 5.0
_READ_CHUNK = 512


class ModemError(Exception):
    """The modem refused, failed or did not answer; ``transient`` as for UplinkError."""

    def __init__(self, message: str, *, transient: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient


class ModemTimeout(ModemError):
    """No (complete) answer within the time allowed."""


class ModemGone(ModemError):
    """The serial port went away (unplugged, closed): reopen it later."""


class AtChannel:
    """One serial port speaking AT commands. Not thread-safe: one user at a time."""

    def __init__(
        self,
        port: str,
        *,
        baudrate: int = 19200,
        open_port: Callable[..., serial.Serial] | None = None,
        unsolicited_prefixes: Iterable[str] = (),
    ) -> None:
        self.port = port
        self.baudrate = baudrate
        self._open_port = open_port or serial.Serial
        self._serial: serial.Serial | None = None
        self._buf = bytearray()
        self.unsolicited: deque[tuple[str, str]] = deque(maxlen=1000)  # (line, next line)
        # A +CDS line in PDU mode is followed by the PDU on its own line: keep both.
        self._unsolicited_prefixes = tuple(unsolicited_prefixes)

    # -- port ------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self._serial is not None

    def open(self) -> None:
        if self._serial is not None:
            return
        try:
            self._serial = self._open_port(
                self.port, baudrate=self.baudrate, timeout=0.05, write_timeout=5
            )
        except (serial.SerialException, OSError, termios.error) as exc:
            raise ModemGone(f"cannot open modem port {self.port}: {exc}") from None
        self._buf.clear()

    def close(self) -> None:
        port, self._serial = self._serial, None
        if port is not None:
            with contextlib.suppress(serial.SerialException, OSError, termios.error):
                port.close()  # may be gone already

    def _port(self) -> serial.Serial:
        if self._serial is None:
            self.open()
        assert self._serial is not None
        return self._serial

    # -- bytes -----------------------------------------------------------------

    def write(self, data: bytes) -> None:
        port = self._port()
        try:
            port.write(data)
            port.flush()
        except (serial.SerialException, OSError, termios.error) as exc:
            self.close()
            raise ModemGone(f"modem on {self.port} went away while writing: {exc}") from None

    def _fill(self, deadline: float) -> bool:
        """Read what is there (waiting at most until ``deadline``); False on timeout."""
        port = self._port()
        while True:
            try:
                chunk = port.read(_READ_CHUNK)
            except (serial.SerialException, OSError, TypeError, termios.error) as exc:
                # pyserial raises SerialException ("device reports readiness to read but
                # returned no data") when the other end is gone; TypeError when the port was
                # closed under it.
                self.close()
                raise ModemGone(f"modem on {self.port} went away: {exc}") from None
            if chunk:
                self._buf += chunk
                return True
            if time.monotonic() >= deadline:
                return False

    def skip_line_ends(self, deadline: float) -> None:
        """Drop CR and LF bytes before binary data (leftovers of the last line)."""
        while True:
            while self._buf and self._buf[0] in (0x0D, 0x0A):
                del self._buf[:1]
            if self._buf or not self._fill(deadline):
                return

    def read_exact(self, n: int, deadline: float) -> bytes:
        while len(self._buf) < n:
            if not self._fill(deadline):
                raise ModemTimeout(f"modem sent {len(self._buf)} of {n} bytes expected")
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def read_line(self, deadline: float) -> str:
        """The next non-empty line (CR/LF stripped)."""
        while True:
            cr, lf = self._buf.find(b"\r"), self._buf.find(b"\n")
            ends = [i for i in (cr, lf) if i >= 0]
            if ends:
                at = min(ends)
                line = bytes(self._buf[:at]).decode("ascii", "replace").strip()
                del self._buf[: at + 1]
                if self._buf[:1] == b"\n" and at == cr:
                    del self._buf[:1]  # the LF of a CR LF
                if line:
                    return line
                continue
            if not self._fill(deadline):
                raise ModemTimeout("modem did not answer in time")

    def expect(self, wanted: str, deadline: float) -> None:
        """Read lines until ``wanted`` (e.g. READY); an error code raises."""
        while True:
            line = self.read_line(deadline)
            if line == wanted:
                return
            if self._keep_unsolicited(line, deadline):
                continue
            if line.startswith(FINAL_ERRORS):
                raise ModemError(f"modem answered {line!r} instead of {wanted}")

    def expect_prompt(self, prompt: bytes, deadline: float) -> None:
        """Wait for a prompt that is not a whole line (the ``> `` of AT+CMGS)."""
        while True:
            at = self._buf.find(prompt)
            if at >= 0:
                before = bytes(self._buf[:at])
                del self._buf[: at + len(prompt)]
                # A delivery report the modem sent just before the prompt must not be
                # thrown away with the line ends: it may be the only one for that message.
                self._keep_lines(before)
                return
            text = bytes(self._buf).decode("ascii", "replace")
            if any(e in text for e in FINAL_ERRORS):
                line = self.read_line(deadline)
                raise ModemError(f"modem answered {line!r} instead of the prompt")
            if not self._fill(deadline):
                raise ModemTimeout("modem did not prompt for the message")

    # -- commands --------------------------------------------------------------

    def command(self, cmd: str, timeout: float = DEFAULT_TIMEOUT_S) -> list[str]:
        """Send ``cmd`` (without CR) and return the lines before OK; an error raises."""
        self.send_line(cmd)
        return self.final(cmd, time.monotonic() + timeout)

    def send_line(self, cmd: str) -> None:
        log.debug("modem %s <- %s", self.port, cmd)
        self.write(cmd.encode("ascii") + b"\r")

    def final(self, cmd: str, deadline: float) -> list[str]:
        """Lines up to the final result code of ``cmd`` (its echo skipped)."""
        lines: list[str] = []
        while True:
            line = self.read_line(deadline)
            if line == cmd:
                continue  # echo (ATE1, the modem's default until ATE0 is through)
            if line == FINAL_OK:
                return lines
            if line.startswith(FINAL_ERRORS):
                raise ModemError(f"modem answered {line!r} to {cmd}")
            if self._keep_unsolicited(line, deadline):
                continue
            lines.append(line)

    def _keep_unsolicited(self, line: str, deadline: float) -> bool:
        if not line.startswith(self._unsolicited_prefixes) or not self._unsolicited_prefixes:
            return False
        follow = ""
        if line.startswith("+CDS:") or line.startswith("+CMT:"):
            follow = self.read_line(deadline)  # the PDU, on the next line
        self.unsolicited.append((line, follow))
        return True

    def _keep_lines(self, text: bytes) -> None:
        lines = [
            line.strip()
            for line in text.decode("ascii", "replace").replace("\r", "\n").split("\n")
            if line.strip()
        ]
        while lines:
            line = lines.pop(0)
            if self._unsolicited_prefixes and line.startswith(self._unsolicited_prefixes):
                follow = ""
                if line.startswith(("+CDS:", "+CMT:")) and lines:
                    follow = lines.pop(0)
                self.unsolicited.append((line, follow))
            else:
                log.debug("modem %s: unexpected line %r before a prompt", self.port, line)

    def poll_unsolicited(self, timeout: float) -> None:
        """Read whatever arrives within ``timeout`` into :attr:`unsolicited`."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.read_line(deadline)
            except ModemTimeout:
                return
            if not self._keep_unsolicited(line, deadline):
                log.debug("modem %s: unexpected line %r", self.port, line)

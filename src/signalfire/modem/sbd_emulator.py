"""An Iridium SBD transceiver (RockBLOCK 9603) and the RockBLOCK service behind it, emulated.

The modem side speaks the AT commands of :mod:`signalfire.modem.sbd` on a
pseudo-terminal: AT, ATE0/ATE1, AT&K0, AT+CGSN, AT+CSQ, AT+SBDWB, AT+SBDIX, AT+SBDRB,
AT+SBDD0/1/2, with the MO status codes of the ISU AT Command Reference. Tests set the
signal (:attr:`SbdEmulator.signal`; 0 bars makes a session fail with 32, no network),
script failures (:meth:`SbdEmulator.fail_next`), queue mobile-terminated messages
(:meth:`SbdEmulator.queue_mt`) and pull the plug (:meth:`PtyModem.unplug`).

The service side does what RockBLOCK's does with a mobile-originated message: it
POSTs it to a delivery URL as a form (imei, device_type, serial, momsn, transmit_time,
iridium_latitude, iridium_longitude, iridium_cep, data as hex), retrying until the
endpoint answers 2xx, from its own thread, after the session has succeeded. Or it
hands the same fields to a callback.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import httpx

from .emulator import NetworkSide, PtyModem
from .sbd import MO_MAX, checksum

log = logging.getLogger(__name__)

DEFAULT_IMEI = "300434063480220"


class SbdEmulator(PtyModem):
    def __init__(
        self,
        *,
        imei: str = DEFAULT_IMEI,
        webhook_url: str | None = None,
        deliver: Callable[[dict[str, str]], None] | None = None,
        link_path: Path | None = None,
        session_delay_s: float = 0.0,
        write_timeout_s: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(link_path)
        self.imei = imei
        self.webhook_url = webhook_url
        self.deliver = deliver
        self.session_delay_s = session_delay_s
        self.write_timeout_s = write_timeout_s
        self.clock = clock
        self.signal = 5
        self.momsn = 0
        self.mtmsn = 0
        self.mo_buffer = b""
        self.mt_buffer = b""
        self.mt_queue: deque[bytes] = deque()
        self._failures: deque[int] = deque()
        self.sessions = 0
        self.sent: list[tuple[int, bytes]] = []  # (momsn, data) of every successful MO
        self.posts: list[dict[str, str]] = []  # every delivery made (after any retries)
        self.delivery_attempts = 0
        self._network = NetworkSide("rockblock", self._deliver)
        self._write_timer: threading.Timer | None = None
        self._pending_write = 0

    # -- control from tests ------------------------------------------------------

    def fail_next(self, *codes: int) -> None:
        """The next sessions fail with these MO status codes, in order."""
        self._failures.extend(codes)

    def queue_mt(self, data: bytes) -> None:
        """A mobile-terminated message waiting at the gateway for this modem."""
        if not 1 <= len(data) <= 270:
            raise ValueError("an MT message is 1-270 bytes")
        self.mt_queue.append(data)

    def wait_delivered(self, count: int, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while len(self.posts) < count:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def start(self) -> None:
        super().start()
        self._network.start()

    def stop(self) -> None:
        self._network.stop()
        super().stop()

    # -- AT commands ---------------------------------------------------------------

    def handle_line(self, line: str) -> None:
        cmd = line.upper()
        if cmd in ("AT", "AT&K0", "AT&K3", "AT+SBDMTA=0", "AT+SBDMTA=1"):
            self.reply("OK")
        elif cmd in ("ATE0", "ATE1"):
            self.echo = cmd == "ATE1"
            self.reply("OK")
        elif cmd == "AT+CGSN":
            self.reply(self.imei, "OK")
        elif cmd in ("AT+CSQ", "AT+CSQF"):
            self.reply(f"+CSQ:{self.signal}", "OK")
        elif cmd.startswith("AT+SBDWB="):
            self._write_binary(cmd)
        elif cmd in ("AT+SBDIX", "AT+SBDIXA"):
            self._session()
        elif cmd == "AT+SBDRB":
            body = self.mt_buffer
            self.write(len(body).to_bytes(2, "big") + body + checksum(body))
            self.reply("OK")
        elif cmd in ("AT+SBDD0", "AT+SBDD1", "AT+SBDD2"):
            if cmd[-1] in "02":
                self.mo_buffer = b""
            if cmd[-1] in "12":
                self.mt_buffer = b""
            self.reply("0", "OK")
        else:
            self.reply("ERROR")

    def _write_binary(self, cmd: str) -> None:
        try:
            length = int(cmd.split("=", 1)[1])
        except ValueError:
            self.reply("ERROR")
            return
        if not 1 <= length <= MO_MAX:
            self.reply("3", "OK")
            return
        self._pending_write = length
        self.expect_block(length + 2)
        self.reply("READY")
        # The modem gives up after 60 s without the whole message (status 1).
        timer = threading.Timer(self.write_timeout_s, self._write_timed_out)
        timer.daemon = True
        self._write_timer = timer
        timer.start()

    def _write_timed_out(self) -> None:
        if self._need is not None:
            self._need = None
            self._buf.clear()
            self.reply("1", "OK")

    def handle_block(self, block: bytes) -> None:
        if self._write_timer is not None:
            self._write_timer.cancel()
        data, got = block[:-2], block[-2:]
        if got != checksum(data):
            self.reply("2", "OK")
            return
        self.mo_buffer = data
        self.reply("0", "OK")

    def _session(self) -> None:
        self.sessions += 1
        if self.session_delay_s:
            time.sleep(self.session_delay_s)  # the modem is busy talking to the satellite
        if not self.plugged:
            return  # unplugged mid-session: the client never hears the answer
        if self._failures:
            code = self._failures.popleft()
        elif self.signal < 1:
            code = 32
        else:
            code = 0
        if not 0 <= code <= 4:
            self.reply(f"+SBDIX: {code}, {self.momsn}, 2, {self.mtmsn}, 0, 0", "OK")
            return
        momsn = self.momsn
        self.momsn = (self.momsn + 1) & 0xFFFF
        if self.mo_buffer:
            self.sent.append((momsn, self.mo_buffer))
            self._network.put(self._form(momsn, self.mo_buffer))
        mt_status, mt_len = 0, 0
        if self.mt_queue:
            self.mt_buffer = self.mt_queue.popleft()
            self.mtmsn = (self.mtmsn + 1) & 0xFFFF
            mt_status, mt_len = 1, len(self.mt_buffer)
        self.reply(
            f"+SBDIX: {code}, {momsn}, {mt_status}, {self.mtmsn}, {mt_len}, {len(self.mt_queue)}",
            "OK",
        )

    # -- the RockBLOCK service -----------------------------------------------------

    def _form(self, momsn: int, data: bytes) -> dict[str, str]:
        when = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
        return {
            "imei": self.imei,
            "device_type": "ROCKBLOCK",
            "serial": "16302",
            "momsn": str(momsn),
            "transmit_time": when.strftime("%y-%m-%d %H:%M:%S"),
            "iridium_latitude": "40.1843",
            "iridium_longitude": "44.5154",
            "iridium_cep": "5.0",
            "data": data.hex(),
        }

    def _deliver(self, client: httpx.Client, form: dict[str, str]) -> None:
        """RockBLOCK posts a message until the webhook takes it, backing off."""
        delay = 0.05
        while not self._stop.is_set():
            self.delivery_attempts += 1
            if self._post(client, form):
                self.posts.append(form)
                return
            self._stop.wait(delay)
            delay = min(2.0, delay * 2)

    def _post(self, client: httpx.Client, form: dict[str, str]) -> bool:
        if self.deliver is not None:
            try:
                self.deliver(form)
            except Exception:
                log.exception("delivery callback failed; retrying")
                return False
            return True
        if self.webhook_url is None:
            return True  # nowhere to deliver: the message is dropped, as with no delivery group
        try:
            answer = client.post(self.webhook_url, data=form)
        except httpx.HTTPError:
            return False
        return 200 <= answer.status_code < 300

"""A GSM modem, its network and an SMS-to-HTTP forwarder (Kannel) behind it, emulated.

The modem side speaks the AT commands of :mod:`signalfire.modem.gsm` on a
pseudo-terminal: AT, ATE0/ATE1, AT+CMEE, AT+CPIN, AT+CSQ, AT+CREG?, AT+CMGF, AT+CNMI,
AT+CSCA, AT+CPMS, AT+CMGS (PDU mode), AT+CMGR, AT+CMGD. Every PDU it is given is checked
with the project's decoder: a length that does not match the TPDU, bad hex or a PDU
that does not decode is ``+CMS ERROR: 304`` (invalid PDU mode parameter), as a modem
would answer.

The network side does what an SMSC, the recipient's modem and Kannel's ``sms-service``
do with an accepted SMS, from a thread of its own: it requests the coordinator's SMS
webhook like Kannel's get-url (``from``, ``time``, ``coding=2``, ``udh``, ``data``, the
last two URL-encoded binary), retrying until the webhook answers 2xx, and then, for an
SMS that asked for one, sends the modem a status report: ``+CDS: <length>`` and the
SMS-STATUS-REPORT PDU (``AT+CNMI=...,1,...``), or ``+CDSI: "SR",<index>`` with the
report kept for AT+CMGR (``...,2,...``). Unsolicited lines are held while a command is
running and sent after its final result code, as modems buffer them.

Tests make it misbehave: :meth:`GsmEmulator.fail_next` (``+CMS ERROR`` codes for the
next submissions: 42 congestion, 38 network out of order...), :attr:`registration`
(0 or 2: lost the network), :attr:`rssi` (weak signal), :meth:`drop_reports` (the
message is delivered but its status report never comes), :meth:`fail_reports` (the
SMSC reports a failure and delivers nothing), :attr:`pin` (a SIM that wants its PIN),
:attr:`sim_inserted`, :attr:`direct_reports` (a modem that only stores reports).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote_from_bytes

import httpx

from .emulator import NetworkSide, PtyModem
from .pdu import (
    PduError,
    StatusReport,
    Submit,
    decode_submit,
    encode_status_report,
    encode_udh,
    tpdu_length,
)

log = logging.getLogger(__name__)

DEFAULT_NUMBER = "+37491000001"


@dataclass
class Accepted:
    """An SMS the emulated network took (what AT+CMGS answered with +CMGS)."""

    mr: int
    submit: Submit
    pdu: bytes


class GsmEmulator(PtyModem):
    def __init__(
        self,
        *,
        number: str = DEFAULT_NUMBER,
        webhook_url: str | None = None,
        deliver: Callable[[dict[str, bytes]], None] | None = None,
        link_path: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(link_path)
        self.number = number  # the SIM's number: what the forwarder reports as the sender
        self.webhook_url = webhook_url
        self.deliver = deliver
        self.clock = clock
        self.sim_inserted = True
        self.pin: str | None = None  # set: the SIM wants this PIN before anything else
        self.rssi = 20
        self.registration = 1
        self.direct_reports = True  # False: AT+CNMI with <ds>=1 is refused (store only)
        self.cmee = 0
        self.cmgf = 1  # modems start in text mode; the client must switch to PDU mode
        self.cnmi_ds = 0
        self.smsc = "+37491000000"
        self.next_mr = 0
        self.accepted: list[Accepted] = []
        self.posts: list[tuple[dict[str, bytes], Any]] = []  # (fields, webhook answer)
        self.reports: list[StatusReport] = []  # every status report sent to the modem
        self.stored: dict[int, bytes] = {}  # status reports kept for AT+CMGR (<ds>=2)
        self._failures: deque[int] = deque()
        self._drop_reports = 0
        self._fail_reports: deque[int] = deque()
        self._pending_len: int | None = None  # AT+CMGS=<n> waiting for its PDU
        self._busy = False
        self._held: list[bytes] = []
        self._urc_lock = threading.Lock()
        self._network = NetworkSide("smsc", self._carry)

    # -- control from tests ------------------------------------------------------

    def fail_next(self, *codes: int) -> None:
        """The next AT+CMGS are answered ``+CMS ERROR: <code>``, in order (0: accepted)."""
        self._failures.extend(codes)

    def drop_reports(self, count: int = 1) -> None:
        """The next ``count`` messages are delivered, but their status reports are lost."""
        self._drop_reports += count

    def fail_reports(self, *statuses: int) -> None:
        """The next messages are not delivered; their reports carry these TP-ST values."""
        self._fail_reports.extend(statuses)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """True once every accepted SMS has been handled by the network thread."""
        return self._network.wait_idle(timeout)

    def start(self) -> None:
        super().start()
        self._network.start()

    def stop(self) -> None:
        self._network.stop()
        super().stop()

    # -- output --------------------------------------------------------------------

    def _finish(self, *lines: str) -> None:
        """The final result of a command; then what was held back while it ran."""
        with self._urc_lock:
            self.reply(*lines)
            self._busy = False
            held, self._held = self._held, []
            for data in held:
                self.write(data)

    def _unsolicited(self, *lines: str) -> None:
        data = b"".join(b"\r\n" + line.encode("ascii") + b"\r\n" for line in lines)
        with self._urc_lock:
            if self._busy:
                self._held.append(data)
            else:
                self.write(data)

    def _cme(self, code: int) -> None:
        self._finish(f"+CME ERROR: {code}" if self.cmee else "ERROR")

    # -- AT commands ---------------------------------------------------------------

    def handle_line(self, line: str) -> None:
        with self._urc_lock:
            self._busy = True
        # ESC in command mode is nothing (the client sends one to cancel a stale prompt).
        cmd = line.replace("\x1b", "").strip()
        upper = cmd.upper()
        if not upper:
            self._finish()
            return
        if upper in ("AT", "ATZ"):
            self._finish("OK")
        elif upper in ("ATE0", "ATE1"):
            self.echo = upper == "ATE1"
            self._finish("OK")
        elif upper.startswith("AT+CMEE="):
            self.cmee = 1 if upper.endswith(("1", "2")) else 0
            self._finish("OK")
        elif upper == "AT+CPIN?":
            if not self.sim_inserted:
                self._cme(10)
            elif self.pin is not None:
                self._finish("+CPIN: SIM PIN", "OK")
            else:
                self._finish("+CPIN: READY", "OK")
        elif upper.startswith("AT+CPIN="):
            given = cmd.split("=", 1)[1].strip('"')
            if self.pin is None:
                self._cme(3)  # operation not allowed: no PIN asked for
            elif given == self.pin:
                self.pin = None
                self._finish("OK")
            else:
                self._cme(16)
        elif upper == "AT+CSQ":
            self._finish(f"+CSQ: {self.rssi},0", "OK")
        elif upper == "AT+CREG?":
            self._finish(f"+CREG: 0,{self.registration}", "OK")
        elif upper in ("AT+CMGF=0", "AT+CMGF=1"):
            self.cmgf = int(upper[-1])
            self._finish("OK")
        elif upper == "AT+CMGF?":
            self._finish(f"+CMGF: {self.cmgf}", "OK")
        elif upper.startswith("AT+CNMI="):
            self._cnmi(upper)
        elif upper.startswith("AT+CSCA="):
            self.smsc = cmd.split("=", 1)[1].split(",")[0].strip('"')
            self._finish("OK")
        elif upper.startswith("AT+CPMS="):
            self._finish(f"+CPMS: {len(self.stored)},20,0,20,0,20", "OK")
        elif upper.startswith("AT+CMGR="):
            self._read_stored(upper)
        elif upper.startswith("AT+CMGD="):
            try:
                self.stored.pop(int(upper.split("=", 1)[1].split(",")[0]), None)
            except ValueError:
                self._finish("+CMS ERROR: 321")
                return
            self._finish("OK")
        elif upper.startswith("AT+CMGS="):
            self._submit_command(upper)
        else:
            self._finish("ERROR")

    def _cnmi(self, cmd: str) -> None:
        try:
            values = [int(v) if v else 0 for v in cmd.split("=", 1)[1].split(",")]
        except ValueError:
            self._finish("+CMS ERROR: 303")
            return
        ds = values[3] if len(values) > 3 else 0
        if ds not in (0, 1, 2) or (ds == 1 and not self.direct_reports):
            self._finish("+CMS ERROR: 303")
            return
        self.cnmi_ds = ds
        self._finish("OK")

    def _read_stored(self, cmd: str) -> None:
        try:
            index = int(cmd.split("=", 1)[1])
        except ValueError:
            self._finish("+CMS ERROR: 321")
            return
        pdu = self.stored.get(index)
        if pdu is None:
            self._finish("+CMS ERROR: 321")
            return
        self._finish(f"+CMGR: 0,,{tpdu_length(pdu)}", pdu.hex().upper(), "OK")

    def _submit_command(self, cmd: str) -> None:
        if not self.sim_inserted:
            self._finish("+CMS ERROR: 310")
            return
        if self.pin is not None:
            self._finish("+CMS ERROR: 311")
            return
        if self.cmgf != 0:
            self._finish("+CMS ERROR: 302")  # text mode wants AT+CMGS="<number>"
            return
        try:
            length = int(cmd.split("=", 1)[1])
        except ValueError:
            self._finish("+CMS ERROR: 304")
            return
        if not 7 <= length <= 164:  # a TPDU with 0-140 octets of user data
            self._finish("+CMS ERROR: 304")
            return
        self._pending_len = length
        self.expect_text()
        self.write(b"\r\n> ")

    def handle_text(self, text: bytes, *, cancelled: bool) -> None:
        length, self._pending_len = self._pending_len, None
        if cancelled or length is None:
            self._finish("OK")  # ESC: nothing is sent
            return
        try:
            pdu = bytes.fromhex(text.decode("ascii").strip())
            if tpdu_length(pdu) != length:
                raise PduError(f"TPDU is {tpdu_length(pdu)} octets, AT+CMGS said {length}")
            submit = decode_submit(pdu)
        except (ValueError, UnicodeDecodeError) as exc:  # PduError is a ValueError
            log.info("gsm emulator: refused a PDU: %s", exc)
            self._finish("+CMS ERROR: 304")
            return
        if self.registration not in (1, 5):
            self._finish("+CMS ERROR: 331")
            return
        code = self._failures.popleft() if self._failures else 0
        if code:
            self._finish(f"+CMS ERROR: {code}")
            return
        mr = self.next_mr
        self.next_mr = (mr + 1) & 0xFF
        item = Accepted(mr, submit, pdu)
        self.accepted.append(item)
        self._network.put(item)
        self._finish(f"+CMGS: {mr}", "OK")

    # -- the network: SMSC, recipient, forwarder --------------------------------------

    def _carry(self, client: httpx.Client, item: Accepted) -> None:
        status = 0x00
        if self._fail_reports:
            status = self._fail_reports.popleft()  # not delivered; the SMSC says why
        else:
            fields = self._fields(item.submit)
            delay = 0.05
            while not self._stop.is_set():
                ok, answer = self._post(client, fields)
                if ok:
                    self.posts.append((fields, answer))
                    break
                self._stop.wait(delay)
                delay = min(1.0, delay * 2)
        if not item.submit.status_report:
            return
        if status == 0x00 and self._drop_reports > 0:
            self._drop_reports -= 1
            return
        now = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
        report = StatusReport(item.mr, item.submit.destination, now, now, status)
        self.reports.append(report)
        pdu = encode_status_report(report)
        if self.cnmi_ds == 1:
            self._unsolicited(f"+CDS: {tpdu_length(pdu)}", pdu.hex().upper())
        elif self.cnmi_ds == 2:
            index = max(self.stored, default=0) + 1
            self.stored[index] = pdu
            self._unsolicited(f'+CDSI: "SR",{index}')
        # <ds>=0: the modem keeps no report; the sender never hears (as asked).

    def _fields(self, submit: Submit) -> dict[str, bytes]:
        when = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
        return {
            "from": self.number.encode(),
            "time": when.strftime("%Y-%m-%d %H:%M").encode(),
            "coding": b"2",
            "udh": encode_udh(submit.concat),
            "data": submit.data,
        }

    def _post(self, client: httpx.Client, fields: dict[str, bytes]) -> tuple[bool, Any]:
        if self.deliver is not None:
            try:
                self.deliver(fields)
            except Exception:
                log.exception("delivery callback failed; retrying")
                return False, None
            return True, None
        if self.webhook_url is None:
            return True, None
        # Kannel's get-url with %p %t %c %u %b: binary fields URL-encoded byte by byte.
        query = "&".join(f"{k}={quote_from_bytes(v)}" for k, v in fields.items())
        try:
            answer = client.get(f"{self.webhook_url}?{query}")
        except httpx.HTTPError:
            return False, None
        if not 200 <= answer.status_code < 300:
            return False, answer.status_code
        try:
            return True, answer.json()
        except ValueError:
            return True, answer.text

"""A real Mosquitto broker for tests: Debian's binary, a generated config, a free loopback port.

    broker = Mosquitto(tmp_path)          # users={"gw": "pw"}, tls=True, client_certificates=True
    broker.start(); broker.stop(); broker.start()   # same port, sessions and queues kept
    broker.kill()                         # SIGKILL: what a power cut does to the broker
    broker.pause(); broker.resume()       # SIGSTOP/SIGCONT: a broker that hangs

Persistence is on, in the broker's own directory, so a broker that is stopped
and started again keeps persistent sessions, their subscriptions and queued
QoS 1 messages, as a production broker would.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HOST = "127.0.0.1"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


def find_binary(name: str = "mosquitto") -> str | None:
    """The Debian package puts the broker in /usr/sbin, which is not on a normal user's PATH."""
    found = shutil.which(name)
    if found:
        return found
    for folder in ("/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"):
        candidate = Path(folder) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def require_binary(name: str = "mosquitto") -> str:
    """The binary's path; skip the test loudly without it, or fail it in CI."""
    found = find_binary(name)
    if found:
        return found
    reason = (
        f"MOSQUITTO NOT INSTALLED: `{name}` not found on PATH or in /usr/sbin, so the MQTT "
        "tests with a real broker did not run. Install it with scripts/setup (as root) or "
        "`sudo apt-get install mosquitto`."
    )
    if os.environ.get("CI") == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class BrokerError(RuntimeError):
    pass


@dataclass(frozen=True)
class TlsFiles:
    """A throw-away CA, a broker certificate for 127.0.0.1/localhost and a client certificate."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_tls_files(folder: Path, *, client_name: str = "gateway") -> TlsFiles:
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "signalfire test CA")])
    ca_cert = (
        _cert_builder(ca_name, ca_name, ca_key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )

    def issue(
        name: str, san: list[x509.GeneralName], usage: x509.ObjectIdentifier
    ) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        cert = (
            _cert_builder(subject, ca_name, key.public_key(), now)
            .add_extension(x509.SubjectAlternativeName(san), critical=False)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return cert.public_bytes(serialization.Encoding.PEM), key_pem

    server = issue(
        "localhost",
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))],
        ExtendedKeyUsageOID.SERVER_AUTH,
    )
    client = issue(client_name, [x509.DNSName(client_name)], ExtendedKeyUsageOID.CLIENT_AUTH)
    files = TlsFiles(
        ca=folder / "ca.pem",
        server_cert=folder / "server.pem",
        server_key=folder / "server.key",
        client_cert=folder / "client.pem",
        client_key=folder / "client.key",
    )
    files.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.server_cert.write_bytes(server[0])
    files.server_key.write_bytes(server[1])
    files.client_cert.write_bytes(client[0])
    files.client_key.write_bytes(client[1])
    for key_path in (files.server_key, files.client_key):
        key_path.chmod(0o600)
    return files


def _cert_builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    now: datetime.datetime,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )


class Mosquitto:
    """One broker process with its config, password file, persistence and log in ``workdir``."""

    def __init__(
        self,
        workdir: Path,
        *,
        port: int | None = None,
        users: dict[str, str] | None = None,
        tls: bool = False,
        client_certificates: bool = False,
        extra_config: str = "",
    ) -> None:
        self.binary = require_binary("mosquitto")
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.host = HOST
        self.port = port or free_port()
        self.users = dict(users or {})
        self.log_path = self.workdir / "mosquitto.log"
        self.config_path = self.workdir / "mosquitto.conf"
        self.data_dir = self.workdir / "data"
        self.data_dir.mkdir(exist_ok=True)
        self._proc: subprocess.Popen[bytes] | None = None
        # TLS only: the files a client needs (the CA to trust, a certificate to present).
        self.tls: TlsFiles | None = None
        if tls or client_certificates:
            self.tls = make_tls_files(self.workdir / "tls")
        self._write_config(extra_config, client_certificates)

    def _write_config(self, extra: str, client_certificates: bool) -> None:
        lines = [
            # Mosquitto started as root switches to the `mosquitto` user, which cannot write
            # into a root-owned temp dir; naming the current user keeps it as it is.
            f"user {pwd.getpwuid(os.getuid()).pw_name}",
            "persistence true",
            f"persistence_location {self.data_dir}/",
            f"log_dest file {self.log_path}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            "log_timestamp_format %H:%M:%S",
            # The default per-client queue (1000) silently drops QoS 1 messages for a
            # subscriber that falls behind; a coordinator broker must not do that. Not 0
            # ("no limit"): Mosquitto 2.0 then disconnects any client whose publication
            # the ACL denies, losing the PUBACK that says why.
            "max_queued_messages 1000000",
        ]
        if self.users:
            password_file = self.workdir / "passwd"
            password_file.write_text("")
            password_file.chmod(0o600)
            passwd = require_binary("mosquitto_passwd")
            for user, password in self.users.items():
                subprocess.run(
                    [passwd, "-b", str(password_file), user, password],
                    check=True,
                    capture_output=True,
                )
            lines += ["allow_anonymous false", f"password_file {password_file}"]
        else:
            lines.append("allow_anonymous true")
        if extra:
            lines.append(extra)
        # Listener options (TLS) belong after the listener line they apply to.
        lines.append(f"listener {self.port} {HOST}")
        if self.tls is not None:
            lines += [
                f"cafile {self.tls.ca}",
                f"certfile {self.tls.server_cert}",
                f"keyfile {self.tls.server_key}",
            ]
            if client_certificates:
                lines += ["require_certificate true", "use_identity_as_username true"]
        self.config_path.write_text("\n".join(lines) + "\n")

    # -- process control -------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.running and self._proc else None

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start the broker and return once it accepts TCP connections on its port."""
        if self.running:
            return
        with open(self.workdir / "stdout.log", "ab") as out:
            self._proc = subprocess.Popen(
                [self.binary, "-c", str(self.config_path)],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                raise BrokerError(f"mosquitto exited with code {code} at start:\n{self.log_tail()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.02)
        self.kill()
        raise BrokerError(f"mosquitto did not listen on port {self.port} in {timeout}s")

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM: the broker disconnects clients and saves its persistence file."""
        self._signal(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """SIGKILL: no goodbye and no save, as on a power cut."""
        self._signal(signal.SIGKILL, STOP_TIMEOUT)

    def pause(self) -> None:
        """SIGSTOP: the broker keeps its sockets open but answers nothing (a hung link)."""
        if self._proc is not None and self.running:
            self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self._proc is not None and self.running:
            self._proc.send_signal(signal.SIGCONT)

    def restart(self) -> None:
        self.stop()
        self.start()

    def _signal(self, sig: signal.Signals, timeout: float) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGCONT)  # a paused broker cannot act on SIGTERM
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)

    def log_tail(self, lines: int = 30) -> str:
        parts = []
        for path in (self.log_path, self.workdir / "stdout.log"):
            if path.exists():
                parts += path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(parts)

    def __enter__(self) -> Mosquitto:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Mosquitto {self.host}:{self.port} {state} in {self.workdir}>"

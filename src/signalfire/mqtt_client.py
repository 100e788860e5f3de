"""What the gateway's MQTT uplink and the coordinator's MQTT ingest share about paho."""

from __future__ import annotations

import ssl

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode


class RememberingClient(paho.Client):
    """paho's client, remembering why the last connection attempt failed.

    paho's network thread swallows the OSError of a failed connect (refused,
    timed out, TLS certificate rejected) and retries; the operator needs it.
    """

    last_connect_error: OSError | None = None

    def reconnect(self) -> MQTTErrorCode:
        try:
            rc = super().reconnect()
        except OSError as exc:
            self.last_connect_error = exc
            raise
        self.last_connect_error = None
        return rc


def describe_connect_error(exc: OSError | None) -> str:
    """A failed connection in words an operator can act on."""
    if exc is None:
        return "connection failed"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate rejected ({exc.verify_message}); check ca_file and the host name"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed ({exc.reason or exc})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the broker running and listening on this port?)"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return exc.strerror or str(exc) or type(exc).__name__

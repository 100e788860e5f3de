"""USB bundle uplink: signed batch files written to a directory (a USB stick carried out).

A bundle file is one signed batch envelope (docs/protocol.md section 15)
written atomically and fsync'd; only then are its packets done for this
uplink. `signalfire bundle import` ingests the files anywhere, idempotently.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ... import batch, wire
from ...keyfiles import atomic_write
from ..records import StoredPacket
from .base import Delivery, UplinkError
from .https import batch_id_for, batch_items

SUFFIX = ".sfbundle"
FILE_MODE = 0o644  # reports inside are sealed to the network key; the file itself is not secret


def bundle_name(gateway: Ed25519PrivateKey, batch_id: str, sent_at: int, index: int = 0) -> str:
    """Names sort in the order written: import them in that order and each sender's
    announcement (always in the first file) is there before its reports."""
    key_id = wire.key_id(wire.ed25519_public_bytes(gateway)).hex()
    return f"signalfire-{key_id}-{sent_at:010d}-{index:04d}-{batch_id[:16]}{SUFFIX}"


def write_bundle(
    directory: Path,
    packets: Sequence[StoredPacket],
    *,
    gateway: Ed25519PrivateKey,
    network_id: bytes,
    now: float | None = None,
    index: int = 0,
) -> Path:
    batch_id = batch_id_for(packets)
    sent_at = int(now if now is not None else time.time())
    data = batch.encode(
        batch_items(packets),
        gateway=gateway,
        network_id=network_id,
        batch_id=batch_id,
        sent_at=sent_at,
    )
    path = Path(directory) / bundle_name(gateway, batch_id, sent_at, index)
    atomic_write(path, data, FILE_MODE)
    return path


class BundleUplink:
    max_message_bytes: int | None = None
    costly = False

    def __init__(
        self,
        directory: str | Path,
        *,
        gateway: Ed25519PrivateKey,
        network_id: bytes,
        name: str = "bundle",
    ) -> None:
        self.name = name
        self.directory = Path(directory)
        self.gateway = gateway
        self.network_id = network_id

    def probe(self) -> bool:
        """Usable when the directory exists and is writable (the stick is mounted)."""
        return self.directory.is_dir() and os.access(self.directory, os.W_OK)

    def send(self, packets: Sequence[StoredPacket]) -> Delivery:
        try:
            write_bundle(self.directory, packets, gateway=self.gateway, network_id=self.network_id)
        except Exception as exc:  # SignalfireError (full stick, pulled out) or OSError
            raise UplinkError(f"could not write a bundle to {self.directory}: {exc}") from None
        return Delivery(acknowledged={p.copy_id for p in packets})

    def close(self) -> None:
        pass

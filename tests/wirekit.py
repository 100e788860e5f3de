"""A small fixed world for wire tests: one network, one enrolled sender, one keyring."""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from signalfire import wire


def _seed(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


class Net:
    """A network key pair, one enrolled sender and a receiving keyring."""

    def __init__(self, label: str = "test") -> None:
        self.private = X25519PrivateKey.from_private_bytes(_seed(f"{label} network"))
        self.public = wire.x25519_public_bytes(self.private)
        self.identity = Ed25519PrivateKey.from_private_bytes(_seed(f"{label} identity"))
        enrol_private = X25519PrivateKey.from_private_bytes(_seed(f"{label} enrol"))
        self.announcement, self.chain = wire.enrol(self.identity, self.public, enrol_private)
        self.ring = wire.Keyring(self.public, self.private)
        self.ring.add(self.announcement)
        self.seq = 0

    def seal(self, report: wire.Report) -> bytes:
        packet, self.chain = wire.seal_report(report, self.identity, self.chain, self.seq)
        self.seq += 1
        return packet

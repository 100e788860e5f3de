"""What the fuzz targets share: a deterministic world of keys, packets and batches.

Every key comes from a fixed seed, so a target's seed corpus and its behaviour on a
given input are the same on every run and every machine (a finding replays exactly).
Nothing here imports atheris: the targets are plain functions the test suite can
replay without it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cache

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from signalfire import batch as batchfmt
from signalfire import wire

NOW = 1_795_860_000  # the clock every target reads (reports are made "now")


class Finding(AssertionError):
    """A property of a target failed without an exception of its own (a wrong answer)."""


def seed32(label: str) -> bytes:
    return hashlib.sha256(b"signalfire fuzz\x00" + label.encode()).digest()


def ed25519(label: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(seed32(label))


def x25519(label: str) -> X25519PrivateKey:
    return X25519PrivateKey.from_private_bytes(seed32(label))


@dataclass
class Sender:
    key: Ed25519PrivateKey
    announcement: bytes
    chain: wire.ChainState
    public: bytes = field(init=False)

    def __post_init__(self) -> None:
        self.public = wire.ed25519_public_bytes(self.key)

    def seal(self, report: wire.Report, seq: int) -> bytes:
        # The start chain is immutable: sealing any seq from it needs no bookkeeping.
        packet, _ = wire.seal_report(report, self.key, self.chain, seq)
        return packet

    def seal_body(self, body: bytes, kind: wire.Kind, prio: wire.Priority, seq: int) -> bytes:
        packet, _ = wire.seal_body(body, kind, prio, self.key, self.chain, seq)
        return packet


@dataclass
class World:
    network_private: X25519PrivateKey
    network_public: bytes
    network_id: bytes
    sender: Sender
    gateway: Sender  # the gateway's identity, enrolled too: it seals attested reports
    gateway_public: bytes


def _sender(label: str, network_public: bytes) -> Sender:
    key = ed25519(label + " identity")
    announcement, chain = wire.enrol(key, network_public, x25519(label + " enrolment"))
    return Sender(key, announcement, chain)


@cache
def world() -> World:
    net = x25519("network")
    net_public = wire.x25519_public_bytes(net)
    sender = _sender("civilian", net_public)
    gateway = _sender("gateway", net_public)
    return World(net, net_public, wire.network_id(net_public), sender, gateway, gateway.public)


def keyring(*, private: bool = True) -> wire.Keyring:
    w = world()
    ring = wire.Keyring(w.network_public, w.network_private if private else None)
    ring.add(w.sender.announcement)
    ring.add(w.gateway.announcement)
    return ring


def sample_reports() -> list[wire.Report]:
    """Reports that between them set every field the body layout has."""
    here = wire.Location.from_degrees(40.1792, 44.4991, accuracy_m=20)
    return [
        wire.Report(wire.Status.SOS, NOW, 3, location=here),
        wire.Report(wire.Status.SAFE, NOW),
        wire.Report(
            wire.Status.NEED_SUPPLIES, NOW, 5, wire.Need.WATER | wire.Need.FOOD, here, "no water"
        ),
        wire.Report(wire.Status.MEDICAL, NOW, 1, text="Մայրս հիվանդ է"),
        wire.Report(wire.Status.MISSING_PERSON, NOW, 1, text="пропал сын, 12 лет"),
        wire.Report(wire.Status.CANCEL, NOW, extensions=((0x80, b"\x01\x02"), (0xFE, b""))),
    ]


def sample_attested() -> wire.Report:
    return wire.Report(
        wire.Status.TRAPPED,
        NOW,
        2,
        text="trapped 2 people",
        attestation=wire.Attestation(0x11223344, 0x55667788, NOW, True, True, 2, 30),
    )


@cache
def sample_packets() -> tuple[bytes, ...]:
    """Real packets: both announcements, civilian reports, an attested one."""
    w = world()
    out = [w.sender.announcement, w.gateway.announcement]
    out += [w.sender.seal(r, seq) for seq, r in enumerate(sample_reports())]
    out.append(w.gateway.seal(sample_attested(), 0))
    return tuple(out)


def signed_batch(body: bytes, key: Ed25519PrivateKey | None = None) -> bytes:
    """A signed envelope around ``body`` taken verbatim (valid signature, any body)."""
    import base64
    import json

    key = key or world().gateway.key
    envelope = {
        "type": batchfmt.ENVELOPE_TYPE,
        "version": 1,
        "gateway_key": wire.ed25519_public_bytes(key).hex(),
        "body": body.decode("utf-8", "surrogateescape"),
        "sha256": hashlib.sha256(body).hexdigest(),
        "signature": base64.b64encode(key.sign(batchfmt.SIGN_CONTEXT + body)).decode(),
    }
    return json.dumps(envelope, separators=(",", ":")).encode()


def real_batch(packets: tuple[bytes, ...] | None = None, batch_id: str = "fuzz-1") -> bytes:
    w = world()
    items = [
        batchfmt.BatchItem(p, received_at=NOW - 5, radio_node=0x11223344, snr=6.5, rssi=-90, hops=1)
        for p in (packets if packets is not None else sample_packets())
    ]
    return batchfmt.encode(
        items, gateway=w.gateway.key, network_id=w.network_id, batch_id=batch_id, sent_at=NOW
    )


def body_of(envelope: bytes) -> bytes:
    import json

    return str(json.loads(envelope)["body"]).encode()


def fields(data: bytes, count: int) -> list[bytes]:
    """``count`` fields cut from ``data``, each a length byte and that many bytes.

    A cheap structure for a fuzzer: any input gives ``count`` fields (missing ones
    empty, the last one takes what is left), and any field can hold any byte.
    """
    out, at = [], 0
    for i in range(count):
        if i == count - 1:
            out.append(data[at:])
            break
        n = data[at] if at < len(data) else 0
        out.append(data[at + 1 : at + 1 + n])
        at += 1 + n
    return out


def framed(*values: bytes) -> bytes:
    """The inverse of :func:`fields` (for seeds)."""
    return b"".join(bytes([len(v)]) + v for v in values[:-1]) + values[-1]

"""Generate the signalfire v1 test vectors (tests/vectors/*.json).

Everything is deterministic: keys come from SHA-256 of fixed labels, Ed25519
signatures are deterministic and AES-GCM-SIV takes its nonce from the key
tree.  `python tests/vectors/generate.py` rewrites the files; the test suite
regenerates them in memory and fails if the committed files differ, so the
vectors can never drift from the code silently.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from signalfire import wire
from signalfire.wire import chain as wchain
from signalfire.wire import keys as wkeys

HERE = Path(__file__).parent
T0 = 1795860000  # 2026-11-28T10:00:00Z


def seed(label: str) -> bytes:
    return hashlib.sha256(b"signalfire test vector: " + label.encode()).digest()


class Sender:
    def __init__(self, label: str, network_public: bytes, first_seq: int = 0) -> None:
        self.identity_seed = seed(f"{label} identity")
        self.enrol_seed = seed(f"{label} enrolment")
        self.identity = Ed25519PrivateKey.from_private_bytes(self.identity_seed)
        enrol_private = X25519PrivateKey.from_private_bytes(self.enrol_seed)
        self.public = wire.ed25519_public_bytes(self.identity)
        self.enrol_public = wire.x25519_public_bytes(enrol_private)
        self.first_seq = first_seq
        self.announcement, self.chain = wire.enrol(
            self.identity, network_public, enrol_private, first_seq
        )
        self.root = wkeys.sender_root(enrol_private, network_public, self.public)

    def describe(self) -> dict[str, Any]:
        return {
            "identity_private": self.identity_seed.hex(),
            "identity_public": self.public.hex(),
            "key_id": wire.key_id(self.public).hex(),
            "enrol_private": self.enrol_seed.hex(),
            "enrol_public": self.enrol_public.hex(),
            "first_seq": self.first_seq,
            "root": self.root.hex(),
        }


NETWORK_SEED = seed("network")
NETWORK = X25519PrivateKey.from_private_bytes(NETWORK_SEED)
NETWORK_PUBLIC = wire.x25519_public_bytes(NETWORK)
OTHER_NETWORK_PUBLIC = wire.x25519_public_bytes(
    X25519PrivateKey.from_private_bytes(seed("other network"))
)


def network_block() -> dict[str, Any]:
    return {
        "network_private": NETWORK_SEED.hex(),
        "network_public": NETWORK_PUBLIC.hex(),
        "network_id": wire.network_id(NETWORK_PUBLIC).hex(),
    }


def report_input(r: wire.Report, lat: float | None, lon: float | None) -> dict[str, Any]:
    att = r.attestation
    return {
        "status": r.status.label,
        "time": r.time,
        "people": r.people,
        "needs": wire.need_labels(r.needs),
        "lat": lat,
        "lon": lon,
        "accuracy_class": r.location.accuracy_class if r.location else None,
        "text": r.text,
        "attestation": None
        if att is None
        else {
            "node_num": att.node_num,
            "packet_id": att.packet_id,
            "rx_time": att.rx_time,
            "pki_authenticated": att.pki_authenticated,
            "direct_message": att.direct_message,
            "hops": att.hops,
            "position_age": att.position_age,
        },
        "extensions": [[t, v.hex()] for t, v in r.extensions],
    }


def positive(
    name: str,
    description: str,
    sender: Sender,
    report: wire.Report,
    seq: int,
    lat: float | None = None,
    lon: float | None = None,
) -> dict[str, Any]:
    packet, _ = wire.seal_report(report, sender.identity, sender.chain, seq)
    sealed = wire.parse(packet)
    assert isinstance(sealed, wire.SealedReport)
    leaf = wchain.leaf_key(sender.root, seq)
    key, nonce = wchain.message_key(leaf)
    loc = report.location
    return {
        "name": name,
        "description": description,
        "type": "report",
        **network_block(),
        "sender": sender.describe(),
        "announcements": [sender.announcement.hex()],
        "input": report_input(report, lat, lon),
        "seq": seq,
        "intermediate": {
            "body": wire.encode_body(report).hex(),
            "header": sealed.header.hex(),
            "aad": (sealed.header + sender.public).hex(),
            "leaf": leaf.hex(),
            "message_key": key.hex(),
            "nonce": nonce.hex(),
            "ciphertext": sealed.ciphertext.hex(),
            "signed_message": (wire.packet.SIGN_CONTEXT + sealed.signed_part).hex(),
        },
        "packet": packet.hex(),
        "expected": {
            "id": sealed.id.hex(),
            "size": len(packet),
            "kind": sealed.kind.label,
            "priority": sealed.priority.label,
            "sender": sealed.key_id.hex(),
            "seq": seq,
            "status": report.status.label,
            "time": report.time,
            "people": report.people,
            "needs": wire.need_labels(report.needs),
            "lat_q": loc.lat_q if loc else None,
            "lon_q": loc.lon_q if loc else None,
            "lat": round(loc.lat, 7) if loc else None,
            "lon": round(loc.lon, 7) if loc else None,
            "accuracy_class": loc.accuracy_class if loc else None,
            "text": report.text,
        },
    }


def negative(
    name: str,
    description: str,
    packet: bytes,
    expected_error: str,
    announcements: list[bytes],
    sender: Sender | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": name,
        "description": description,
        "type": "error",
        **network_block(),
        "announcements": [a.hex() for a in announcements],
        "packet": packet.hex(),
        "expected_error": expected_error,
    }
    if sender is not None:
        out["sender"] = sender.describe()
    return out


def build() -> dict[str, dict[str, Any]]:
    alice = Sender("alice", NETWORK_PUBLIC)
    gateway = Sender("gateway", NETWORK_PUBLIC)
    bob = Sender("bob", NETWORK_PUBLIC, first_seq=1000)
    yerevan = (40.1792, 44.4991)
    vectors: dict[str, dict[str, Any]] = {}

    def add(v: dict[str, Any]) -> None:
        vectors[v["name"]] = v

    sos = wire.Report(
        wire.Status.SOS, T0, 3, location=wire.Location.from_degrees(*yerevan, accuracy_m=8)
    )
    add(positive("01-sos-location", "SOS, 3 people, location, no text", alice, sos, 0, *yerevan))
    supplies = wire.Report(
        wire.Status.NEED_SUPPLIES,
        T0 + 60,
        5,
        wire.Need.WATER | wire.Need.MEDICINE,
        wire.Location.from_degrees(40.18, 44.51, accuracy_m=30),
        text="insulin needed, 5th floor flat",  # 30 ASCII characters
    )
    add(
        positive(
            "02-supplies-needs-text",
            "need-supplies with two needs, location and 30 ASCII characters",
            alice,
            supplies,
            1,
            40.18,
            44.51,
        )
    )
    armenian = wire.Report(
        wire.Status.MEDICAL,
        T0 + 120,
        2,
        location=wire.Location.from_degrees(-33.8688, 151.2093, accuracy_class=4),
        text="Օգնություն է պետք",  # "help is needed"
    )
    add(
        positive(
            "03-medical-armenian",
            "medical with Armenian text (2 bytes a letter) in the southern/eastern hemisphere",
            alice,
            armenian,
            2,
            -33.8688,
            151.2093,
        )
    )
    add(
        positive(
            "04-safe-minimal",
            "safe, 4 people, no location, no text: the smallest report",
            alice,
            wire.Report(wire.Status.SAFE, T0 + 180, 4),
            7,
        )
    )
    add(
        positive(
            "05-missing-russian",
            "missing-person about someone else, Russian text, location at -180 longitude",
            alice,
            wire.Report(
                wire.Status.MISSING_PERSON,
                T0 + 240,
                1,
                location=wire.Location.from_degrees(-90.0, -180.0, accuracy_class=11),
                text="Ищу брата, Арам, 34 года",
            ),
            8,
            -90.0,
            -180.0,
        )
    )
    add(
        positive(
            "06-cancel-max-seq",
            "cancel at the last sequence number of the tree",
            alice,
            wire.Report(wire.Status.CANCEL, T0 + 300, 0),
            wire.chain.SEQ_LIMIT - 1,
        )
    )
    attested = wire.Report(
        wire.Status.TRAPPED,
        T0 + 400,
        2,
        location=wire.Location.from_degrees(90.0, 179.99999, accuracy_class=3),
        text="TRAPPED 2 under rubble",
        attestation=wire.Attestation(
            node_num=0xA1B2C3D4,
            packet_id=0x12345678,
            rx_time=T0 + 398,
            pki_authenticated=True,
            direct_message=True,
            hops=2,
            position_age=95,
        ),
    )
    add(
        positive(
            "07-attested-trapped",
            "gateway-attested report from a stock radio's text message",
            gateway,
            attested,
            41,
            90.0,
            179.99999,
        )
    )
    add(
        positive(
            "08-ignorable-extension",
            "evacuate with an ignorable extension 0x80 a v1 decoder must keep and skip",
            alice,
            wire.Report(wire.Status.EVACUATE, T0 + 500, 12, extensions=((0x80, b"\x01\x02\x03"),)),
            9,
        )
    )
    add(
        positive(
            "09-later-enrolment",
            "a sender whose enrolment starts at sequence 1000",
            bob,
            wire.Report(wire.Status.SAFE, T0 + 600, 1),
            1000,
        )
    )
    vectors["10-announcement"] = {
        "name": "10-announcement",
        "description": "alice's key announcement for the test network",
        "type": "announcement",
        **network_block(),
        "sender": alice.describe(),
        "packet": alice.announcement.hex(),
        "expected": {
            "id": wire.parse(alice.announcement).id.hex(),
            "size": len(alice.announcement),
            "sender": wire.key_id(alice.public).hex(),
            "identity_public": alice.public.hex(),
            "enrol_public": alice.enrol_public.hex(),
            "network_id": wire.network_id(NETWORK_PUBLIC).hex(),
            "first_seq": 0,
        },
    }

    good = bytes.fromhex(vectors["01-sos-location"]["packet"])
    known = [alice.announcement]
    add(negative("11-empty", "zero bytes", b"", "truncated", known))
    add(
        negative(
            "12-unknown-version", "version byte 2", b"\x02" + good[1:], "unknown-version", known
        )
    )
    add(negative("13-short", "cut to 99 bytes", good[:99], "truncated", known))
    add(
        negative(
            "14-truncated-signature",
            "last byte of the signature missing",
            good[:-1],
            "bad-signature",
            known,
        )
    )
    flipped = bytearray(good)
    flipped[20] ^= 0x01
    add(
        negative(
            "15-bit-flip", "one ciphertext bit flipped", bytes(flipped), "bad-signature", known
        )
    )
    add(negative("16-oversize", "220 bytes", good + bytes(113), "oversize", known))
    add(
        negative(
            "17-reserved-bits",
            "reserved low bits of the kind byte set",
            good[:1] + bytes([good[1] | 0x01]) + good[2:],
            "bad-field",
            known,
        )
    )
    add(negative("18-unknown-sender", "no announcement known", good, "unknown-sender", []))
    mallory = Ed25519PrivateKey.from_private_bytes(seed("mallory identity"))
    forged = good[:-64] + mallory.sign(wire.packet.SIGN_CONTEXT + good[:-64])
    add(
        negative(
            "19-forged-signature",
            "alice's report re-signed by another key under alice's key id",
            forged,
            "bad-signature",
            known,
        )
    )
    other = Sender("carol", OTHER_NETWORK_PUBLIC)
    add(
        negative(
            "20-other-network-announcement",
            "an announcement enrolling with another network",
            other.announcement,
            "not-for-this-network",
            [],
            other,
        )
    )

    def crafted(body: bytes, prio: wire.Priority, seq: int) -> bytes:
        packet, _ = wire.seal_body(body, wire.Kind.REPORT, prio, alice.identity, alice.chain, seq)
        return packet

    base_body = wire.encode_body(wire.Report(wire.Status.SAFE, T0, 1))
    add(
        negative(
            "21-priority-mismatch",
            "validly sealed sos body under a routine header priority",
            crafted(wire.encode_body(sos), wire.Priority.ROUTINE, 20),
            "bad-field",
            known,
            alice,
        )
    )
    add(
        negative(
            "22-undefined-status",
            "validly sealed body with status code 9",
            crafted(bytes([0x90]) + base_body[1:], wire.Priority.ROUTINE, 21),
            "bad-field",
            known,
            alice,
        )
    )
    add(
        negative(
            "23-invalid-utf8",
            "validly sealed body whose text extension is not UTF-8",
            crafted(base_body + b"\x01\x02\xc3\x28", wire.Priority.ROUTINE, 22),
            "bad-field",
            known,
            alice,
        )
    )
    add(
        negative(
            "24-critical-extension",
            "validly sealed body with unknown critical extension 0x05",
            crafted(base_body + b"\x05\x01\x00", wire.Priority.ROUTINE, 23),
            "bad-field",
            known,
            alice,
        )
    )
    add(
        negative(
            "25-truncated-body",
            "validly sealed body that ends inside its location",
            crafted(bytes([0x01]) + base_body[1:] + b"\x00\x00", wire.Priority.ROUTINE, 24),
            "truncated",
            known,
            alice,
        )
    )
    add(
        negative(
            "26-wrong-enrolment",
            "alice signs a report sealed under another enrolment than the one announced",
            wire.seal_report(
                wire.Report(wire.Status.SAFE, T0, 1),
                alice.identity,
                wire.ChainState.start(seed("not the announced root")),
                25,
            )[0],
            "not-for-this-network",
            known,
            alice,
        )
    )
    return vectors


def render(vector: dict[str, Any]) -> str:
    return json.dumps(vector, indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    vectors = build()
    for old in HERE.glob("*.json"):
        if old.stem not in vectors:
            old.unlink()
    for name, vector in vectors.items():
        (HERE / f"{name}.json").write_text(render(vector), encoding="utf-8")
    print(f"wrote {len(vectors)} vectors to {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

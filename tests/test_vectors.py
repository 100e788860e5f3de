"""The committed test vectors against the code, in both directions."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from signalfire import wire
from signalfire.wire import chain as wchain
from signalfire.wire import keys as wkeys

VECTOR_DIR = Path(__file__).parent / "vectors"
VECTORS = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in VECTOR_DIR.glob("*.json")}


def _ring(v: dict[str, Any]) -> wire.Keyring:
    private = X25519PrivateKey.from_private_bytes(bytes.fromhex(v["network_private"]))
    assert wire.x25519_public_bytes(private).hex() == v["network_public"]
    ring = wire.Keyring(bytes.fromhex(v["network_public"]), private)
    for ann in v.get("announcements", []):
        ring.add(bytes.fromhex(ann))
    return ring


def _report(inp: dict[str, Any]) -> wire.Report:
    loc = None
    if inp["lat"] is not None:
        loc = wire.Location.from_degrees(
            inp["lat"], inp["lon"], accuracy_class=inp["accuracy_class"]
        )
    att = inp["attestation"]
    return wire.Report(
        status=wire.Status.from_label(inp["status"]),
        time=inp["time"],
        people=inp["people"],
        needs=wire.needs_from_labels(inp["needs"]),
        location=loc,
        text=inp["text"],
        attestation=None if att is None else wire.Attestation(**att),
        extensions=tuple((t, bytes.fromhex(h)) for t, h in inp["extensions"]),
    )


def test_there_are_enough_vectors() -> None:
    kinds = [v["type"] for v in VECTORS.values()]
    assert len(VECTORS) >= 12
    assert kinds.count("error") >= 6
    assert kinds.count("report") >= 6


@pytest.mark.parametrize("name", sorted(n for n, v in VECTORS.items() if v["type"] == "report"))
def test_report_vector_decodes(name: str) -> None:
    v = VECTORS[name]
    opened = _ring(v).open(bytes.fromhex(v["packet"]))
    exp = v["expected"]
    rep = opened.report
    loc = rep.location
    got = {
        "id": opened.id.hex(),
        "size": len(opened.raw),
        "kind": opened.kind.label,
        "priority": opened.priority.label,
        "sender": opened.key_id.hex(),
        "seq": opened.seq,
        "status": rep.status.label,
        "time": rep.time,
        "people": rep.people,
        "needs": wire.need_labels(rep.needs),
        "lat_q": loc.lat_q if loc else None,
        "lon_q": loc.lon_q if loc else None,
        "lat": round(loc.lat, 7) if loc else None,
        "lon": round(loc.lon, 7) if loc else None,
        "accuracy_class": loc.accuracy_class if loc else None,
        "text": rep.text,
    }
    assert got == exp


@pytest.mark.parametrize("name", sorted(n for n, v in VECTORS.items() if v["type"] == "report"))
def test_report_vector_encodes_to_the_same_bytes(name: str) -> None:
    v = VECTORS[name]
    s = v["sender"]
    identity = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(s["identity_private"]))
    enrol_private = X25519PrivateKey.from_private_bytes(bytes.fromhex(s["enrol_private"]))
    network_public = bytes.fromhex(v["network_public"])
    announcement, chain = wire.enrol(identity, network_public, enrol_private, s["first_seq"])
    assert announcement.hex() == v["announcements"][0]
    report = _report(v["input"])
    packet, _ = wire.seal_report(report, identity, chain, v["seq"])
    assert packet.hex() == v["packet"]
    # the intermediate values an implementer checks step by step
    mid = v["intermediate"]
    root = wkeys.sender_root(enrol_private, network_public, bytes.fromhex(s["identity_public"]))
    assert root.hex() == s["root"]
    leaf = wchain.leaf_key(root, v["seq"])
    key, nonce = wchain.message_key(leaf)
    assert (leaf.hex(), key.hex(), nonce.hex()) == (mid["leaf"], mid["message_key"], mid["nonce"])
    assert wire.encode_body(report).hex() == mid["body"]


@pytest.mark.parametrize("name", sorted(n for n, v in VECTORS.items() if v["type"] == "error"))
def test_error_vector_is_rejected_with_its_code(name: str) -> None:
    v = VECTORS[name]
    ring = _ring(v) if v["expected_error"] != "not-for-this-network" or v["announcements"] else None
    data = bytes.fromhex(v["packet"])
    with pytest.raises(wire.WireError) as info:
        packet = wire.parse(data)
        if isinstance(packet, wire.Announcement):
            packet.verify(bytes.fromhex(v["network_public"]))
        else:
            assert ring is not None
            ring.open(packet)
    assert info.value.code == v["expected_error"], info.value.message
    assert info.value.message  # every error says what is wrong


def test_announcement_vector() -> None:
    v = VECTORS["10-announcement"]
    ann = wire.parse(bytes.fromhex(v["packet"]))
    assert isinstance(ann, wire.Announcement)
    ann.verify(bytes.fromhex(v["network_public"]))
    exp = v["expected"]
    assert ann.id.hex() == exp["id"]
    assert ann.key_id.hex() == exp["sender"]
    assert ann.identity_public.hex() == exp["identity_public"]
    assert ann.enrol_public.hex() == exp["enrol_public"]
    assert ann.network_id.hex() == exp["network_id"]
    assert ann.first_seq == exp["first_seq"]


def test_committed_vectors_match_the_generator() -> None:
    sys.path.insert(0, str(VECTOR_DIR))
    try:
        import generate  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    built = generate.build()
    assert sorted(built) == sorted(VECTORS), "run: python tests/vectors/generate.py"
    for name, vector in built.items():
        on_disk = (VECTOR_DIR / f"{name}.json").read_text(encoding="utf-8")
        assert generate.render(vector) == on_disk, f"{name} differs; regenerate the vectors"

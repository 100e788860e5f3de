"""Behaviour of the wire format that the spec promises in words."""

from __future__ import annotations

import math

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from signalfire import wire
from wirekit import Net

T = 1_795_860_000
HERE = wire.Location.from_degrees(40.1792, 44.4991, accuracy_m=10)


@pytest.mark.parametrize("status", list(wire.Status))
def test_no_text_report_fits_120_bytes(status: wire.Status) -> None:
    report = wire.Report(status, T, 255, wire.vocab.ALL_NEEDS, HERE)
    assert wire.report_size(report) <= 120


def test_28_ascii_characters_fit_150_bytes() -> None:
    text = "broken leg, need stretcher!!"
    assert len(text) == 28
    report = wire.Report(wire.Status.MEDICAL, T, 2, wire.Need.MEDICINE, HERE, text)
    assert wire.report_size(report) <= 150


def test_the_sizes_quoted_in_the_spec() -> None:
    """docs/protocol.md section 1 quotes these numbers."""
    text28 = "x" * 28
    assert wire.report_size(wire.Report(wire.Status.SOS, T, 3, location=HERE)) == 107
    supplies = wire.Report(wire.Status.NEED_SUPPLIES, T, 3, wire.Need.WATER, HERE, text28)
    assert wire.report_size(supplies) == 138
    assert wire.report_size(wire.Report(wire.Status.SAFE, T, 3)) == wire.MIN_REPORT_SIZE == 100
    assert len(Net().announcement) == wire.ANNOUNCEMENT_SIZE == 142


def test_too_large_says_how_many_bytes_of_text_must_go() -> None:
    net = Net()
    text = "Ա" * 60  # 120 bytes of Armenian
    report = wire.Report(wire.Status.SOS, T, 1, location=HERE, text=text)
    size = wire.report_size(report)
    assert size > wire.MAX_PACKET
    with pytest.raises(wire.TooLarge) as info:
        net.seal(report)
    msg = info.value.message
    assert f"{size - wire.MAX_PACKET} bytes" in msg
    assert "Armenian" in msg
    # the refused report used no sequence number
    assert net.chain.next_seq == 0
    shorter = wire.Report(
        wire.Status.SOS, T, 1, location=HERE, text=text[: -math.ceil((size - 219) / 2)]
    )
    assert len(net.seal(shorter)) == wire.MAX_PACKET


def test_sequence_numbers_cannot_be_reused_or_go_back() -> None:
    net = Net()
    net.seq = 5
    net.seal(wire.Report(wire.Status.SAFE, T, 1))
    for seq in (0, 5):
        with pytest.raises(wire.SequenceUsed):
            wire.seal_report(wire.Report(wire.Status.SAFE, T, 1), net.identity, net.chain, seq)


def test_unknown_version_is_named() -> None:
    with pytest.raises(wire.UnknownVersion, match="version 7"):
        wire.parse(bytes([7]) + bytes(120))


def test_relay_without_network_key_verifies_but_cannot_open() -> None:
    net = Net()
    packet = net.seal(wire.Report(wire.Status.SOS, T, 2, location=HERE))
    relay = wire.Keyring(net.public)
    relay.add(net.announcement)
    sealed = wire.parse(packet)
    assert isinstance(sealed, wire.SealedReport)
    assert relay.verify(sealed) == wire.ed25519_public_bytes(net.identity)
    assert sealed.priority is wire.Priority.LIFE_SAFETY  # readable without the key
    with pytest.raises(wire.NotForThisNetwork):
        relay.open(packet)
    forged = packet[:-1] + bytes([packet[-1] ^ 1])
    with pytest.raises(wire.BadSignature):
        relay.verify(wire.parse(forged))  # type: ignore[arg-type]


def test_report_id_is_stable_and_ignores_the_signature_bytes() -> None:
    net = Net()
    packet = net.seal(wire.Report(wire.Status.SAFE, T, 1))
    sealed = wire.parse(packet)
    assert isinstance(sealed, wire.SealedReport)
    assert net.ring.open(packet).id == sealed.id == wire.packet_id(packet[:-64])
    assert len(sealed.id) == 16


def test_restored_backup_reusing_a_sequence_number_stays_safe() -> None:
    """A device restored from a backup reuses seq 3 for a different report."""
    net = Net()
    backup = net.chain
    first, _ = wire.seal_report(wire.Report(wire.Status.SOS, T, 1), net.identity, backup, 3)
    second, _ = wire.seal_report(wire.Report(wire.Status.SAFE, T + 60, 1), net.identity, backup, 3)
    a, b = net.ring.open(first), net.ring.open(second)
    assert a.report.status is wire.Status.SOS and b.report.status is wire.Status.SAFE
    assert a.id != b.id  # both are kept; neither is mistaken for a replay of the other
    # GCM-SIV under a repeated key and nonce does not leak the XOR of the plaintexts
    ca, cb = wire.parse(first), wire.parse(second)
    assert isinstance(ca, wire.SealedReport) and isinstance(cb, wire.SealedReport)
    body_a = wire.encode_body(a.report)
    body_b = wire.encode_body(b.report)
    xor_ct = bytes(x ^ y for x, y in zip(ca.ciphertext, cb.ciphertext, strict=False))
    xor_pt = bytes(x ^ y for x, y in zip(body_a, body_b, strict=False))
    assert not xor_ct.startswith(xor_pt)


def test_renewed_enrolment_opens_reports_on_both_sides_of_it() -> None:
    net = Net()
    old = net.seal(wire.Report(wire.Status.SAFE, T, 1))  # seq 0 under the first enrolment
    announcement2, chain2 = wire.enrol(
        net.identity, net.public, X25519PrivateKey.generate(), first_seq=10
    )
    net.ring.add(announcement2)
    new, _ = wire.seal_report(wire.Report(wire.Status.SOS, T, 1), net.identity, chain2, 10)
    assert net.ring.open(old).seq == 0
    assert net.ring.open(new).seq == 10
    # the new enrolment cannot seal below its first sequence number
    with pytest.raises(wire.SequenceUsed):
        wire.seal_report(wire.Report(wire.Status.SAFE, T, 1), net.identity, chain2, 9)


def test_overlapping_re_enrolment_does_not_lock_out_older_reports() -> None:
    """A device restored from an old backup re-enrols from seq 0 while its reports at 0-4 exist."""
    net = Net()
    net.seq = 3
    genuine = net.seal(wire.Report(wire.Status.SOS, T, 1))  # seq 3, first enrolment
    announcement2, _ = wire.enrol(net.identity, net.public, X25519PrivateKey.generate(), 0)
    net.ring.add(announcement2)
    assert net.ring.open(genuine).report.status is wire.Status.SOS


def test_announcement_for_another_network_is_refused() -> None:
    net, other = Net("a"), Net("b")
    with pytest.raises(wire.NotForThisNetwork):
        net.ring.add(other.announcement)
    assert not net.ring.knows(wire.parse(other.announcement).key_id)  # type: ignore[union-attr]


def test_adding_an_announcement_twice_is_idempotent() -> None:
    net = Net()
    _, new = net.ring.add(net.announcement)
    assert new is False


def test_low_order_enrolment_key_is_rejected_cleanly() -> None:
    net = Net()
    ann = bytearray(net.announcement)
    ann[42:74] = bytes(32)  # all-zero X25519 point
    signed = bytes(ann[:-64])
    forged = signed + net.identity.sign(wire.packet.SIGN_CONTEXT + signed)
    with pytest.raises(wire.BadField, match="low-order"):
        wire.Keyring(net.public, net.private).add(forged)  # correctly signed, unusable key
    relay = wire.Keyring(net.public)  # a relay cannot tell, and need not: it never derives
    relay.add(forged)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lat": 91.0, "lon": 0.0}, "latitude"),
        ({"lat": float("nan"), "lon": 0.0}, "latitude"),
        ({"lat": 0.0, "lon": 180.5}, "longitude"),
    ],
)
def test_bad_locations_are_refused(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(wire.EncodeError, match=match):
        wire.Location.from_degrees(**kwargs)


@pytest.mark.parametrize(
    ("report", "match"),
    [
        (wire.Report(wire.Status.SAFE, -1), "time"),
        (wire.Report(wire.Status.SAFE, T, 256), "people"),
        (wire.Report(wire.Status.SAFE, T, 1, text="bell\x07"), "control"),
        (wire.Report(wire.Status.SAFE, T, 1, extensions=((0x05, b""),)), "ignorable"),
    ],
)
def test_bad_report_values_are_refused(report: wire.Report, match: str) -> None:
    with pytest.raises(wire.EncodeError, match=match):
        wire.encode_body(report)


def test_vocabularies() -> None:
    assert wire.Status.from_label("need-supplies") is wire.Status.NEED_SUPPLIES
    assert wire.Status.from_label(" SOS ") is wire.Status.SOS
    with pytest.raises(wire.EncodeError, match="unknown status"):
        wire.Status.from_label("fine")
    assert wire.needs_from_labels(["water", " Food", ""]) == wire.Need.WATER | wire.Need.FOOD
    with pytest.raises(wire.EncodeError, match="unknown need"):
        wire.needs_from_labels(["beer"])
    assert [wire.accuracy_class_for(m) for m in (None, 0, 5, 5.1, 4999, 10_000)] == [
        0,
        1,
        1,
        2,
        10,
        11,
    ]
    life = {s for s in wire.Status if wire.priority_of(s) is wire.Priority.LIFE_SAFETY}
    assert life == {wire.Status.SOS, wire.Status.MEDICAL, wire.Status.TRAPPED}


def test_descend_in_steps_is_the_leaf_from_the_root() -> None:
    from signalfire.wire.chain import DEPTH, descend, leaf_key

    root = bytes(range(32))
    for seq in (0, 1, 255, 256, 0x12345678, 0xFFFFFFFF):
        for depth in (0, 8, 24, 31, 32):
            node = descend(root, 0, seq, depth)
            assert descend(node, depth, seq) == leaf_key(root, seq)
    with pytest.raises(ValueError, match="depths"):
        descend(root, 25, 0, 24)
    assert DEPTH == 32


def test_keyring_node_cache_opens_every_number_and_stays_bounded() -> None:
    from signalfire.wire import keyring as keyring_mod

    net = X25519PrivateKey.generate()
    kr = wire.Keyring(wire.x25519_public_bytes(net), net)
    key = Ed25519PrivateKey.generate()
    announcement, chain = wire.enrol(
        key, wire.x25519_public_bytes(net), X25519PrivateKey.generate()
    )
    kr.add(announcement)
    report = wire.Report(status=wire.Status.SAFE, time=1_800_000_000)
    # Across a block boundary of the cache (256 numbers per cached node), and far ahead.
    for seq in (0, 1, 255, 256, 257, 70_000, 70_001):
        packet, chain = wire.seal_report(report, key, chain, seq)
        assert kr.open(packet).seq == seq
    assert len(kr._nodes) == 3  # blocks 0, 1 and 273
    assert len(kr._nodes) <= keyring_mod.NODE_CACHE_SIZE

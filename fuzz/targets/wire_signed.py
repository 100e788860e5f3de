"""Past the signature: fuzzed bodies and announcements, sealed and signed with real keys.

Random bytes never carry a valid Ed25519 signature, so they stop at the first check.
Here the fuzzer controls what is inside and a known sender signs it, so the whole
receive path runs: Keyring.add (network id, low-order enrolment key), then
Keyring.open (AEAD, body decoder, priority and attestation cross-checks).

Input layout: byte 0 picks the mode.
  even: report. byte 1 is the header's kind/priority (kind 0 or 1, priority 0-2);
        bytes 2-3 the sequence number; byte 4 bit 0 picks the gateway as sender;
        the rest is the body.
  odd:  announcement. byte 1 is the priority; the next 44 bytes (zero-padded) are
        network id, enrolment key and first sequence number, signed by the civilian.
Documented errors: ``WireError``.
"""

from __future__ import annotations

import contextlib

from signalfire import wire
from signalfire.wire.packet import SIGN_CONTEXT

from ..common import NOW, keyring, sample_attested, sample_packets, sample_reports, world

ALLOWED = (wire.WireError,)
_OPENER = keyring()


def _report(data: bytes) -> None:
    w = world()
    head = data[1:5].ljust(4, b"\0")
    kind = wire.Kind(head[0] >> 6 & 1)
    prio = wire.Priority((head[0] >> 4 & 3) % 3)
    seq = int.from_bytes(head[1:3], "big")
    sender = w.gateway if head[3] & 1 else w.sender
    packet = sender.seal_body(data[5:], kind, prio, seq)
    try:
        opened = _OPENER.open(packet)
    except ALLOWED:
        return
    if opened.report != wire.decode_body(data[5:]):
        raise AssertionError("opened report differs from its body")


def _announcement(data: bytes) -> None:
    w = world()
    prio = wire.Priority((data[1] if len(data) > 1 else 0) % 3)
    fields = data[2:46].ljust(44, b"\0")
    signed = bytes([wire.VERSION, 2 << 6 | prio << 4]) + w.sender.public + fields
    packet = signed + w.sender.key.sign(SIGN_CONTEXT + signed)
    ring = wire.Keyring(w.network_public, w.network_private)
    try:
        ring.add(packet)
    except ALLOWED:
        return
    # The fuzzed enrolment sits beside the real one: opening must still work or fail cleanly.
    ring.add(w.sender.announcement)
    with contextlib.suppress(*ALLOWED):
        ring.open(sample_packets()[2])


def test_one_input(data: bytes) -> None:
    if not data:
        return
    if data[0] % 2 == 0:
        _report(data)
    else:
        _announcement(data)


def seeds() -> list[bytes]:
    out = []
    for seq, report in enumerate(sample_reports()):
        prio = wire.priority_of(report.status)
        out.append(
            bytes([0, prio << 4]) + seq.to_bytes(2, "big") + b"\0" + wire.encode_body(report)
        )
    att = sample_attested()
    out.append(
        bytes([0, 1 << 6 | wire.priority_of(att.status) << 4, 0, 0, 1]) + wire.encode_body(att)
    )
    ann = world().sender.announcement
    out.append(bytes([1, 0]) + ann[34:78])  # network id, enrolment key, first seq
    out.append(bytes([1, 2]) + ann[34:42] + bytes(32) + (NOW % 1000).to_bytes(4, "big"))
    return out

"""Packets off the air: ``wire.parse``, ``Keyring.add`` (announcements) and ``Keyring.open``.

Raw bytes reach all three from any radio in range. Documented errors: ``WireError``
subclasses only (docs/security.md 8.1).
"""

from __future__ import annotations

import contextlib

from signalfire import wire

from ..common import Finding, keyring, sample_packets, world

ALLOWED = (wire.WireError,)
_OPENER = keyring()
_RELAY = keyring(private=False)  # a relay without the network key: verify only


def test_one_input(data: bytes) -> None:
    try:
        parsed = wire.parse(data)
    except ALLOWED:
        parsed = None
    if parsed is not None and parsed.raw != data:
        raise Finding("parse did not keep the packet's bytes")
    with contextlib.suppress(*ALLOWED):
        _OPENER.open(data)
    if isinstance(parsed, wire.SealedReport):
        with contextlib.suppress(*ALLOWED):
            _RELAY.verify(parsed)
    # A fresh keyring each time: a fuzzed announcement that verified must not leak
    # into the next input (it cannot, without the identity key, but be sure).
    w = world()
    with contextlib.suppress(*ALLOWED):
        wire.Keyring(w.network_public, w.network_private).add(data)


def seeds() -> list[bytes]:
    return list(sample_packets())

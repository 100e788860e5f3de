"""The signed uplink batch envelope as it arrives: ``batch.decode`` on raw bytes.

Anyone can POST to /api/v1/batches or put a file on a USB stick. Documented errors:
``BatchError``.
"""

from __future__ import annotations

import contextlib

from signalfire import batch

from ..common import real_batch, sample_packets, world

ALLOWED = (batch.BatchError,)


def test_one_input(data: bytes) -> None:
    with contextlib.suppress(*ALLOWED):
        batch.decode(data, network_id=world().network_id)


def seeds() -> list[bytes]:
    return [
        real_batch(),
        real_batch(sample_packets()[:1], "one"),
        b'{"type":"signalfire-signed-batch"}',
    ]

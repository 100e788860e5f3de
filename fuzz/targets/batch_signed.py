"""Past the batch signature: the fuzzer writes the body, a gateway key signs it.

Any key can sign an envelope (whether the key is an enrolled gateway is checked after
decoding), so everything behind the signature is as reachable as what is in front of
it. The body bytes are taken verbatim, invalid UTF-8 included (carried as escaped
surrogates, which is what a hostile sender can also write). Documented errors:
``BatchError``.
"""

from __future__ import annotations

import contextlib

from signalfire import batch

from ..common import body_of, real_batch, sample_packets, signed_batch, world

ALLOWED = (batch.BatchError,)


def test_one_input(data: bytes) -> None:
    with contextlib.suppress(*ALLOWED):
        batch.decode(signed_batch(data), network_id=world().network_id)


def seeds() -> list[bytes]:
    return [body_of(real_batch()), body_of(real_batch(sample_packets()[2:3], "x"))]

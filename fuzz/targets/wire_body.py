"""The report body decoder, fed directly (the plaintext behind signature and AEAD).

Only a sender who passes both could put these bytes in front of ``decode_body``;
fuzzing it directly covers what the sealed target reaches more slowly. Documented
errors: ``WireError``. A body that decodes must re-encode to the same bytes (the
format is canonical, docs/protocol.md).
"""

from __future__ import annotations

from signalfire import wire

from ..common import Finding, sample_attested, sample_reports

ALLOWED = (wire.WireError,)


def test_one_input(data: bytes) -> None:
    try:
        report = wire.decode_body(data)
    except ALLOWED:
        return
    again = wire.encode_body(report)
    if again != data:
        raise Finding(f"body {data.hex()} decodes but re-encodes as {again.hex()}")


def seeds() -> list[bytes]:
    return [wire.encode_body(r) for r in [*sample_reports(), sample_attested()]]

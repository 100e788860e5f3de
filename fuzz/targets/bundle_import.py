"""Bundle files into the coordinator: ``Ingestor.ingest_batch``, as `signalfire bundle import` does.

A USB stick from anywhere, a POST from anyone. This runs past the envelope into the
ingest of each packet (wire parse, keyring, dedupe, store) on a seeded SQLite store
with the gateway enrolled. Byte 0 picks what the rest is:

  0: the file's bytes, as they are;
  1: a batch body, signed by the enrolled gateway (past the signature and the
     enrolment check);
  2: packets, each a length byte and its bytes, in a real batch of the enrolled
     gateway (past everything batch-level: the per-packet ingest).

Documented errors: ``BatchError`` and ``GatewayRefused`` (what `bundle import`
catches and reports per file); the answer must be the JSON the CLI prints.
"""

from __future__ import annotations

import json

from signalfire.batch import BatchError
from signalfire.coordinator.ingest import GatewayRefused

from ..common import NOW, body_of, real_batch, sample_packets, signed_batch
from ..coord import Fresh

ALLOWED = (BatchError, GatewayRefused)
_COORDINATOR = Fresh()


def _packets(data: bytes) -> tuple[bytes, ...]:
    out, at = [], 0
    while at < len(data):
        n = data[at] or 1
        out.append(data[at + 1 : at + 1 + n] or b"\x01")
        at += 1 + n
    return tuple(out)


def test_one_input(data: bytes) -> None:
    if not data:
        return
    mode, rest = data[0] % 3, data[1:]
    if mode == 0:
        file = rest
    elif mode == 1:
        file = signed_batch(rest)
    else:
        file = real_batch(_packets(rest), batch_id=f"fuzz-{len(rest)}")
    try:
        result = _COORDINATOR.get().ingestor.ingest_batch(file, "bundle", NOW)
    except ALLOWED:
        return
    json.dumps(result.response())  # what the CLI prints and the HTTP endpoint answers


def seeds() -> list[bytes]:
    packets = sample_packets()
    framed = b"".join(bytes([len(p)]) + p for p in packets)
    return [
        b"\0" + real_batch(),
        b"\1" + body_of(real_batch(packets[:3], "b")),
        b"\2" + framed,
        b"\2" + bytes([len(packets[3])]) + packets[3],
    ]

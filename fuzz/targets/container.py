"""The costly-link container (SBD message, whole SMS): ``container.decode``.

Bytes from a RockBLOCK webhook or an SMS forwarder. Documented errors:
``ContainerError`` (raised only when nothing can be read; damage later is reported in
``Unpacked.error``). Whatever decodes re-encodes to the bytes it came from.
"""

from __future__ import annotations

from signalfire.modem import container

from ..common import Finding, sample_packets

ALLOWED = (container.ContainerError,)


def test_one_input(data: bytes) -> None:
    try:
        unpacked = container.decode(data)
    except ALLOWED:
        return
    if not unpacked.packets:
        if unpacked.error is None:
            raise Finding("no packets and no error")
        return
    again = container.encode(unpacked.packets)
    if unpacked.error is None and again != data:
        raise Finding("a clean container does not re-encode to its bytes")
    if unpacked.error is not None and not data.startswith(again):
        raise Finding("the packets before the damage are not a prefix of the message")


def seeds() -> list[bytes]:
    p = sample_packets()
    return [container.encode([p[0], p[2]]), container.encode([p[3]]), container.encode(list(p[:3]))]

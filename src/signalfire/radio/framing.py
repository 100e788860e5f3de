"""Meshtastic stream framing: 0x94 0xC3, a big-endian 16-bit length, then a protobuf.

Serial and TCP links carry the same byte stream. Anything between frames is device log
text, and a header that claims more than 512 bytes is treated as noise, exactly as the
firmware's StreamAPI does: it discards the four header bytes and searches again from the
next byte, so a corrupt header costs at most the bytes it swallowed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

START1 = 0x94
START2 = 0xC3
HEADER_LEN = 4
MAX_FRAME_PAYLOAD = 512


class FrameTooLarge(ValueError):
    """A payload does not fit one stream frame."""


def encode_frame(payload: bytes) -> bytes:
    if len(payload) > MAX_FRAME_PAYLOAD:
        raise FrameTooLarge(f"{len(payload)} bytes > {MAX_FRAME_PAYLOAD}")
    return bytes((START1, START2, len(payload) >> 8, len(payload) & 0xFF)) + payload


@dataclass
class FrameDecoder:
    """Incremental decoder: feed it whatever a read returned, get whole payloads back.

    Keeps counters so that tests and operators can see what the link threw away.
    """

    _buf: bytearray = field(default_factory=bytearray)
    garbage_bytes: int = 0
    oversize_frames: int = 0

    def reset(self) -> None:
        self._buf.clear()

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        frames: list[bytes] = []
        buf = self._buf
        while buf:
            start = buf.find(START1)
            if start < 0:
                self.garbage_bytes += len(buf)
                buf.clear()
                break
            if start:
                self.garbage_bytes += start
                del buf[:start]
            if len(buf) < 2:
                break
            if buf[1] != START2:
                self.garbage_bytes += 1
                del buf[:1]
                continue
            if len(buf) < HEADER_LEN:
                break
            length = (buf[2] << 8) | buf[3]
            if length > MAX_FRAME_PAYLOAD:
                self.oversize_frames += 1
                del buf[:HEADER_LEN]
                continue
            if len(buf) < HEADER_LEN + length:
                break
            frames.append(bytes(buf[HEADER_LEN : HEADER_LEN + length]))
            del buf[: HEADER_LEN + length]
        return frames

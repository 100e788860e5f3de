from __future__ import annotations

import pytest

from signalfire.radio.framing import FrameDecoder, FrameTooLarge, encode_frame


def test_frame_round_trip_byte_by_byte() -> None:
    decoder = FrameDecoder()
    stream = encode_frame(b"hello") + encode_frame(b"") + encode_frame(bytes(512))
    out: list[bytes] = []
    for i in range(len(stream)):
        out += decoder.feed(stream[i : i + 1])
    assert out == [b"hello", b"", bytes(512)]


def test_log_text_and_garbage_between_frames_are_skipped() -> None:
    decoder = FrameDecoder()
    stream = (
        b"INFO  | 12:00:00 [Router] booting\r\n"
        + encode_frame(b"one")
        + b"\x94\x00\xc3\xc3\xc3"  # a lone START1, then the wake-up bytes clients send
        + encode_frame(b"two")
    )
    assert decoder.feed(stream) == [b"one", b"two"]
    assert decoder.garbage_bytes > 30


def test_oversize_header_is_dropped_and_the_stream_resyncs() -> None:
    decoder = FrameDecoder()
    bogus = b"\x94\xc3" + (600).to_bytes(2, "big") + bytes(600)
    assert decoder.feed(bogus + encode_frame(b"after")) == [b"after"]
    assert decoder.oversize_frames == 1


def test_partial_frame_waits_for_the_rest() -> None:
    decoder = FrameDecoder()
    frame = encode_frame(b"abcdef")
    assert decoder.feed(frame[:3]) == []
    assert decoder.feed(frame[3:7]) == []
    assert decoder.feed(frame[7:]) == [b"abcdef"]


def test_encode_refuses_oversize_payload() -> None:
    with pytest.raises(FrameTooLarge):
        encode_frame(bytes(513))

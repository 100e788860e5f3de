"""The costly-link container (docs/protocol.md section 16) and the packer."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signalfire.modem import container as c

VECTORS = Path(__file__).resolve().parent.parent / "vectors"


def vector_packet(name: str) -> bytes:
    return bytes.fromhex(json.loads((VECTORS / name).read_text())["packet"])


def test_the_protocol_md_vector() -> None:
    ann, sos = vector_packet("10-announcement.json"), vector_packet("01-sos-location.json")
    data = c.encode([ann, sos])
    assert len(data) == 252
    assert data[:3].hex() == "c18e01" and data[143:146].hex() == "046b01"
    assert hashlib.sha256(data).hexdigest() == (
        "09a88b342f66a07ff2b894fff60afd1a951a64755f5506b24c3151e51fc9fde7"
    )
    assert c.decode(data) == c.Unpacked((ann, sos))
    assert c.sbd_credits(len(data)) == 6
    assert c.sms_parts(len(data)) == 2


@given(st.lists(st.binary(min_size=1, max_size=219), min_size=1, max_size=20))
def test_round_trip(packets: list[bytes]) -> None:
    assert c.decode(c.encode(packets)).packets == tuple(packets)


@pytest.mark.parametrize(
    ("data", "kept", "code"),
    [
        (b"\xc1\x03abc\x05ab", 1, "truncated"),
        (b"\xc1\x03abc\x00", 1, "bad-field"),
        (b"\xc1\xffabc", 0, "oversize"),
        (b"\xc1", 0, "truncated"),
    ],
)
def test_damage_keeps_the_entries_before_it(data: bytes, kept: int, code: str) -> None:
    out = c.decode(data)
    assert len(out.packets) == kept
    assert out.error is not None and out.error.code == code and out.error.message


@pytest.mark.parametrize("data", [b"", b"\x01\x80" + b"\x00" * 98])
def test_unreadable_from_the_first_byte(data: bytes) -> None:
    with pytest.raises(c.ContainerError):
        c.decode(data)


def test_encoder_refuses_what_it_cannot_frame() -> None:
    with pytest.raises(c.ContainerError):
        c.encode([])
    with pytest.raises(c.ContainerError):
        c.encode([b"x" * 220])
    with pytest.raises(c.ContainerError):
        c.encode([b""])


def test_costs() -> None:
    assert [c.sbd_credits(n) for n in (1, 50, 51, 340)] == [1, 1, 2, 7]
    assert [c.sms_parts(n) for n in (1, 140, 141, 268, 269)] == [1, 1, 2, 2, 3]


def test_packer_never_passes_over_a_more_urgent_packet_that_fits() -> None:
    rng = random.Random(7)
    packer = c.sbd_packer()
    for _ in range(300):
        cands = sorted(
            (c.Candidate(rng.randint(100, 219), rng.choice([0, 2, 4, 5])) for _ in range(15)),
            key=lambda x: -x.rank,
        )
        chosen = packer.choose(cands)
        assert 0 in chosen
        used = c.size([cands[i].size for i in chosen])
        assert used <= c.SBD_MO_MAX
        lowest = min(cands[i].rank for i in chosen)
        for i, cand in enumerate(cands):
            if i not in chosen and cand.rank > lowest:
                # left out only because it did not fit beside the more urgent ones
                more_urgent = [cands[j].size for j in chosen if cands[j].rank >= cand.rank]
                assert c.size([*more_urgent, cand.size]) > c.SBD_MO_MAX


def test_urgent_packets_take_as_much_room_as_fits() -> None:
    packer = c.sbd_packer()
    # announcement + its SOS: both go now even though one alone would waste less
    assert packer.choose([c.Candidate(142, 5), c.Candidate(107, 4)]) == [0, 1]


def test_packing_a_backlog_wastes_little() -> None:
    rng = random.Random(3)
    for packer, goal in ((c.sbd_packer(), 0.9), (c.sms_packer(4), 0.9)):
        queue = [c.Candidate(rng.choice([107, 118, 138, 142, 149, 125]), 0) for _ in range(120)]
        payload = paid = 0
        while queue:
            chosen = packer.choose(queue)
            sizes = [queue[i].size for i in chosen]
            payload += sum(sizes)
            paid += packer.paid(c.size(sizes))
            queue = [q for i, q in enumerate(queue) if i not in chosen]
        assert payload / paid >= goal

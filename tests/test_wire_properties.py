"""Property-based checks of the wire format: round trips and rejection of every corruption."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signalfire import wire
from signalfire.wire import chain as wchain
from wirekit import Net

TEXT_ALPHABET = st.characters(
    blacklist_categories=("Cs", "Cc"),  # surrogates cannot be UTF-8; controls are refused
)

locations = st.builds(
    wire.Location,
    lat_q=st.integers(0, wire.location.LAT_STEPS),
    lon_q=st.integers(0, wire.location.LON_STEPS - 1),
    accuracy_class=st.integers(0, wire.vocab.MAX_ACCURACY_CLASS),
)
attestations = st.builds(
    wire.Attestation,
    node_num=st.integers(0, 2**32 - 1),
    packet_id=st.integers(0, 2**32 - 1),
    rx_time=st.integers(0, 2**32 - 1),
    pki_authenticated=st.booleans(),
    direct_message=st.booleans(),
    hops=st.integers(0, 255),
    position_age=st.none() | st.integers(0, 65535),
)
reports = st.builds(
    wire.Report,
    status=st.sampled_from(list(wire.Status)),
    time=st.integers(0, 2**32 - 1),
    people=st.integers(0, 255),
    needs=st.integers(0, 63).map(wire.Need),
    location=st.none() | locations,
    text=st.none() | st.text(TEXT_ALPHABET, min_size=1, max_size=60),
    attestation=st.none() | attestations,
)


@st.composite
def sealed_packets(draw: st.DrawFn) -> tuple[Net, bytes, wire.Report]:
    net = Net("prop")
    report = draw(reports)
    if wire.report_size(report) > wire.MAX_PACKET:
        report = wire.Report(report.status, report.time, report.people, report.needs)
    return net, net.seal(report), report


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(reports)
def test_body_round_trip(report: wire.Report) -> None:
    assert wire.decode_body(wire.encode_body(report)) == report


@settings(max_examples=150, deadline=None)
@given(reports, st.integers(0, 2**32 - 1))
def test_seal_open_round_trip_or_clear_size_error(report: wire.Report, seq: int) -> None:
    net = Net("prop")
    size = wire.report_size(report)
    if size > wire.MAX_PACKET:
        with pytest.raises(wire.TooLarge) as info:
            wire.seal_report(report, net.identity, net.chain, seq)
        assert str(size - wire.MAX_PACKET) in info.value.message
        return
    packet, _ = wire.seal_report(report, net.identity, net.chain, seq)
    assert len(packet) == size
    opened = net.ring.open(packet)
    assert opened.report == report
    assert opened.seq == seq
    assert opened.priority == wire.priority_of(report.status)


@settings(max_examples=8, deadline=None)
@given(sealed_packets())
def test_every_single_bit_flip_is_rejected(case: tuple[Net, bytes, wire.Report]) -> None:
    net, packet, _ = case
    for i in range(len(packet) * 8):
        corrupt = bytearray(packet)
        corrupt[i // 8] ^= 1 << (i % 8)
        with pytest.raises(wire.WireError):
            net.ring.open(bytes(corrupt))


@settings(max_examples=8, deadline=None)
@given(sealed_packets())
def test_every_truncation_is_rejected(case: tuple[Net, bytes, wire.Report]) -> None:
    net, packet, _ = case
    for n in range(len(packet)):
        with pytest.raises(wire.WireError):
            net.ring.open(packet[:n])


@settings(max_examples=20, deadline=None)
@given(sealed_packets(), sealed_packets(), st.data())
def test_splices_of_two_reports_are_rejected(
    a: tuple[Net, bytes, wire.Report], b: tuple[Net, bytes, wire.Report], data: st.DataObject
) -> None:
    net, pa, _ = a
    _, pb, _ = b
    cut_a = data.draw(st.integers(1, len(pa) - 1))
    cut_b = data.draw(st.integers(0, len(pb) - 1))
    spliced = pa[:cut_a] + pb[cut_b:]
    if spliced in (pa, pb):
        return
    with pytest.raises(wire.WireError):
        net.ring.open(spliced)


@settings(max_examples=200)
@given(st.binary(max_size=300))
def test_random_bytes_never_escape_as_other_exceptions(data: bytes) -> None:
    ring = Net("prop").ring
    try:
        packet = wire.parse(data)
        if isinstance(packet, wire.Announcement):
            ring.add(packet)
        else:
            ring.open(packet)
    except wire.WireError as exc:
        assert exc.message


@settings(max_examples=200)
@given(st.binary(max_size=300))
def test_random_bodies_never_escape_as_other_exceptions(data: bytes) -> None:
    try:
        report = wire.decode_body(data)
    except wire.WireError:
        return
    # whatever decodes re-encodes to the same bytes: the body layout is canonical
    assert wire.encode_body(report) == data


@settings(max_examples=300)
@given(
    st.floats(-90, 90, allow_nan=False),
    st.floats(-180, 180, allow_nan=False),
)
def test_location_quantisation_error_is_a_few_metres(lat: float, lon: float) -> None:
    import math

    loc = wire.Location.from_degrees(lat, lon)
    again = wire.Location.decode(loc.encode())
    assert again == loc
    dlat_m = abs(again.lat - lat) * 111_320
    dlon = abs(again.lon - lon)
    dlon = min(dlon, 360 - dlon)  # -180 and +180 are the same meridian
    dlon_m = dlon * 111_320 * math.cos(math.radians(lat))
    assert dlat_m <= 0.6
    assert dlon_m <= 1.2


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=12, unique=True))
def test_tree_state_gives_the_same_leaves_as_the_root(seqs: list[int]) -> None:
    root = b"\x42" * 32
    state = wchain.ChainState.start(root, 0)
    for seq in sorted(seqs):
        leaf, state = state.take(seq)
        assert leaf == wchain.leaf_key(root, seq)
        # forward secrecy: nothing left covers seq or anything before it
        assert all(node.start > seq for node in state.nodes)
        assert len(state.nodes) <= wchain.DEPTH
        covered = sum(node.end - node.start for node in state.nodes)
        assert covered == wchain.SEQ_LIMIT - (seq + 1)

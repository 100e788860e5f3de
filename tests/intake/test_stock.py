"""Gateway-side stock intake: attested reports, replies and the reply budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from signalfire import wire
from signalfire.intake import MAX_REPLY_BYTES
from signalfire.intake.stock import StockIntake, reference_for
from signalfire.keyfiles import load_network_key
from signalfire.profile import init_network
from signalfire.radio.api import BROADCAST, Position, Received
from signalfire.sender import Identity

GATEWAY_NODE = 0x0A0B0C0D
CIVILIAN = 0x11223344
T0 = 1_795_860_000.0


def text(body: str, *, packet_id: int = 1, sender: int = CIVILIAN, to: int = GATEWAY_NODE,
         pki: bool = True) -> Received:  # fmt: skip
    return Received(
        from_node=sender, to_node=to, packet_id=packet_id, portnum=1,
        payload=body.encode(), channel=0, rx_time=int(T0), snr=5.0, rssi=-90,
        hop_limit=1, hop_start=3, pki_encrypted=pki, text=body,
    )  # fmt: skip


def position(lat: float, lon: float, bits: int | None = None) -> Received:
    return Received(
        from_node=CIVILIAN, to_node=BROADCAST, packet_id=99, portnum=3, payload=b"",
        channel=0, rx_time=int(T0), snr=5.0, rssi=-90, hop_limit=3, hop_start=3,
        pki_encrypted=False, position=Position(lat, lon, precision_bits=bits),
    )  # fmt: skip


@pytest.fixture
def setup(tmp_path: Path) -> tuple[StockIntake, wire.Keyring]:
    profile, key_path = init_network(tmp_path / "net", "town")
    gateway = Identity.create(tmp_path / "gateway.key")
    announcement, _ = gateway.enrol(profile)
    private = load_network_key(key_path)
    ring = wire.Keyring(profile.public_key, private)
    ring.add(announcement)
    return StockIntake(gateway, profile), ring


def test_sos_text_becomes_an_attested_report_with_the_radios_position(
    setup: tuple[StockIntake, wire.Keyring],
) -> None:
    intake, ring = setup
    intake.on_position(position(40.18, 44.51), T0 - 120)
    result = intake.on_text(text("SOS 3 second floor"), T0)
    assert result is not None and result.packet is not None
    opened = ring.open(result.packet)
    assert opened.kind is wire.Kind.ATTESTED
    assert opened.priority is wire.Priority.LIFE_SAFETY
    rep = opened.report
    assert (rep.status, rep.people, rep.text) == (wire.Status.SOS, 3, "second floor")
    assert rep.location is not None and abs(rep.location.lat - 40.18) < 1e-5
    att = rep.attestation
    assert att is not None
    assert (att.node_num, att.packet_id, att.hops) == (CIVILIAN, 1, 2)
    assert att.pki_authenticated and att.direct_message
    assert att.position_age == 120
    assert att.rx_time == int(T0)
    assert result.reply is not None and reference_for(opened.id) in result.reply
    assert len(result.reply.encode()) <= MAX_REPLY_BYTES


def test_reply_is_in_the_senders_language(setup: tuple[StockIntake, wire.Keyring]) -> None:
    intake, _ = setup
    ru = intake.on_text(text("помогите нас 4", packet_id=1), T0)
    hy = intake.on_text(text("օգնություն 2", packet_id=2, sender=0x55), T0)
    assert ru is not None and ru.reply is not None and "Принято" in ru.reply
    assert hy is not None and hy.reply is not None and "Ստացանք" in hy.reply


def test_channel_message_and_coarse_position(setup: tuple[StockIntake, wire.Keyring]) -> None:
    intake, ring = setup
    intake.on_position(position(40.18, 44.51, bits=13), T0)
    result = intake.on_text(text("WATER 5", to=BROADCAST, pki=False), T0)
    assert result is not None and result.packet is not None
    rep = ring.open(result.packet).report
    assert rep.status is wire.Status.NEED_SUPPLIES and rep.needs == wire.Need.WATER
    assert rep.attestation is not None
    assert not rep.attestation.direct_message and not rep.attestation.pki_authenticated
    assert rep.location is not None and rep.location.accuracy_class == 10  # ~2.9 km: <= 5 km


def test_stale_position_is_not_attached(setup: tuple[StockIntake, wire.Keyring]) -> None:
    intake, ring = setup
    intake.on_position(position(40.18, 44.51), T0 - 7 * 3600)
    result = intake.on_text(text("TRAPPED 2"), T0)
    assert result is not None and result.packet is not None
    rep = ring.open(result.packet).report
    assert rep.location is None
    assert rep.attestation is not None and rep.attestation.position_age is None


def test_unreadable_text_gets_help_once_per_interval(
    setup: tuple[StockIntake, wire.Keyring],
) -> None:
    intake, _ = setup
    first = intake.on_text(text("hello?", packet_id=1), T0)
    again = intake.on_text(text("what", packet_id=2), T0 + 60)
    later = intake.on_text(text("??", packet_id=3), T0 + 601)
    assert first is not None and first.packet is None and first.reply is not None
    assert again is not None and again.reply is None  # budget: no second help within 10 min
    assert later is not None and later.reply is not None


def test_repeated_sos_is_recorded_every_time_but_answered_once_a_minute(
    setup: tuple[StockIntake, wire.Keyring],
) -> None:
    intake, _ = setup
    results = [intake.on_text(text("SOS", packet_id=n), T0 + n) for n in range(1, 6)]
    assert all(r is not None and r.packet is not None for r in results)
    assert sum(1 for r in results if r is not None and r.reply) == 1


def test_the_same_packet_heard_twice_is_handled_once(
    setup: tuple[StockIntake, wire.Keyring],
) -> None:
    intake, _ = setup
    assert intake.on_text(text("SOS", packet_id=7), T0) is not None
    assert intake.on_text(text("SOS", packet_id=7), T0 + 1) is None


def test_cancel_gets_the_cancel_reply(setup: tuple[StockIntake, wire.Keyring]) -> None:
    intake, ring = setup
    result = intake.on_text(text("CANCEL"), T0)
    assert result is not None and result.packet is not None and result.reply is not None
    assert ring.open(result.packet).report.status is wire.Status.CANCEL
    assert "Cancel" in result.reply


def test_long_text_is_trimmed_to_fit_not_refused(setup: tuple[StockIntake, wire.Keyring]) -> None:
    intake, ring = setup
    intake.on_position(position(40.18, 44.51), T0)
    body = "SOS 2 " + "Мы в подвале дома номер семь, вход со двора, " * 6
    result = intake.on_text(text(body), T0)
    assert result is not None and result.packet is not None
    assert len(result.packet) <= wire.MAX_PACKET
    rep = ring.open(result.packet).report
    assert rep.status is wire.Status.SOS and rep.people == 2
    assert rep.text and body[6:].startswith(rep.text[:20])


def test_control_characters_from_a_stock_app_do_not_break_intake(
    setup: tuple[StockIntake, wire.Keyring],
) -> None:
    intake, ring = setup
    result = intake.on_text(text("SOS 2\r\nroof\x07 collapsed\x00"), T0)
    assert result is not None and result.packet is not None
    assert ring.open(result.packet).report.text == "roof collapsed"

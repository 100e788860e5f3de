"""The ingest core: every packet judged on its own, stored once, with a receipt per path."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from signalfire import wire
from signalfire.batch import BatchError
from signalfire.coordinator.ingest import (
    ATTESTER_NOT_ENROLLED,
    Ingestor,
    Policy,
    RevokedGateway,
    UnknownGateway,
)
from signalfire.coordinator.store import CoordinatorStore, flag_labels

from .kit import NOW, Sender, World, flip, pid


def _report(store: CoordinatorStore, report_id: str) -> dict[str, Any]:
    with store.transaction(write=False) as tx:
        row = tx.report(report_id)
    assert row is not None, f"report {report_id} not stored"
    return row


def _counts(store: CoordinatorStore) -> dict[str, int]:
    with store.transaction(write=False) as tx:
        return tx.counts()


def test_reports_and_their_announcement_in_one_batch(world: World, store: CoordinatorStore) -> None:
    ing = world.ingestor(store)
    alice = world.sender()
    first = alice.report(text="two hurt")
    second = alice.report(wire.Status.SAFE)
    # the report travels ahead of its announcement: order within a batch does not matter
    result = ing.ingest_batch(world.batch([first, alice.announcement, second]), "https", NOW)
    assert result.stored == [pid(alice.announcement), pid(first), pid(second)]
    assert result.duplicates == result.pending == result.deferred == []
    assert result.rejected == []
    row = _report(store, pid(first))
    assert (row["status"], row["priority"], row["kind"]) == ("sos", "life-safety", "report")
    assert (row["text"], row["people"], row["seq"], row["flags"]) == ("two hurt", 3, 0, 0)
    assert row["key_id"] == alice.key_id.hex()
    assert row["first_received_at"] == NOW and row["created_at"] == int(NOW)
    with store.transaction(write=False) as tx:
        [receipt] = tx.receipts(pid(first))
    assert (receipt.gateway_key_id, receipt.uplink, receipt.radio_node, receipt.hops) == (
        wire.key_id(wire.ed25519_public_bytes(world.gateways["gw1"])).hex(),
        "https",
        0x11223344,
        1,
    )


def test_replayed_batch_changes_nothing(world: World, store: CoordinatorStore) -> None:
    ing = world.ingestor(store)
    alice = world.sender()
    data = world.batch([alice.announcement, alice.report(), flip(alice.report(), -1)])
    first = ing.ingest_batch(data, "https", NOW)
    before = _counts(store)
    with store.transaction(write=False) as tx:
        rejections = tx.rejection_counts()
    again = ing.ingest_batch(data, "https", NOW + 60)
    assert again.replayed and not first.replayed
    assert again.response() == first.response()
    assert _counts(store) == before
    with store.transaction(write=False) as tx:
        assert tx.rejection_counts() == rejections


def test_same_report_via_two_gateways_and_two_uplinks(
    world: World, store: CoordinatorStore
) -> None:
    ing = world.ingestor(store)
    alice = world.sender()
    packet = alice.report()
    r1 = ing.ingest_batch(world.batch([alice.announcement, packet], "gw1"), "https", NOW)
    r2 = ing.ingest_batch(world.batch([packet], "gw2"), "https", NOW + 1)
    r3 = ing.ingest_batch(world.batch([packet], "gw2"), "mqtt", NOW + 2)
    r4 = ing.ingest_batch(world.batch([packet], "gw2"), "mqtt", NOW + 3)  # another batch id
    assert pid(packet) in r1.stored
    assert r2.duplicates == r3.duplicates == r4.duplicates == [pid(packet)]
    assert _counts(store)["reports"] == 1
    with store.transaction(write=False) as tx:
        receipts = tx.receipts(pid(packet))
    assert [(r.gateway_key_id[:4], r.uplink) for r in receipts] == [
        (wire.key_id(wire.ed25519_public_bytes(world.gateways[g])).hex()[:4], u)
        for g, u in (("gw1", "https"), ("gw2", "https"), ("gw2", "mqtt"))
    ]


def test_unknown_sender_is_kept_until_announced(world: World, store: CoordinatorStore) -> None:
    ing = world.ingestor(store)
    bob = world.sender()
    early = [bob.report(), bob.report(wire.Status.MEDICAL)]
    r1 = ing.ingest_batch(world.batch(early, "gw1"), "https", NOW)
    r2 = ing.ingest_batch(world.batch(early[:1], "gw2"), "https", NOW + 1)
    assert r1.pending == [pid(p) for p in early] and r2.pending == [pid(early[0])]
    assert _counts(store)["pending"] == 2 and _counts(store)["reports"] == 0
    r3 = ing.ingest_batch(world.batch([bob.announcement]), "https", NOW + 2)
    assert r3.stored == [pid(bob.announcement)]
    assert sorted(r3.released) == sorted(pid(p) for p in early)
    assert _counts(store)["pending"] == 0 and _counts(store)["reports"] == 2
    with store.transaction(write=False) as tx:
        assert len(tx.receipts(pid(early[0]))) == 2  # both gateways, kept while pending


def test_keyring_is_rebuilt_from_the_store(world: World) -> None:
    store = world.store()
    carol = world.sender()
    world.ingestor(store).ingest_batch(world.batch([carol.announcement]), "https", NOW)
    store.close()
    restarted = world.ingestor()  # a fresh keyring, filled from stored announcements
    result = restarted.ingest_batch(world.batch([carol.report()]), "https", NOW)
    assert len(result.stored) == 1
    restarted.store.close()


def test_pending_left_at_a_restart_opens_at_start(world: World) -> None:
    store = world.store()
    ing = world.ingestor(store)
    dave = world.sender()
    packet = dave.report()
    ing.ingest_batch(world.batch([packet]), "https", NOW)
    # another ingest process stored the announcement directly
    with store.transaction() as tx:
        tx.add_announcement(
            pid(dave.announcement), dave.announcement, dave.key_id.hex(), dave.public, NOW
        )
    store.close()
    again = world.ingestor()
    assert _report(again.store, pid(packet))["status"] == "sos"
    again.store.close()


def test_forgery_is_rejected_counted_and_does_not_sink_the_batch(
    world: World, store: CoordinatorStore
) -> None:
    ing = world.ingestor(store)
    erin = world.sender()
    good = erin.report()
    forged_sig = flip(erin.report(), -1)  # a bit of the signature
    forged_body = flip(erin.report(), 20)  # a bit of the ciphertext: the id changes too
    garbage = b"\x07 not a signalfire packet"  # unknown version
    data = world.batch([forged_sig, erin.announcement, garbage, good, forged_body])
    result = ing.ingest_batch(data, "https", NOW)
    assert result.stored == [pid(erin.announcement), pid(good)]
    assert dict(result.rejected) == {
        pid(forged_sig): "bad-signature",
        pid(forged_body): "bad-signature",
        pid(garbage): "unknown-version",
    }
    gw = wire.key_id(wire.ed25519_public_bytes(world.gateways["gw1"])).hex()
    with store.transaction(write=False) as tx:
        assert tx.rejection_counts() == {(gw, "bad-signature"): 2, (gw, "unknown-version"): 1}
        assert [s["raw"] for s in tx.rejection_samples(gw, "unknown-version")] == [garbage]
        assert tx.receipts(pid(forged_body)) == []


def test_forged_copy_of_a_stored_report_is_not_a_duplicate(
    world: World, store: CoordinatorStore
) -> None:
    ing = world.ingestor(store)
    frank = world.sender()
    packet = frank.report()
    ing.ingest_batch(world.batch([frank.announcement, packet]), "https", NOW)
    # same signed part (so the same id), broken signature, via another gateway
    result = ing.ingest_batch(world.batch([flip(packet, -1)], "gw2"), "https", NOW)
    assert result.rejected == [(pid(packet), "bad-signature")]
    with store.transaction(write=False) as tx:
        assert len(tx.receipts(pid(packet))) == 1


def test_forged_pending_copy_cannot_shadow_the_genuine_one(
    world: World, store: CoordinatorStore
) -> None:
    ing = world.ingestor(store)
    gina = world.sender()
    packet = gina.report()
    forged = flip(packet, -1)  # the same id: everything but the signature is intact
    assert ing.ingest_batch(world.batch([forged], "gw2"), "https", NOW).pending == [pid(packet)]
    assert ing.ingest_batch(world.batch([packet]), "https", NOW).pending == [pid(packet)]
    result = ing.ingest_batch(world.batch([gina.announcement]), "https", NOW)
    assert result.released == [pid(packet)]
    gw2 = wire.key_id(wire.ed25519_public_bytes(world.gateways["gw2"])).hex()
    with store.transaction(write=False) as tx:
        assert tx.report_raw(pid(packet)) == packet
        assert tx.counts()["pending"] == 0
        assert tx.rejection_counts() == {(gw2, "bad-signature"): 1}


def test_attested_report_from_an_enrolled_gateway(world: World, store: CoordinatorStore) -> None:
    ing = world.ingestor(store)
    gw = world.gateway_sender("gw2")
    att = wire.Attestation(node_num=0x0A0B0C0D, packet_id=77, rx_time=int(NOW) - 3, hops=2)
    packet = gw.report(wire.Status.TRAPPED, attestation=att, text="SOS 3")
    # attested by gw2, carried to us by gw1
    result = ing.ingest_batch(world.batch([gw.announcement, packet], "gw1"), "https", NOW)
    assert pid(packet) in result.stored
    row = _report(store, pid(packet))
    assert row["kind"] == "attested" and row["status"] == "trapped"
    assert json.loads(str(row["attestation"]))["node_num"] == 0x0A0B0C0D


def test_attested_report_from_a_stranger_is_rejected(world: World, store: CoordinatorStore) -> None:
    ing = world.ingestor(store)
    stranger = world.sender()  # a valid enrolled identity, but not an enrolled gateway
    att = wire.Attestation(node_num=1, packet_id=2, rx_time=int(NOW))
    packet = stranger.report(attestation=att)
    result = ing.ingest_batch(world.batch([stranger.announcement, packet]), "https", NOW)
    assert result.rejected == [(pid(packet), ATTESTER_NOT_ENROLLED)]
    assert _counts(store)["reports"] == 0


def test_attested_by_a_revoked_gateway_is_rejected(world: World, store: CoordinatorStore) -> None:
    ing = world.ingestor(store)
    gw = world.gateway_sender("gw2")
    packet = gw.report(attestation=wire.Attestation(node_num=1, packet_id=2, rx_time=int(NOW)))
    store.revoke_gateway(gw.key_id.hex(), NOW, actor="test")
    result = ing.ingest_batch(world.batch([gw.announcement, packet], "gw1"), "https", NOW)
    assert result.rejected == [(pid(packet), ATTESTER_NOT_ENROLLED)]


def test_unknown_and_revoked_gateways_are_refused(world: World, store: CoordinatorStore) -> None:
    ing = world.ingestor(store)
    alice = world.sender()
    with pytest.raises(UnknownGateway):
        ing.ingest_batch(world.batch([alice.announcement], Ed25519PrivateKey.generate()), "x", NOW)
    gw1 = wire.key_id(wire.ed25519_public_bytes(world.gateways["gw1"])).hex()
    store.revoke_gateway(gw1, NOW, actor="test")
    with pytest.raises(RevokedGateway):
        ing.ingest_batch(world.batch([alice.announcement], "gw1"), "https", NOW)
    assert _counts(store)["announcements"] == 0
    # configuration cannot bring a revoked gateway back
    again = world.ingestor(store)
    with pytest.raises(RevokedGateway):
        again.ingest_batch(world.batch([alice.announcement], "gw1"), "https", NOW)


def test_bad_envelopes_raise_and_store_nothing(world: World, store: CoordinatorStore) -> None:
    ing = world.ingestor(store)
    alice = world.sender()
    data = world.batch([alice.announcement])
    tampered = data.replace(b'"batch_id\\":\\"', b'"batch_id\\":\\"x')
    assert tampered != data
    for bad, code in ((b"{}", "bad-batch"), (b"\xff\x00", "bad-batch"), (tampered, "corrupt")):
        with pytest.raises(BatchError) as info:
            ing.ingest_batch(bad, "https", NOW)
        assert info.value.code == code
    other = wire.network_id(wire.x25519_public_bytes(X25519PrivateKey.generate()))
    with pytest.raises(BatchError) as info:
        ing.ingest_batch(world.batch([alice.announcement], network_id=other), "https", NOW)
    assert info.value.code == "not-for-this-network"
    assert _counts(store)["announcements"] == 0


def test_announcement_for_another_network_is_rejected(
    world: World, store: CoordinatorStore
) -> None:
    ing = world.ingestor(store)
    elsewhere = Sender(wire.x25519_public_bytes(X25519PrivateKey.generate()))
    result = ing.ingest_batch(world.batch([elsewhere.announcement]), "https", NOW)
    assert result.rejected == [(pid(elsewhere.announcement), "not-for-this-network")]


def test_time_flags(world: World, store: CoordinatorStore) -> None:
    ing = world.ingestor(store, Policy(future_skew_s=600, max_age_s=3600))
    hal = world.sender()
    ahead = hal.report(time=NOW + 601)
    slightly_ahead = hal.report(time=NOW + 599)
    old = hal.report(time=NOW - 3601)
    ing.ingest_batch(world.batch([hal.announcement, ahead, slightly_ahead, old]), "https", NOW)
    assert flag_labels(int(_report(store, pid(ahead))["flags"])) == ["future-time"]
    assert _report(store, pid(slightly_ahead))["flags"] == 0
    assert flag_labels(int(_report(store, pid(old))["flags"])) == ["too-old"]


def test_sequence_reuse_flags_both_reports(world: World, store: CoordinatorStore) -> None:
    ing = world.ingestor(store)
    ivy = world.sender()
    chain = ivy.chain  # a backup of the key-tree state, restored later
    first = ivy.report(text="first")
    ivy.chain = chain
    reused = ivy.seal(wire.Report(status=wire.Status.SAFE, time=int(NOW)), seq=0)
    other = ivy.report()
    assert pid(first) != pid(reused)
    result = ing.ingest_batch(world.batch([ivy.announcement, first, other]), "https", NOW)
    assert len(result.stored) == 3
    ing.ingest_batch(world.batch([reused], "gw2"), "https", NOW)
    for packet, labels in ((first, ["seq-reused"]), (reused, ["seq-reused"]), (other, [])):
        assert flag_labels(int(_report(store, pid(packet))["flags"])) == labels


def test_full_pending_defers_instead_of_dropping(world: World, store: CoordinatorStore) -> None:
    ing = world.ingestor(store, Policy(max_pending=1))
    jo = world.sender()
    a, b = jo.report(), jo.report()
    data = world.batch([a, b])
    result = ing.ingest_batch(data, "https", NOW)
    assert result.pending == [pid(a)] and result.deferred == [pid(b)]
    # an answer with deferred packets is not cached: sending again processes them again
    assert not ing.ingest_batch(data, "https", NOW).replayed
    ing.ingest_batch(world.batch([jo.announcement]), "https", NOW)
    assert ing.ingest_batch(world.batch([b]), "https", NOW).stored == [pid(b)]


def test_internal_error_defers_one_packet(
    world: World, store: CoordinatorStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    ing = world.ingestor(store)
    kim = world.sender()
    poison, fine = kim.report(wire.Status.SAFE), kim.report()
    real_open = ing.keyring.open

    def fragile_open(packet: bytes | wire.SealedReport) -> wire.Opened:
        raw = packet if isinstance(packet, bytes) else packet.raw
        if raw == poison:
            raise RuntimeError("a bug")
        return real_open(packet)

    monkeypatch.setattr(ing.keyring, "open", fragile_open)
    result = ing.ingest_batch(world.batch([kim.announcement, poison, fine]), "https", NOW)
    assert result.deferred == [pid(poison)] and pid(fine) in result.stored


def test_ingestor_needs_the_network_private_key(world: World, store: CoordinatorStore) -> None:
    with pytest.raises(ValueError, match="private"):
        Ingestor(store, wire.Keyring(world.network_public))


def test_uplink_names_are_checked(world: World, store: CoordinatorStore) -> None:
    ing = world.ingestor(store)
    with pytest.raises(ValueError, match="uplink"):
        ing.ingest_batch(world.batch([]), "HTTPS!", NOW)


def test_one_stock_text_heard_by_two_gateways_is_one_report_with_two_receipts(
    world: World, store: CoordinatorStore
) -> None:
    """Each gateway signs its own attested report of the text; the feed shows one."""
    ingestor = world.ingestor(store)
    gw1, gw2 = world.gateway_sender("gw1"), world.gateway_sender("gw2")
    heard = wire.Attestation(node_num=0x6098DAEC, packet_id=0x1234, rx_time=int(NOW) - 30)
    also = wire.Attestation(node_num=0x6098DAEC, packet_id=0x1234, rx_time=int(NOW) - 29)
    a = gw1.report(wire.Status.SAFE, attestation=heard)
    b = gw2.report(wire.Status.SAFE, attestation=also)
    first = ingestor.ingest_batch(world.batch([gw1.announcement, a], "gw1"), "https", NOW)
    second = ingestor.ingest_batch(world.batch([gw2.announcement, b], "gw2"), "mqtt", NOW)
    assert first.stored == [pid(gw1.announcement), pid(a)]
    assert second.stored == [pid(gw2.announcement)] and second.duplicates == [pid(b)]
    with store.transaction(write=False) as tx:
        assert tx.report(pid(b)) is None
        receipts = tx.receipts(pid(a))
    assert {(r.gateway_key_id, r.uplink, r.packet_id) for r in receipts} == {
        (gw1.key_id.hex(), "https", None),
        (gw2.key_id.hex(), "mqtt", pid(b)),  # the copy it delivered stays findable
    }
    # A later text that reuses the packet id (hours on) is another message.
    later = wire.Attestation(node_num=0x6098DAEC, packet_id=0x1234, rx_time=int(NOW) + 7200)
    c = gw2.report(wire.Status.SOS, attestation=later)
    third = ingestor.ingest_batch(world.batch([c], "gw2"), "mqtt", NOW + 7200)
    assert third.stored == [pid(c)]
    # Both copies in one batch (a bundle carried out from both gateways' area).
    d = gw1.report(wire.Status.MEDICAL, attestation=wire.Attestation(7, 8, int(NOW)))
    e = gw2.report(wire.Status.MEDICAL, attestation=wire.Attestation(7, 8, int(NOW) + 2))
    fourth = ingestor.ingest_batch(world.batch([d, e], "gw1"), "bundle", NOW)
    assert fourth.stored == [pid(d)] and fourth.duplicates == [pid(e)]


def test_a_revoked_sender_is_flagged_from_the_time_given(
    world: World, store: CoordinatorStore
) -> None:
    """A seized phone: its owner's earlier reports stand, what it sends later is flagged."""
    ingestor = world.ingestor(store)
    anna, gw = world.sender(), world.gateway_sender("gw1")
    before = anna.report(time=NOW - 3600)
    after = anna.report(time=NOW - 60)
    radio = gw.report(attestation=wire.Attestation(0xABCD0001, 1, int(NOW) - 30), time=NOW - 30)
    batch = world.batch([anna.announcement, gw.announcement, before, after, radio])
    ingestor.ingest_batch(batch, "https", NOW)
    with store.transaction() as tx:
        flagged = tx.revoke_sender(anna.key_id.hex(), NOW - 600, "phone seized", "test", NOW)
        tx.revoke_sender("node-abcd0001", 0, "radio taken at checkpoint", "test", NOW)
    assert flagged == 1

    later = anna.report(time=NOW + 5)
    ingestor.ingest_batch(world.batch([later]), "https", NOW + 10)

    def labels(packet: bytes) -> list[str]:
        with store.transaction(write=False) as tx:
            row = tx.report(pid(packet))
        assert row is not None
        return flag_labels(row["flags"])

    assert labels(before) == []
    assert labels(after) == ["revoked-sender"]
    assert labels(later) == ["revoked-sender"]  # flagged as it arrives
    assert labels(radio) == ["revoked-sender"]
    with store.transaction(write=False) as tx:
        actions = [e["action"] for e in tx.audit_entries()]
    assert actions.count("sender.revoke") == 2

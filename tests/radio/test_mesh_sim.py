"""The mesh simulator in pure virtual time: range, hops, flooding, loss, airtime, collisions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from meshtastic.protobuf import portnums_pb2

from signalfire import airtime
from signalfire.keyfiles import load_network_key
from signalfire.radio.mesh_protocol import BROADCAST_NUM
from signalfire.radio.mesh_sim import MeshSimulator, Scenario, ScenarioError, TrafficPlan, town
from signalfire.radio.mesh_sim.frames import REQUEST_ID_FIELD_LEN
from signalfire.radio.mesh_sim.mac import arduino_map, cw_for_snr, slot_time
from signalfire.wire import Keyring, Status

PortNum = portnums_pb2.PortNum
ROOT = Path(__file__).resolve().parents[2]

# No shadowing, fading or random loss: geometry alone decides who hears whom. On LONG_FAST
# with the default ground path loss a handheld reaches about 2.7 km: 2 km links work,
# 4 km ones do not (but still interfere).
CLEAN_AIR = {"shadowing_db": 0.0, "fading_db": 0.0, "loss": 0.0}


def scenario(
    *,
    nodes: list[dict[str, Any]],
    events: list[dict[str, Any]] = (),  # type: ignore[assignment]
    mesh: dict[str, Any] | None = None,
    seed: int = 1,
    duration: float = 120.0,
    **extra: Any,
) -> Scenario:
    """A scenario from the same tables a TOML file has; node dicts carry their 'kind'."""
    data: dict[str, Any] = {
        "scenario": {"seed": seed, "duration": duration, "start_time": 1_790_000_000},
        "mesh": {**CLEAN_AIR, **(mesh or {})},
        "events": list(events),
        **extra,
    }
    for node in nodes:
        node = dict(node)
        data.setdefault(node.pop("kind") + "s", []).append(node)
    return Scenario.from_dict(data)


def chain(*, hop_limit: int = 3, events: list[dict[str, Any]] | None = None) -> Scenario:
    """civ -- r1 -- r2 -- gw, 2 km apart: the gateway is two relays (2 hops) from civ."""
    return scenario(
        nodes=[
            {"kind": "civilian", "name": "civ", "east_m": 0},
            {"kind": "relay", "name": "r1", "east_m": 2000, "height_m": 2},
            {"kind": "relay", "name": "r2", "east_m": 4000, "height_m": 2},
            {"kind": "gateway", "name": "gw", "east_m": 6000},
        ],
        events=events
        if events is not None
        else [
            {
                "at": 1,
                "from": "civ",
                "type": "text",
                "text": "SOS 3",
                "to": "gw",
                "hop_limit": hop_limit,
            },
        ],
    )


def texts(sim: MeshSimulator, name: str) -> list[bytes]:
    return [r.frame.payload for r in sim.inbox(name) if r.frame.portnum == PortNum.TEXT_MESSAGE_APP]


def test_firmware_contention_numbers() -> None:
    # RadioInterface: slot = 2.5 symbols + 7.6 ms, whole ms; CW maps SNR -20..10 onto 3..8.
    assert slot_time(airtime.PRESETS["LONG_FAST"]) == pytest.approx(0.028)
    assert slot_time(airtime.PRESETS["SHORT_FAST"]) == pytest.approx(0.008)
    assert arduino_map(-5.0, -20, 10, 3, 8) == 5
    assert arduino_map(-25.0, -20, 10, 3, 8) == 3  # -5 * 5 / 30 truncates towards zero
    assert cw_for_snr(-20) == 3
    assert cw_for_snr(10) == 8
    assert cw_for_snr(30) == 8


def test_out_of_range_nodes_do_not_hear_each_other() -> None:
    sim = MeshSimulator(
        scenario(
            nodes=[
                {"kind": "civilian", "name": "near", "east_m": 0},
                {"kind": "civilian", "name": "neighbour", "east_m": 1500},
                {"kind": "civilian", "name": "far", "east_m": 12_000},
            ],
            events=[{"at": 1, "from": "near", "type": "canned", "text": "SOS"}],
        )
    )
    assert sim.topology.in_range(sim.num("near"), sim.num("neighbour"))
    assert not sim.topology.in_range(sim.num("near"), sim.num("far"))
    assert sim.topology.link(sim.num("near"), sim.num("far")) is None  # not even interference
    sim.run()
    assert texts(sim, "neighbour") == [b"SOS"]
    assert texts(sim, "far") == []
    assert sim.stats("far").received == 0


def test_civilian_two_relays_away_reaches_the_gateway_and_gets_its_ack() -> None:
    sim = MeshSimulator(chain())
    civ, gw = sim.num("civ"), sim.num("gw")
    assert not sim.topology.in_range(civ, sim.num("r2"))
    assert sim.topology.hops_from(civ)[gw] == 2
    sim.run()
    [got] = sim.inbox("gw")
    assert got.frame.payload == b"SOS 3"
    assert (got.frame.src, got.frame.dst) == (civ, gw)
    assert (got.frame.hop_start, got.frame.hop_limit) == (3, 1)  # two relays on the way
    assert got.frame.pki  # a DM between radios that know each other's keys
    assert sim.stats("r1").relays_queued >= 1
    assert sim.stats("gw").acks_sent == 1
    assert sim.stats("civ").acked == 1  # the ack flooded back over both relays
    assert sim.stats("civ").retransmissions == 0
    assert sim.summary()["delivery"]["ratio"] == 1.0


def test_hop_limit_one_does_not_reach_two_hops_away() -> None:
    sim = MeshSimulator(chain(hop_limit=1))
    sim.run()
    [at_r2] = sim.inbox("r2") or [None]
    seen_by_r2 = [e for e in sim.log.of_kind("rx") if e[2] == sim.num("r2")]
    assert seen_by_r2, "r1 relays it once"
    assert all("hop=0" in e[5] for e in seen_by_r2)  # and r2 must not relay it further
    assert texts(sim, "gw") == []
    assert sim.stats("r2").relays_queued == 0
    assert at_r2 is None  # a DM for gw is relayed, not delivered, at r2
    # As on real radios, r1's rebroadcast is taken as an (implicit) ack: no retries.
    assert sim.stats("civ").implicit_acks == 1
    assert sim.stats("civ").acked == 0
    assert sim.stats("civ").retransmissions == 0


def cluster(role: str, count: int = 6, seed: int = 2) -> MeshSimulator:
    """`count` radios within 300 m of each other; the first broadcasts once."""
    nodes = [
        {"kind": "relay", "name": f"n{i}", "east_m": 60 * i, "north_m": 40 * (i % 2), "role": role}
        for i in range(count)
    ]
    events = [{"at": 1, "from": "n0", "type": "text", "text": "hello all"}]
    return MeshSimulator(scenario(nodes=nodes, events=events, seed=seed))


def test_flooding_duplicates_are_suppressed_and_clients_cancel_rebroadcasts() -> None:
    sim = cluster("CLIENT")
    sim.run()
    summary = sim.summary()
    for i in range(1, 6):
        assert texts(sim, f"n{i}") == [b"hello all"], f"n{i} got it exactly once"
    assert summary["duplicates_suppressed"] > 0
    assert summary["rebroadcasts_cancelled"] > 0
    # Everyone queued a rebroadcast, most cancelled it on hearing the first relay.
    assert summary["rebroadcasts_queued"] == 5
    assert summary["transmissions"] < 6
    assert sim.log.of_kind("cancel")


def test_routers_always_rebroadcast() -> None:
    sim = cluster("ROUTER")
    sim.run()
    summary = sim.summary()
    assert summary["rebroadcasts_cancelled"] == 0
    assert summary["transmissions"] == 6  # the original and one rebroadcast per router
    assert summary["duplicates_suppressed"] > 0


def test_router_late_defers_instead_of_cancelling() -> None:
    nodes = [
        {"kind": "civilian", "name": "src", "east_m": 0},
        {"kind": "relay", "name": "late", "east_m": 300, "role": "ROUTER_LATE"},
        {"kind": "relay", "name": "router", "east_m": 200, "role": "ROUTER"},
    ]
    events = [{"at": 1, "from": "src", "type": "canned", "text": "SAFE"}]
    sim = MeshSimulator(scenario(nodes=nodes, events=events))
    sim.run()
    assert sim.stats("late").rebroadcasts_cancelled == 0
    assert sim.stats("late").late_deferred == 1
    assert sim.air.tx_by_node[sim.num("late")] == 1  # it still relays, last


def town_run(seed: int, *, duration: float = 900.0) -> MeshSimulator:
    plan = TrafficPlan(position_interval=300, signalfire_share=0.0, texts=2)
    sim = MeshSimulator(
        town(
            civilians=12,
            relays=2,
            gateways=1,
            seed=seed,
            duration=duration,
            traffic=plan,
            start_time=1_790_000_000,
            loss=0.1,
        )
    )
    sim.run()
    return sim


def test_loss_is_seeded_and_deterministic() -> None:
    first, again, other = town_run(3), town_run(3), town_run(4)
    assert first.summary()["dropped"] > 0  # the 10 % loss did strike
    assert len(first.log) > 500
    assert first.log.entries == again.log.entries
    assert first.log.entries != other.log.entries
    strip = ("cpu_s",)
    a = {k: v for k, v in first.summary().items() if k not in strip}
    b = {k: v for k, v in again.summary().items() if k not in strip}
    assert a == b


def test_airtime_totals_equal_the_sum_of_packet_airtime() -> None:
    sim = MeshSimulator(
        chain(
            events=[
                {"at": 1, "from": "civ", "type": "text", "text": "SAFE 4", "to": "gw"},
                {"at": 30, "from": "civ", "type": "position"},
                {"at": 60, "from": "r1", "type": "canned", "text": "WATER"},
            ]
        )
    )
    sim.run()
    preset = sim.scenario.radio.modem
    expected = 0.0
    acks = 0
    for _, frame, seconds in sim.air.history:
        if frame.is_routing:
            # An ack carries Data.request_id, which packet_airtime does not model.
            acks += 1
            length = airtime.meshtastic_frame_len(len(frame.payload), frame.portnum, frame.pki)
            one = airtime.time_on_air(length + REQUEST_ID_FIELD_LEN, preset)
        else:
            one = airtime.packet_airtime(len(frame.payload), preset, frame.portnum, frame.pki)
        assert seconds == pytest.approx(one)
        expected += one
    summary = sim.summary()
    assert acks >= 3  # the gateway's ack, relayed twice
    assert summary["transmissions"] == len(sim.air.history)
    assert summary["airtime_s"] == pytest.approx(expected, abs=1e-5)
    per_node = summary["per_node"]
    assert sum(n["airtime_s"] for n in per_node.values()) == pytest.approx(expected, abs=1e-5)
    # Under an hour in, the duty cycle is simply this node's airtime over 3600 s.
    r1 = per_node["r1"]
    assert r1["duty_cycle_percent"] == pytest.approx(100 * r1["airtime_s"] / 3600, abs=1e-3)


def test_hidden_terminals_collide_and_the_stronger_frame_can_capture() -> None:
    def run(a_east: float) -> MeshSimulator:
        nodes = [
            {"kind": "civilian", "name": "a", "east_m": a_east, "role": "CLIENT_MUTE"},
            {"kind": "gateway", "name": "c", "east_m": 0},
            {"kind": "civilian", "name": "b", "east_m": 2500, "role": "CLIENT_MUTE"},
        ]
        events = [
            {"at": 1, "from": "a", "type": "canned", "text": "SOS"},
            {"at": 1, "from": "b", "type": "canned", "text": "HELP"},
        ]
        sim = MeshSimulator(scenario(nodes=nodes, events=events))
        sim.run()
        return sim

    hidden = run(-2000)  # a and b are 4.5 km apart: neither hears the other start
    assert not hidden.topology.in_range(hidden.num("a"), hidden.num("b"))
    assert hidden.summary()["collisions"] == 2
    assert texts(hidden, "c") == []
    captured = run(-500)  # a is 24 dB stronger at c than b: c keeps a's frame
    assert not captured.topology.in_range(captured.num("a"), captured.num("b"))
    assert captured.summary()["collisions"] == 1
    assert texts(captured, "c") == [b"SOS"]


def test_radios_in_range_collide_when_they_pick_the_same_slot() -> None:
    nodes = [
        {"kind": "civilian", "name": "a", "east_m": 0, "role": "CLIENT_MUTE"},
        {"kind": "civilian", "name": "b", "east_m": 100, "role": "CLIENT_MUTE"},
        {"kind": "gateway", "name": "c", "east_m": 50, "north_m": 50, "role": "CLIENT_MUTE"},
    ]
    events = [
        {"at": 10 * k, "from": name, "type": "canned", "text": f"{name}{k}"}
        for k in range(1, 41)
        for name in ("a", "b")
    ]
    sim = MeshSimulator(scenario(nodes=nodes, events=events, duration=420))
    sim.run()
    summary = sim.summary()
    assert summary["backoffs"] > 0  # listen-before-talk usually separates them ...
    assert summary["collisions"] > 0  # ... but not when both start within one CAD window
    assert len(texts(sim, "c")) < 80


def test_duty_cycle_limit_blocks_a_chatty_radio() -> None:
    events = [{"at": 2 * k, "from": "a", "type": "text", "text": "x" * 200} for k in range(1, 40)]
    nodes = [
        {"kind": "civilian", "name": "a", "east_m": 0},
        {"kind": "civilian", "name": "b", "east_m": 500, "role": "CLIENT_MUTE"},
    ]
    sim = MeshSimulator(
        scenario(nodes=nodes, events=events, mesh={"region": "UA_868"}, duration=200)
    )
    sim.run()
    summary = sim.summary()
    assert summary["duty_cycle_limit_percent"] == 1.0
    assert summary["duty_cycle_blocked"] > 0
    # Allowed while under 1 % of the hour (36 s), so it ends just past it.
    # Router::send checks at enqueue time, so what is already queued still goes out.
    assert 1.0 <= summary["per_node"]["a"]["duty_cycle_percent"] < 1.2


def test_sealed_reports_and_announcement_reach_a_virtual_gateway(tmp_path: Path) -> None:
    sim = MeshSimulator(
        chain(
            events=[
                {
                    "at": 1,
                    "from": "civ",
                    "type": "report",
                    "status": "medical",
                    "people": 2,
                    "needs": ["medicine"],
                    "text": "Նարեկը վիրավոր է",
                },
            ]
        ),
        keys_dir=tmp_path,
    )
    assert [o.label for o in sim.outgoing] == ["announcement", "report"]
    sim.run()
    assert sim.keys is not None and sim.keys.key_path is not None
    port = sim.keys.profile.app_port
    got = [r.frame for r in sim.inbox("gw") if r.frame.portnum == port]
    assert [f.payload for f in got] == [o.payload for o in sim.outgoing]
    assert all(f.dst == BROADCAST_NUM and f.want_ack for f in got)
    keyring = Keyring(sim.keys.profile.public_key, load_network_key(sim.keys.key_path))
    keyring.add(got[0].payload)
    opened = keyring.open(got[1].payload)
    assert opened.report.status is Status.MEDICAL
    assert opened.report.people == 2
    assert opened.report.text == "Նարեկը վիրավոր է"
    assert opened.report.time == 1_790_000_001
    assert opened.report.location is not None
    civ = sim.node("civ").node
    assert opened.report.location.lat == pytest.approx(civ.latitude, abs=1e-4)
    assert sim.stats("civ").implicit_acks == 2  # r1's rebroadcasts acked both broadcasts
    [announced, reported] = [e for e in sim.log.of_kind("send") if e[2] == sim.num("civ")]
    [implicit, _] = [e for e in sim.log.of_kind("implicit_ack") if e[2] == sim.num("civ")]
    assert announced[0] < implicit[0] < reported[0]  # the report waited for that ack


def test_the_sample_town_scenario_loads_and_runs(tmp_path: Path) -> None:
    loaded = Scenario.load(ROOT / "scenarios" / "town.toml")
    assert len(loaded.gateways) >= 1
    assert loaded.events
    sim = MeshSimulator(loaded, keys_dir=tmp_path)
    sim.run(until=300)
    summary = sim.summary()
    assert summary["transmissions"] > 0
    assert summary["delivery"]["delivered"] > 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"mesh": {"preset": "LONG_WRONG"}}, "unknown modem preset"),
        ({"mesh": {"colour": "red"}}, "unknown key"),
        ({"events": [{"at": 1, "from": "nobody", "type": "text", "text": "x"}]}, "nobody"),
        ({"events": [{"at": 1, "from": "civ", "type": "shout"}]}, "event type"),
        ({"civilians": [{"name": "civ"}, {"name": "civ"}]}, "unique"),
    ],
)
def test_scenario_errors_say_what_is_wrong(change: dict[str, Any], message: str) -> None:
    data: dict[str, Any] = {"civilians": [{"name": "civ"}], **change}
    with pytest.raises(ScenarioError, match=message):
        Scenario.from_dict(data)

"""Mesh simulator benchmark: how fast it simulates, and what it accounts.

Usage::

    python bench/mesh.py [--quick] [--markdown] [--seeds N]

Runs town scenarios (`signalfire.radio.mesh_sim.town`: civilians in the streets, ROUTER
relays on the hills, gateways near the middle, LONG_FAST on EU_868 with 2 % extra frame
loss, shadowing and fading) in pure virtual time, nothing attached, and prints, to
stdout, pipe tables of

- what happened on the simulated air: packets the civilians sent, transmissions
  (relays included), receptions, collisions, duplicates suppressed, rebroadcasts
  cancelled, total airtime, channel utilisation, duty cycle, and the delivery ratio to
  the gateways with its latency;
- how fast: simulated packets (transmissions) per second of CPU, events per second of
  CPU, and simulated seconds per second of CPU;
- a check that the airtime accounted equals the Semtech time on air of every frame sent
  (`signalfire.airtime`), recomputed independently;

and the machine it ran on. The default is the 30-civilian town for a simulated hour with
three seeds (each run five times for the CPU time, the median kept), and a 100-civilian
city; ``--quick`` runs the town once for ten simulated minutes (for tests). Signalfire
reports are sealed for real before the clock starts; the time that takes is shown apart
and not counted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import benchkit
from signalfire import airtime
from signalfire.radio.mesh_sim import MeshSimulator, town
from signalfire.radio.mesh_sim.frames import REQUEST_ID_FIELD_LEN

START_TIME = 1_790_000_000  # fixed, so every run seals the same reports (but new keys)

# Row labels; tests/test_bench_mesh.py finds its rows by these.
ROW_DELIVERY = "delivery ratio to gateways"
ROW_PACKETS_PER_CPU_S = "simulated packets per CPU second"
ROW_AIRTIME = "airtime accounted (s)"
AIRTIME_CHECK = "airtime check"


@dataclass(frozen=True)
class Case:
    label: str
    civilians: int
    relays: int
    gateways: int
    radius_m: float
    duration: float


TOWN = Case("town", civilians=30, relays=3, gateways=2, radius_m=2500, duration=3600)
CITY = Case("city", civilians=100, relays=6, gateways=4, radius_m=4000, duration=3600)


@dataclass
class Run:
    case: Case
    seed: int
    setup_s: float
    cpu_s: float
    wall_s: float
    summary: dict[str, Any]
    airtime_recomputed: float

    @property
    def transmissions(self) -> int:
        return int(self.summary["transmissions"])

    @property
    def events(self) -> int:
        return int(self.summary["events_processed"])


def simulate(case: Case, seed: int, duration: float, repeat: int) -> Run:
    """Run one case `repeat` times (identical work: one seed) and keep the median CPU time."""
    cpu_times: list[float] = []
    wall_times: list[float] = []
    with tempfile.TemporaryDirectory(prefix="signalfire-bench-mesh-") as keys:
        for attempt in range(repeat):
            started = time.perf_counter()
            scenario = town(
                civilians=case.civilians,
                relays=case.relays,
                gateways=case.gateways,
                radius_m=case.radius_m,
                seed=seed,
                duration=duration,
                start_time=START_TIME,
                keys_dir=Path(keys) / str(attempt),
            )
            sim = MeshSimulator(scenario)
            setup = time.perf_counter() - started
            wall, cpu = time.perf_counter(), time.process_time()
            sim.run()
            cpu_times.append(time.process_time() - cpu)
            wall_times.append(time.perf_counter() - wall)
    preset = scenario.radio.modem
    recomputed = 0.0
    for _, frame, _ in sim.air.history:
        if frame.request_id:
            size = airtime.meshtastic_frame_len(len(frame.payload), frame.portnum, frame.pki)
            recomputed += airtime.time_on_air(size + REQUEST_ID_FIELD_LEN, preset)
        else:
            recomputed += airtime.packet_airtime(
                len(frame.payload), preset, frame.portnum, frame.pki
            )
    return Run(
        case,
        seed,
        setup,
        statistics.median(cpu_times),
        statistics.median(wall_times),
        sim.summary(),
        recomputed,
    )


# --- output -------------------------------------------------------------------------------


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    right = [False] + [True] * (len(header) - 1)
    return benchkit.table(header, rows, right)


def machine() -> list[tuple[str, str]]:
    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    return [
        ("date", dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ("platform", platform.platform()),
        ("cpu", f"{benchkit.cpu_model()} ({os.cpu_count()} logical CPUs; the benchmark uses one)"),
        ("python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("protobuf", version("protobuf")),
        ("meshtastic", version("meshtastic")),
    ]


def _num(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def scenario_rows(runs: Sequence[Run]) -> list[list[object]]:
    s = [r.summary for r in runs]
    d = [x["delivery"] for x in s]

    def each(key: str, fmt: str = "{}") -> list[str]:
        return [fmt.format(x[key]) for x in s]

    def delivery(key: str) -> list[str]:
        return [_num(y[key] or 0, 2) for y in d]

    rows: list[tuple[str, list[str]]] = [
        ("nodes (civilians + relays + gateways)", each("nodes")),
        ("simulated time (s)", each("simulated_s", "{:,.0f}")),
        ("packets sent by civilians", [str(y["sent"]) for y in d]),
        ("transmissions (relays and acks included)", each("transmissions")),
        ("receptions (decoded frames)", each("receptions")),
        ("collisions (frames lost at a receiver)", each("collisions")),
        ("duplicates suppressed", each("duplicates_suppressed")),
        ("rebroadcasts cancelled (CLIENT heard a relay)", each("rebroadcasts_cancelled")),
        ("retransmissions (no ack)", each("retransmissions")),
        (ROW_AIRTIME, each("airtime_s", "{:,.1f}")),
        ("channel utilisation (anyone on air)", each("channel_busy_percent", "{:.1f} %")),
        ("busiest radio's duty cycle (limit 10 %)", each("max_duty_cycle_percent", "{:.2f} %")),
        (ROW_DELIVERY, [_pct(y["ratio"]) for y in d]),
        ("latency to a gateway, median (s)", delivery("latency_median_s")),
        ("latency to a gateway, 90th percentile (s)", delivery("latency_p90_s")),
    ]
    return [[label, *values] for label, values in rows]


def speed_rows(runs: Sequence[Run]) -> list[list[object]]:
    def per_cpu(value: float, run: Run) -> str:
        return _num(value / run.cpu_s) if run.cpu_s > 0 else "inf"

    return [
        ["CPU time of the run (s; town: median of 5)", *(_num(r.cpu_s, 3) for r in runs)],
        [ROW_PACKETS_PER_CPU_S, *(per_cpu(r.transmissions, r) for r in runs)],
        ["events per CPU second", *(per_cpu(r.events, r) for r in runs)],
        ["receptions per CPU second", *(per_cpu(r.summary["receptions"], r) for r in runs)],
        ["simulated seconds per CPU second", *(per_cpu(r.summary["simulated_s"], r) for r in runs)],
        ["setup: scenario + sealing reports (s, not counted)", *(_num(r.setup_s, 3) for r in runs)],
    ]


def run(quick: bool, markdown: bool, seeds: int) -> str:
    out: list[str] = []

    def heading(text: str) -> None:
        out.append("")
        out.append(f"### {text}" if markdown else f"== {text} ==")
        out.append("")

    heading("Machine")
    for key, value in machine():
        out.append(f"- {key}: {value}" if markdown else f"{key}: {value}")

    # The town runs take a fraction of a second, where this VM's speed drifts: repeat them.
    town_repeat = 1 if quick else 5
    plan = [
        (TOWN, seed, 600.0 if quick else TOWN.duration, town_repeat) for seed in range(1, 1 + seeds)
    ]
    if not quick:
        plan.append((CITY, 1, CITY.duration, 1))
    runs = [simulate(*step) for step in plan]
    header = ["", *(f"{r.case.label}, seed {r.seed}" for r in runs)]

    heading("What the simulated air carried")
    out.append(table(header, scenario_rows(runs)))
    out.append("")
    cases = ", ".join(
        f"{r.case.label}: {r.case.civilians} civilians, {r.case.relays} ROUTER relays on hills, "
        f"{r.case.gateways} gateways, radius {r.case.radius_m / 1000:g} km"
        for r in {r.case.label: r for r in runs}.values()
    )
    out.append(
        f"{cases}; LONG_FAST, EU_868, 2 % extra frame loss, 4 dB shadowing, 2 dB fading. "
        "Traffic: every civilian broadcasts its position every ~15 min; 40-50 % send about "
        "one signalfire report (their key announcement first), the others about one stock "
        "text or canned message (60 % as a DM to the nearest gateway). 'Delivered' means "
        "at least one gateway decoded it."
    )

    heading("Speed (one core, pure virtual time)")
    out.append(table(header, speed_rows(runs)))
    town_runs = [r for r in runs if r.case is TOWN]
    if len(town_runs) > 1:
        rates = [r.transmissions / r.cpu_s for r in town_runs if r.cpu_s > 0]
        out.append("")
        out.append(
            f"Town median over {len(town_runs)} seeds: "
            f"{_num(statistics.median(rates))} simulated packets per CPU second."
        )

    heading("Airtime check")
    worst = max(abs(r.summary["airtime_s"] - r.airtime_recomputed) for r in runs)
    verdict = "ok" if worst < 1e-5 else "MISMATCH"
    out.append(
        f"{AIRTIME_CHECK}: {verdict} (largest difference {worst:.6f} s between the airtime "
        "the simulator accounted and the Semtech time on air recomputed for every frame it sent)"
    )
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="one town, 10 simulated minutes")
    parser.add_argument("--markdown", action="store_true", help="Markdown headings and lists")
    parser.add_argument("--seeds", type=int, default=None, help="town runs (default 3; quick 1)")
    args = parser.parse_args(argv)
    seeds = args.seeds if args.seeds is not None else (1 if args.quick else 3)
    if seeds < 1:
        parser.error("--seeds must be at least 1")
    sys.stdout.write(run(args.quick, args.markdown, seeds))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`signalfire demo`: the whole path that exists today, on one machine, with real files and keys.

It plays a network coordinator, three civilians and two gateways that hear
the same packets, and shows what each sees: sizes and airtime of real
sealed reports, a report that arrives before its sender's key announcement
(kept, then opened), a tampered copy (refused), a replay through a second
gateway (one report), and what a relay without the network key can read.
The simulated mesh, the gateway daemon and the coordinator service join
this command as they are built (see the README).
"""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .. import airtime, wire
from ..keyfiles import load_network_key
from ..profile import init_network
from ..sender import Identity

T_STEP = 97  # seconds between scripted reports


@dataclass
class Outcome:
    sent: int = 0
    opened: int = 0
    kept_for_later: int = 0
    refused: int = 0
    duplicates: int = 0


@dataclass(frozen=True)
class Civilian:
    name: str
    home: tuple[float, float]
    reports: tuple[tuple[str, int, str, str | None], ...]  # status, people, needs, text


CIVILIANS = (
    Civilian(
        "anna",
        (40.1776, 44.5126),
        (("sos", 3, "", "leg broken, 2nd floor"), ("need-supplies", 3, "water,medicine", None)),
    ),
    Civilian(
        "aram",
        (40.1861, 44.5153),
        (("trapped", 2, "", "Փլատակների տակ ենք"), ("cancel", 2, "", None)),
    ),
    Civilian(
        "olga",
        (40.1690, 44.4901),
        (("safe", 4, "", "Все живы, мы в подвале"), ("evacuate", 4, "transport", None)),
    ),
)


def run(workdir: Path | None = None, seed: int = 1, console: Console | None = None) -> Outcome:
    console = console or Console()
    rng = random.Random(seed)  # noqa: S311 - scenario jitter, deterministic on purpose
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="signalfire-demo-")
        workdir = Path(tmp.name)
    try:
        return _run(Path(workdir), rng, console)
    finally:
        if tmp is not None:
            tmp.cleanup()


def _run(workdir: Path, rng: random.Random, console: Console) -> Outcome:
    out = Outcome()
    console.rule("[bold]signalfire demo: the wire format end to end")
    profile, key_path = init_network(workdir / "network", "demo", force=True)
    console.print(f"network [bold]{profile.name}[/] id {profile.network_id.hex()} in {workdir}")
    coordinator = wire.Keyring(profile.public_key, load_network_key(key_path))
    relay = wire.Keyring(profile.public_key)  # a gateway without the network key
    seen: set[bytes] = set()
    waiting: list[bytes] = []

    def deliver(packet: bytes, via: str, log: Callable[[str], None]) -> None:
        """What a coordinator does with a packet from a gateway."""
        try:
            parsed = wire.parse(packet)
            if isinstance(parsed, wire.Announcement):
                coordinator.add(parsed)
                relay.add(parsed)
                for held in list(waiting):
                    waiting.remove(held)
                    deliver(held, via + " (held)", log)
                return
            if parsed.id in seen:
                out.duplicates += 1
                log(f"{via}: report {parsed.id.hex()[:8]} again: duplicate, shown once")
                return
            opened = coordinator.open(parsed)
        except wire.UnknownSender as exc:
            out.kept_for_later += 1
            waiting.append(packet)
            log(f"{via}: sender {exc.key_id.hex()} not announced yet: kept, not dropped")
            return
        except wire.WireError as exc:
            out.refused += 1
            log(f"{via}: refused ({exc.code}): {exc.message}")
            return
        seen.add(opened.id)
        out.opened += 1
        if via.endswith("(held)"):
            log(
                f"{via}: {opened.report.status.label} from {opened.key_id.hex()} opened "
                "now that its announcement arrived"
            )

    events: list[str] = []
    table = Table(title="reports as the coordinator opened them")
    for col in ("sender", "seq", "status", "people", "needs", "text", "bytes", "LONG_FAST"):
        table.add_column(col)
    t = int(time.time()) - 3600
    for person in CIVILIANS:
        identity = Identity.create(workdir / f"{person.name}.key", force=True)
        for n, (status, people, needs, text) in enumerate(person.reports):
            lat = person.home[0] + rng.uniform(-0.0005, 0.0005)
            lon = person.home[1] + rng.uniform(-0.0005, 0.0005)
            report = wire.Report(
                status=wire.Status.from_label(status),
                time=t,
                people=people,
                needs=wire.needs_from_labels(needs.split(",")),
                location=wire.Location.from_degrees(lat, lon, accuracy_m=8),
                text=text,
            )
            t += T_STEP
            sealed = identity.seal(profile, report)
            out.sent += 1
            # Anna's announcement is late: her first report reaches the coordinator first.
            late = person.name == "anna" and sealed.announcement is not None
            if sealed.announcement is not None and not late:
                deliver(sealed.announcement, "gateway-1", events.append)
            deliver(sealed.packet, "gateway-1", events.append)
            if late and sealed.announcement is not None:
                deliver(sealed.announcement, "gateway-1", events.append)
            if n == 0:
                deliver(sealed.packet, "gateway-2", events.append)  # heard by both gateways
            airtime_ms = 1000 * airtime.packet_airtime(
                len(sealed.packet), airtime.PRESETS["LONG_FAST"], portnum=profile.app_port
            )
            table.add_row(
                person.name,
                str(sealed.seq),
                status,
                str(people),
                needs or "-",
                text or "-",
                str(len(sealed.packet)),
                f"{airtime_ms:.0f} ms",
            )
            if n == 0 and person.name == "aram":
                tampered = bytearray(sealed.packet)
                tampered[20] ^= 0x40  # one bit on the way
                deliver(bytes(tampered), "gateway-2", events.append)
                parsed = wire.parse(sealed.packet)
                assert isinstance(parsed, wire.SealedReport)
                relay.verify(parsed)  # raises BadSignature if it were not Aram's
                events.append(
                    f"relay without the network key sees: kind {parsed.kind.label}, priority "
                    f"{parsed.priority.label}, sender {parsed.key_id.hex()}, seq {parsed.seq}, "
                    "valid signature; status, place and text stay sealed"
                )
    console.print(table)
    for line in events:
        console.print(f"  • {line}")
    console.rule("summary")
    console.print(
        f"sent {out.sent} · opened {out.opened} · held until announced {out.kept_for_later} · "
        f"refused {out.refused} · duplicates suppressed {out.duplicates}"
    )
    return out

"""Packing benchmark: how much of what a costly link bills is report bytes.

Usage::

    python bench/packing.py [--quick] [--markdown]

Builds realistic mixes of real signalfire packets with ``signalfire.wire`` (sealed
reports of 100-150 bytes with and without text, 142-byte key announcements, a share of
gateway-attested stock-radio reports), lets ``signalfire.modem.container``'s packer
drain each mix as the gateway's scheduler would (most urgent first, one message at a
time), and prints the packing efficiency: report bytes / paid bytes, where paid bytes
are whole 50-byte SBD credits of 340-byte messages, or whole 140-octet SMS (one, or
concatenated parts of 134 octets after the 6-octet header). Goal: >= 90 %.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import random
import time
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

import benchkit
from signalfire import wire
from signalfire.modem import container

GOAL = 0.90
ROW_PREFIX = "mix: "  # tests/test_bench_packing.py finds rows by these labels
TEXTS = [None, None, None, "water for 4, road blocked", "need insulin", "Ջուր չկա", "нужна вода"]


def make_packets(
    n_senders: int, each: int, attested_share: float, seed: int
) -> list[tuple[int, int]]:
    """(size, rank) of every packet a backlog holds, ranked as the scheduler ranks them."""
    rng = random.Random(seed)
    network = wire.x25519_public_bytes(X25519PrivateKey.generate())
    gateway = Ed25519PrivateKey.generate()
    gw_ann, gw_chain = wire.enrol(gateway, network, X25519PrivateKey.generate())
    out: list[tuple[int, int]] = [(len(gw_ann), 5)]
    gw_seq = 0
    statuses = list(wire.Status)
    for _ in range(n_senders):
        key = Ed25519PrivateKey.generate()
        ann, chain = wire.enrol(key, network, X25519PrivateKey.generate())
        top = 0
        for seq in range(each):
            status = rng.choice(statuses)
            location = None
            if rng.random() < 0.8:
                location = wire.Location.from_degrees(
                    40 + rng.random(), 44 + rng.random(), accuracy_m=rng.choice([10, 50, 500])
                )
            report = wire.Report(
                status=status,
                time=1_795_000_000 + seq,
                people=rng.randint(1, 6),
                needs=wire.Need(rng.randint(0, 3)),
                location=location,
                text=rng.choice(TEXTS),
            )
            prio = int(wire.priority_of(status))
            if rng.random() < attested_share:
                att = wire.Attestation(
                    node_num=rng.getrandbits(32), packet_id=rng.getrandbits(32),
                    rx_time=1_795_000_000, direct_message=True, hops=1,
                )  # fmt: skip
                packet, gw_chain = wire.seal_report(_with(report, att), gateway, gw_chain, gw_seq)
                gw_seq += 1
            else:
                packet, chain = wire.seal_report(report, key, chain, seq)
            top = max(top, prio)
            out.append((len(packet), 2 * prio))
        out.append((len(ann), 2 * top + 1))
    return out


def _with(report: wire.Report, att: wire.Attestation) -> wire.Report:
    return wire.Report(
        status=report.status, time=report.time, people=report.people, needs=report.needs,
        location=report.location, text=report.text, attestation=att,
    )  # fmt: skip


def drain(packets: list[tuple[int, int]], packer: container.Packer) -> tuple[int, int, int, float]:
    """Report bytes, paid bytes, messages, and seconds the packer took."""
    queue = sorted(packets, key=lambda p: -p[1])
    payload = paid = messages = 0
    spent = 0.0
    while queue:
        window = queue[:200]
        start = time.perf_counter()
        chosen = packer.choose([container.Candidate(s, r) for s, r in window])
        spent += time.perf_counter() - start
        sizes = [window[i][0] for i in chosen]
        payload += sum(sizes)
        paid += packer.paid(container.size(sizes))
        messages += 1
        taken = set(chosen)
        queue = [p for i, p in enumerate(window) if i not in taken] + queue[200:]
    return payload, paid, messages, spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small mixes (for tests)")
    parser.add_argument("--markdown", action="store_true", help="Markdown headings")
    args = parser.parse_args()
    h = "### " if args.markdown else ""
    senders, each = (20, 3) if args.quick else (150, 4)
    mixes: list[tuple[str, float, int]] = [
        ("civilian reports, 10 % attested", 0.1, 1),
        ("stock radios: 60 % attested", 0.6, 2),
        ("first contact: 1 report per sender", 0.1, 3),
    ]
    links: list[tuple[str, Callable[[], container.Packer]]] = [
        ("SBD (340 B, 50 B credits)", container.sbd_packer),
        ("SMS, up to 8 parts", lambda: container.sms_packer(8)),
        ("SMS, up to 4 parts", lambda: container.sms_packer(4)),
        ("SMS, single 140 B only", lambda: container.sms_packer(1)),
    ]
    print(f"{h}Machine\n")
    print(f"- date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")
    print(f"- platform: {platform.platform()}")
    print(f"- cpu: {benchkit.cpu_model()}")
    print(f"- python: {platform.python_implementation()} {platform.python_version()}\n")
    rows = []
    worst = 1.0
    for mix, attested, seed in mixes:
        per = 1 if "first contact" in mix else each
        packets = make_packets(senders if per > 1 else senders * each, per, attested, seed)
        mean = sum(s for s, _ in packets) / len(packets)
        for link, make in links:
            payload, paid, messages, spent = drain(packets, make())
            eff = payload / paid
            if "4 parts" not in link and "single" not in link:
                worst = min(worst, eff)
            rows.append(
                [
                    ROW_PREFIX + mix, link, len(packets), f"{mean:.0f}", messages,
                    f"{payload:,}", f"{paid:,}", f"{100 * eff:.1f} %",
                    f"{1e3 * spent / max(1, messages):.2f}",
                ]
            )  # fmt: skip
    print(f"{h}Packing efficiency (report bytes / paid bytes)\n")
    print(
        benchkit.table(
            [
                "mix",
                "link",
                "packets",
                "mean B",
                "messages",
                "report B",
                "paid B",
                "efficiency",
                "ms/message",
            ],
            rows,
            [False, False, True, True, True, True, True, True, True],
        )
    )
    verdict = "ok" if worst >= GOAL else "BELOW GOAL"
    print(
        f"\nworst of SBD and 8-part SMS: {100 * worst:.1f} % (goal >= {100 * GOAL:.0f} %): "
        f"{verdict}"
    )


if __name__ == "__main__":
    main()

"""Wire-format benchmark: sizes, LoRa airtime and throughput of signalfire v1 packets.

Usage::

    python bench/wire.py [--quick] [--markdown]

Prints, to stdout, pipe tables of

- application-payload bytes of typical reports and of a key announcement, beside two
  published or measured alternatives (LXMF, the Meshtastic ATAK plugin's PLI);
- the signalfire report body in its fixed layout against an equivalent protobuf
  message (built at run time from a descriptor; no protoc);
- LoRa time on air of each case on LONG_FAST and MEDIUM_FAST, as a channel broadcast
  and as a Meshtastic PKI direct message (signalfire.airtime);
- rates of sealing, opening and announcement verification, with raw Ed25519 sign and
  verify measured in the same run for scale;

and the machine it ran on.  ``--quick`` shortens every timed loop to about 0.2 s
(for tests); ``--markdown`` prints headings and the machine block as Markdown, for
pasting into bench/RESULTS.md.  Sizes and airtimes do not depend on the flags.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from meshtastic.protobuf import atak_pb2, portnums_pb2

import benchkit
from signalfire import airtime
from signalfire.wire import (
    Attestation,
    ChainState,
    Keyring,
    Location,
    Need,
    Report,
    Status,
    encode_body,
    enrol,
    seal_report,
    x25519_public_bytes,
)

# Fixed inputs, so every run measures the same bytes.
NOW = 1_790_000_000  # 2026-09-21, a Unix time that needs all 4 bytes
HERE = Location.from_degrees(40.1811, 44.5136, accuracy_m=8)  # Yerevan, class "<= 10 m"
TEXT_ASCII = "Bridge out, need a boat now!"  # 28 ASCII characters
# "Օգնեք, կամուրջը քանդված է, մեզ ջուր" (help, the bridge is down, [we need] water) with
# the spaces and commas taken out: exactly 28 Armenian letters, 2 UTF-8 bytes each.
TEXT_ARMENIAN = "ՕգնեքկամուրջըքանդվածէՄեզջուր"

# Row labels; tests/test_bench_wire.py finds its rows by these.
CASE_SOS = "SOS, 3 people, location, no text"
CASE_NEEDS = "need-supplies (water, medicine), 4 people, location"
CASE_ASCII = "need-supplies + 28 ASCII characters of text"
CASE_ARMENIAN = "need-supplies + 28 Armenian letters (56 B)"
CASE_ATTESTED = "gateway-attested SOS (the SOS row + attestation)"
CASE_ANNOUNCEMENT = "key announcement"
CASE_LXMF = "LXMF 'SAFE + location' (published figure, not measured)"
CASE_ATAK = "Meshtastic ATAK plugin PLI (TAKPacket, measured)"

LXMF_PACKED = 166  # bytes, from the project's issue: LXMF "SAFE + location", packed
LXMF_ON_AIR = 259  # bytes on air, same source

AIRTIME_PRESETS = ("LONG_FAST", "MEDIUM_FAST")


# --- the cases ----------------------------------------------------------------------------


def reports() -> list[tuple[str, Report]]:
    needs = Need.WATER | Need.MEDICINE
    supplies = Report(Status.NEED_SUPPLIES, NOW, people=4, needs=needs, location=HERE)
    sos = Report(Status.SOS, NOW, people=3, location=HERE)
    attestation = Attestation(
        node_num=0x9E7C4A21,
        packet_id=0x5A3F01C2,
        rx_time=NOW + 4,
        pki_authenticated=True,
        direct_message=True,
        hops=2,
        position_age=95,
    )
    return [
        (CASE_SOS, sos),
        (CASE_NEEDS, supplies),
        (CASE_ASCII, Report(Status.NEED_SUPPLIES, NOW, 4, needs, HERE, text=TEXT_ASCII)),
        (CASE_ARMENIAN, Report(Status.NEED_SUPPLIES, NOW, 4, needs, HERE, text=TEXT_ARMENIAN)),
        (CASE_ATTESTED, Report(Status.SOS, NOW, 3, location=HERE, attestation=attestation)),
    ]


@dataclass
class Sender:
    identity: Ed25519PrivateKey
    network_private: X25519PrivateKey
    network_public: bytes
    announcement: bytes
    keyring: Keyring

    @classmethod
    def make(cls) -> Sender:
        identity = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
        network_private = X25519PrivateKey.from_private_bytes(bytes(range(32, 64)))
        network_public = x25519_public_bytes(network_private)
        enrol_private = X25519PrivateKey.from_private_bytes(bytes(range(64, 96)))
        announcement, _ = enrol(identity, network_public, enrol_private, 0)
        keyring = Keyring(network_public, network_private)
        keyring.add(announcement)
        return cls(identity, network_private, network_public, announcement, keyring)

    def chain(self) -> ChainState:
        # enrol is deterministic for fixed keys: re-derive the chain state from the start
        enrol_private = X25519PrivateKey.from_private_bytes(bytes(range(64, 96)))
        return enrol(self.identity, self.network_public, enrol_private, 0)[1]


def takpacket_pli() -> bytes:
    """A PLI as the Meshtastic ATAK plugin builds it (MeshtasticMapComponent.processCotEvent).

    Field values follow the example CoT event quoted in that source file: callsign
    FALKE, device uid ANDROID-e612f0e922b56a63, Team Member of team Cyan, battery 100,
    course 45; the position is ours.  The plugin sends it as a channel broadcast on
    ATAK_PLUGIN (port 72), neither signed nor end-to-end encrypted: only the channel's
    AES-CTR key, which every member holds, protects it.
    """
    packet = atak_pb2.TAKPacket(
        contact=atak_pb2.Contact(callsign="FALKE", device_callsign="ANDROID-e612f0e922b56a63"),
        group=atak_pb2.Group(
            role=atak_pb2.MemberRole.Value("TeamMember"), team=atak_pb2.Team.Value("Cyan")
        ),
        status=atak_pb2.Status(battery=100),
        pli=atak_pb2.PLI(
            latitude_i=int(40.1811 / 1e-7),
            longitude_i=int(44.5136 / 1e-7),
            altitude=990,
            speed=1,
            course=45,
        ),
    )
    return bytes(packet.SerializeToString())


# --- the protobuf equivalent of the body --------------------------------------------------


def protobuf_body_class() -> Any:
    """A proto3 ReportBody message class with the fields of the fixed layout.

    Choices that favour protobuf: time is fixed32 (5 bytes with its tag; a varint of a
    2026 Unix time is 5 bytes plus the tag), zero values are not sent at all (proto3),
    and location presence is not encoded (a fixed-layout flag bit).  The attestation
    is a nested message with the same fields as the fixed layout's 16-byte extension.
    """
    fdp = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(
        name="signalfire_bench_body.proto", package="signalfire.bench", syntax="proto3"
    )

    def add(msg: Any, name: str, number: int, ftype: int, type_name: str = "") -> None:
        field = msg.field.add(name=name, number=number, type=ftype, label=fdp.LABEL_OPTIONAL)
        if type_name:
            field.type_name = type_name

    att = file.message_type.add(name="Attestation")
    add(att, "node_num", 1, fdp.TYPE_FIXED32)
    add(att, "packet_id", 2, fdp.TYPE_FIXED32)
    add(att, "rx_time", 3, fdp.TYPE_FIXED32)
    add(att, "flags", 4, fdp.TYPE_UINT32)
    add(att, "hops", 5, fdp.TYPE_UINT32)
    add(att, "position_age", 6, fdp.TYPE_UINT32)

    body = file.message_type.add(name="ReportBody")
    add(body, "status", 1, fdp.TYPE_UINT32)
    add(body, "time", 2, fdp.TYPE_FIXED32)
    add(body, "people", 3, fdp.TYPE_UINT32)
    add(body, "needs", 4, fdp.TYPE_UINT32)
    add(body, "lat_q", 5, fdp.TYPE_UINT32)
    add(body, "lon_q", 6, fdp.TYPE_UINT32)
    add(body, "accuracy", 7, fdp.TYPE_UINT32)
    add(body, "text", 8, fdp.TYPE_STRING)
    add(body, "attestation", 9, fdp.TYPE_MESSAGE, ".signalfire.bench.Attestation")

    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("signalfire.bench.ReportBody")
    )


def protobuf_body(cls: Any, report: Report) -> bytes:
    msg = cls(status=int(report.status), time=report.time, people=report.people)
    msg.needs = int(report.needs)
    if report.location is not None:
        msg.lat_q = report.location.lat_q
        msg.lon_q = report.location.lon_q
        msg.accuracy = report.location.accuracy_class
    if report.text:
        msg.text = report.text
    a = report.attestation
    if a is not None:
        msg.attestation.node_num = a.node_num
        msg.attestation.packet_id = a.packet_id
        msg.attestation.rx_time = a.rx_time
        msg.attestation.flags = (
            int(a.pki_authenticated)
            | int(a.direct_message) << 1
            | (0 if a.position_age is None else 4)
        )
        msg.attestation.hops = a.hops
        msg.attestation.position_age = a.position_age or 0
    return bytes(msg.SerializeToString())


# --- timing -------------------------------------------------------------------------------


ROUNDS = 10


@dataclass
class Rate:
    """Operations per second in each of several equal rounds of one timed loop."""

    label: str
    ops: int  # over all rounds
    round_rates: list[float]

    @property
    def best(self) -> float:
        return max(self.round_rates)

    @property
    def median(self) -> float:
        return statistics.median(self.round_rates)


def measure(ops: Sequence[tuple[str, Callable[[int], object]]], seconds: float) -> list[Rate]:
    """Time each op for about ``seconds``, in ROUNDS rounds taken in turn.

    Each op is called as op(0), op(1), ... (after a short warm-up).  Shared and virtual
    machines drift in speed from second to second: interleaving the rounds exposes
    every op to the same drift, the median round is the headline figure and the best
    round shows what the machine does undisturbed.
    """
    clock = time.perf_counter
    calls = [0] * len(ops)
    round_rates: list[list[float]] = [[] for _ in ops]
    for _label, op in ops:
        for i in range(20):
            op(i)
    for _ in range(ROUNDS):
        for k, (_label, op) in enumerate(ops):
            n = calls[k]
            count = 0
            start = now = clock()
            deadline = start + seconds / ROUNDS
            while now < deadline:
                for _ in range(8):
                    op(n + count)
                    count += 1
                now = clock()
            calls[k] += count
            round_rates[k].append(count / (now - start))
    return [Rate(label, calls[k], round_rates[k]) for k, (label, _op) in enumerate(ops)]


def rates(sender: Sender, seconds: float) -> list[Rate]:
    report = reports()[0][1]
    keyring = sender.keyring

    # seal: encode + AES-GCM-SIV + Ed25519 sign + key-tree step, with consecutive numbers
    chain = sender.chain()
    seq = 0

    def seal(_: int) -> object:
        nonlocal chain, seq
        packet, chain = seal_report(report, sender.identity, chain, seq)
        seq += 1
        return packet

    # open: parse + Ed25519 verify + 32 HMACs down the key tree + decrypt + decode
    open_chain = sender.chain()
    sealed: list[bytes] = []
    for n in range(256):
        packet, open_chain = seal_report(report, sender.identity, open_chain, n)
        sealed.append(packet)
    assert keyring.open(sealed[0]).report == report

    def open_one(i: int) -> object:
        return keyring.open(sealed[i & 0xFF])

    # a new sender: verify its announcement, X25519 to its enrolment, then open
    def first_contact(_: int) -> object:
        fresh = Keyring(sender.network_public, sender.network_private)
        fresh.add(sender.announcement)
        return fresh.open(sealed[0])

    def verify_announcement(_: int) -> object:
        return keyring.add(sender.announcement)

    message = bytes(100)
    signature = sender.identity.sign(message)
    public = sender.identity.public_key()

    def ed_sign(_: int) -> object:
        return sender.identity.sign(message)

    def ed_verify(_: int) -> None:
        public.verify(signature, message)

    return measure(
        [
            ("seal a report (encode + encrypt + sign)", seal),
            ("open a report (verify + decrypt + decode)", open_one),
            ("verify a key announcement", verify_announcement),
            ("first report of a new sender (announcement + X25519 + open)", first_contact),
            ("raw Ed25519 sign, 100 B", ed_sign),
            ("raw Ed25519 verify, 100 B", ed_verify),
        ],
        seconds,
    )


# --- output -------------------------------------------------------------------------------


def machine() -> list[tuple[str, str]]:
    from cryptography.hazmat.backends.openssl.backend import backend

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
        ("cryptography", version("cryptography")),
        ("openssl", backend.openssl_version_text()),
        ("protobuf", version("protobuf")),
        ("meshtastic", version("meshtastic")),
    ]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def run(quick: bool, markdown: bool) -> str:
    seconds = 0.2 if quick else 1.5
    out: list[str] = []

    def heading(text: str) -> None:
        out.append("")
        out.append(f"### {text}" if markdown else f"== {text} ==")
        out.append("")

    sender = Sender.make()
    chain = sender.chain()
    sealed: list[tuple[str, Report, bytes]] = []
    for seq, (label, report) in enumerate(reports()):
        packet, chain = seal_report(report, sender.identity, chain, seq)
        opened = sender.keyring.open(packet)
        assert opened.report == report, label
        sealed.append((label, report, packet))
    atak = takpacket_pli()
    atak_port = portnums_pb2.PortNum.Value("ATAK_PLUGIN")
    private = airtime.PRIVATE_APP

    out.append("signalfire wire format v1: sizes, airtime, rates" + (" (--quick)" if quick else ""))
    heading("Machine")
    for key, value in machine():
        out.append(f"- {key}: {value}" if markdown else f"{key}: {value}")

    heading("Application payload (bytes)")
    rows: list[list[object]] = []
    for label, _report, packet in sealed:
        rows.append(
            [
                label,
                len(packet),
                airtime.meshtastic_frame_len(len(packet), private),
                airtime.meshtastic_frame_len(len(packet), private, pki=True),
                "signed + encrypted, port 256",
            ]
        )
    ann = len(sender.announcement)
    rows.append(
        [
            CASE_ANNOUNCEMENT,
            ann,
            airtime.meshtastic_frame_len(ann, private),
            airtime.meshtastic_frame_len(ann, private, pki=True),
            "signed, clear; once per sender",
        ]
    )
    rows.append(
        [CASE_LXMF, LXMF_PACKED, f"{LXMF_ON_AIR} on air", "n/a", "Reticulum, not Meshtastic"]
    )
    rows.append(
        [
            CASE_ATAK,
            len(atak),
            airtime.meshtastic_frame_len(len(atak), atak_port),
            "n/a (broadcast)",
            "not signed, no end-to-end encryption",
        ]
    )
    out.append(
        benchkit.table(
            ["case", "app payload", "frame, channel", "frame, PKI DM", "note"],
            rows,
            [False, True, True, True, False],
        )
    )
    out.append("")
    out.append(
        "Frame = 16-byte Meshtastic header + Data protobuf (portnum, payload, bitfield)"
        " [+ 12 B for a PKI DM]; at most 255. Budget for the no-text report: <= 150 B,"
        " stretch 120 B."
    )

    heading("Report body: fixed layout vs protobuf (bytes)")
    pb_cls = protobuf_body_class()
    rows = []
    for label, report, packet in sealed:
        fixed = len(encode_body(report))
        pb = len(protobuf_body(pb_cls, report))
        rows.append([label, fixed, pb, f"{pb - fixed:+d}", len(packet), len(packet) - fixed + pb])
    out.append(
        benchkit.table(
            ["case", "fixed body", "protobuf body", "diff", "sealed, fixed", "sealed, protobuf"],
            rows,
            [False, True, True, True, True, True],
        )
    )
    out.append("")
    out.append(
        "protobuf: proto3 built at run time from a descriptor (status, time fixed32, people,"
        " needs, lat_q, lon_q, accuracy, text, attestation submessage)."
    )

    heading("LoRa time on air, one transmission (ms)")
    header = ["case"]
    for name in AIRTIME_PRESETS:
        header += [f"{name} channel", f"{name} PKI DM"]
    header.append("LONG_FAST channel, XEdDSA fw")
    rows = []
    packets = [(label, packet) for label, _report, packet in sealed]
    for label, packet in [*packets, (CASE_ANNOUNCEMENT, sender.announcement)]:
        n = len(packet)
        row: list[object] = [label]
        for name in AIRTIME_PRESETS:
            row.append(ms(airtime.packet_airtime(n, name, private)))
            row.append(ms(airtime.packet_airtime(n, name, private, pki=True)))
        row.append(ms(airtime.packet_airtime(n, "LONG_FAST", private, xeddsa=True)))
        rows.append(row)
    row = [CASE_ATAK]
    for name in AIRTIME_PRESETS:
        row += [ms(airtime.packet_airtime(len(atak), name, atak_port)), "n/a"]
    row.append(ms(airtime.packet_airtime(len(atak), "LONG_FAST", atak_port, xeddsa=True)))
    rows.append(row)
    out.append(benchkit.table(header, rows, [False] + [True] * (len(header) - 1)))
    out.append("")
    full = airtime.time_on_air(255, "LONG_FAST")
    out.append(
        f"A full 255-byte frame takes {ms(full)} ms on LONG_FAST. Flooding repeats a packet"
        " once per relay. 'XEdDSA fw': firmware after v2.7.26 (develop) adds a 66-byte"
        " signature to channel broadcasts whose signed frame still fits 255 bytes."
    )

    heading(f"Rates, one core, ~{seconds:g} s each in {ROUNDS} interleaved rounds")
    measured = rates(sender, seconds)
    verify = measured[-1]
    rows = []
    for r in measured:
        # cost relative to one Ed25519 verify timed in the same round: steadier than
        # absolute rates on a machine whose speed drifts
        ratios = [v / x for x, v in zip(r.round_rates, verify.round_rates, strict=True)]
        rows.append(
            [
                r.label,
                f"{r.median:,.0f}",
                f"{r.best:,.0f}",
                f"{1e6 / r.median:.0f}",
                f"{statistics.median(ratios):.2f}",
            ]
        )
    out.append(
        benchkit.table(
            ["operation", "per second (median)", "best round", "µs each", "x Ed25519 verify"],
            rows,
            [False, True, True, True, True],
        )
    )
    out.append("")
    out.append(
        "Rounds of all operations are interleaved. 'µs each' is from the median round;"
        " 'x Ed25519 verify' is the median over rounds of this operation's time divided by"
        " a raw verify's in the same round."
    )
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="~0.2 s per timed loop")
    parser.add_argument("--markdown", action="store_true", help="Markdown headings and lists")
    args = parser.parse_args(argv)
    sys.stdout.write(run(args.quick, args.markdown))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The `signalfire` command line. Thin: parsing and printing; the work lives in the modules."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import click

from . import wire
from .errors import SignalfireError
from .keyfiles import load_network_key
from .profile import (
    DEFAULT_MODEM_PRESET,
    LORA_REGIONS,
    MODEM_PRESETS,
    init_network,
    load_profile,
)
from .render import announcement_to_dict, opened_to_dict
from .sender import Identity, load_sender_keys

EXIT_INVALID = 1
EXIT_UNKNOWN_SENDER = 3
EXIT_NOT_CONFIRMED = 4  # sent (and saved) but no radio confirmed it


class CliError(click.ClickException):
    """One line on stderr, nothing on stdout."""

    exit_code = EXIT_INVALID

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.message}", err=True)


class KeepForLater(CliError):
    """The packet is sound but its sender is not known yet."""

    exit_code = EXIT_UNKNOWN_SENDER


def _fail(exc: Exception) -> CliError:
    if isinstance(exc, wire.UnknownSender):
        return KeepForLater(f"{exc.code}: {exc.message}")
    if isinstance(exc, wire.WireError):
        return CliError(f"{exc.code}: {exc.message}")
    if isinstance(exc, SignalfireError):
        return CliError(exc.message)
    raise exc


class _LazyGroup(click.Group):
    """Subcommand groups imported only when used: `signalfire send` on a phone should not
    pay for the coordinator's web stack (click's documented lazy-loading pattern)."""

    lazy: ClassVar[dict[str, tuple[str, str]]] = {
        "radio": ("signalfire.radio.cli", "radio"),
        "gateway": ("signalfire.gateway.cli", "gateway"),
        "bundle": ("signalfire.gateway.cli", "bundle"),
        "coordinator": ("signalfire.coordinator.cli", "coordinator"),
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            import importlib

            module, attr = self.lazy[cmd_name]
            command: click.Command = getattr(importlib.import_module(module), attr)
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=_LazyGroup)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option(package_name="signalfire")
def main(verbose: int) -> None:
    """signalfire: signed, encrypted status reports over LoRa mesh radios."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )


# -- keys ---------------------------------------------------------------------


@main.group()
def keys() -> None:
    """Identity keys for civilians and gateways."""


@keys.command("new")
@click.option(
    "--out", "out", required=True, type=click.Path(path_type=Path), help="Private key file."
)
@click.option(
    "--force", is_flag=True, help="Overwrite an existing key (its reports become orphans)."
)
def keys_new(out: Path, force: bool) -> None:
    """Create an Ed25519 identity: OUT (private, 0600) and OUT.pub (public card)."""
    try:
        identity = Identity.create(out, force=force)
    except SignalfireError as exc:
        raise _fail(exc) from None
    click.echo(f"identity   {identity.path} (private, mode 0600: never share it)")
    click.echo(f"public     {identity.card_path}")
    click.echo(f"key id     {identity.key_id.hex()}")
    click.echo(f"public key {identity.public.hex()}")


@keys.command("show")
@click.argument("identity_path", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def keys_show(identity_path: Path, as_json: bool) -> None:
    """Print the public part of an identity."""
    try:
        identity = Identity.load(identity_path)
    except SignalfireError as exc:
        raise _fail(exc) from None
    info = {"key_id": identity.key_id.hex(), "public_key": identity.public.hex()}
    if as_json:
        click.echo(json.dumps(info))
    else:
        click.echo(f"key id     {info['key_id']}\npublic key {info['public_key']}")


@keys.command("enrol")
@click.option("--identity", "identity_path", required=True, type=click.Path(path_type=Path))
@click.option("--network", "network_path", required=True, type=click.Path(path_type=Path))
@click.option(
    "--renew", is_flag=True, help="Start a fresh key chain from the next sequence number."
)
def keys_enrol(identity_path: Path, network_path: Path, renew: bool) -> None:
    """Enrol an identity with a network; prints the key announcement (hex) to send first."""
    try:
        identity = Identity.load(identity_path)
        profile = load_profile(network_path)
        announcement, created = identity.enrol(profile, renew=renew)
    except (SignalfireError, wire.WireError) as exc:
        raise _fail(exc) from None
    if created:
        click.echo(
            f"enrolled with network {profile.name}; card updated: {identity.card_path}", err=True
        )
    click.echo(announcement.hex())


# -- network ------------------------------------------------------------------


@main.group()
def network() -> None:
    """The network key pair and the public network profile."""


@network.command("init")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="Directory.")
@click.option("--name", default="signalfire", show_default=True, help="Network / channel name.")
@click.option("--force", is_flag=True, help="Overwrite an existing network key.")
@click.option(
    "--region",
    type=click.Choice(LORA_REGIONS, case_sensitive=False),
    help="LoRa region of the deployment (EU_868, UA_868, ...): the radio profiles and the "
    "channel QR code need it.",
)
@click.option(
    "--modem-preset",
    type=click.Choice(MODEM_PRESETS, case_sensitive=False),
    default=DEFAULT_MODEM_PRESET,
    show_default=True,
    help="Meshtastic modem preset every radio of the network uses.",
)
def network_init(out: Path, name: str, force: bool, region: str | None, modem_preset: str) -> None:
    """Create network.key (private, 0600) and network.json (public profile) in OUT.

    network.json also holds the radio channel: its name and a random channel key (PSK)
    that every radio on the channel shares. It keeps outsiders off the channel; it does
    not open reports (only network.key does).
    """
    try:
        profile, key_path = init_network(
            out,
            name,
            force=force,
            region=region.upper() if region else None,
            modem_preset=modem_preset.upper(),
        )
    except SignalfireError as exc:
        raise _fail(exc) from None
    click.echo(
        f"network key {key_path} (private, mode 0600: coordinators and trusted gateways only)"
    )
    click.echo(f"profile     {Path(out) / 'network.json'} (public: hand it to everyone)")
    click.echo(f"network id  {profile.network_id.hex()}")
    click.echo(
        f"channel     {profile.channel_name}, {profile.modem_preset}, "
        f"{profile.region or 'region not set (give --region)'}; "
        "show it to radios with `signalfire network qr`"
    )


@network.command("qr")
@click.option("--network", "network_path", required=True, type=click.Path(path_type=Path))
@click.option("--region", help="LoRa region, if the profile names none.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write channel-qr.png and profile-qr.png here.",
)
@click.option(
    "--what",
    type=click.Choice(["channel", "profile", "both"]),
    default="both",
    show_default=True,
    help="channel: the Meshtastic app joins by it; profile: network.json for signalfire.",
)
@click.option("--terminal/--no-terminal", default=None, help="Draw the codes here too.")
def network_qr(
    network_path: Path, region: str | None, out_dir: Path | None, what: str, terminal: bool | None
) -> None:
    """Show the network as QR codes: the channel URL and the public profile.

    The channel URL holds the channel key by design (scanning it joins the channel):
    show it only to people who may join. Neither code holds the network key.
    """
    from . import onboarding

    try:
        profile = load_profile(network_path)
        codes = []
        if what in ("channel", "both"):
            url = onboarding.channel_url(profile, region)
            codes.append(("channel", url, f"Meshtastic app: join {profile.channel_name}"))
        if what in ("profile", "both"):
            codes.append(
                ("profile", onboarding.profile_qr_text(profile), f"signalfire: {profile.name}")
            )
        if out_dir is not None:
            for kind, text, caption in codes:
                path = onboarding.write_qr_png(text, out_dir / f"{kind}-qr.png", caption=caption)
                click.echo(f"{kind:8} {path}", err=True)
    except SignalfireError as exc:
        raise _fail(exc) from None
    if terminal or (terminal is None and out_dir is None):
        for kind, text, caption in codes:
            click.echo(f"{caption}:")
            click.echo(onboarding.qr_terminal(text))
            if kind == "channel":
                click.echo(text)
                click.echo("")


@network.command("profile-yaml")
@click.option("--network", "network_path", type=click.Path(path_type=Path))
@click.option(
    "--role",
    required=True,
    type=click.Choice(["civilian", "relay", "gateway"]),
    help="Which radio profile (see firmware-config/README.md).",
)
@click.option("--region", help="LoRa region, if the profile names none.")
@click.option("--template", is_flag=True, help="Print the template (no network needed).")
def network_profile_yaml(
    network_path: Path | None, role: str, region: str | None, template: bool
) -> None:
    """Print a radio profile for `meshtastic --configure`, filled for one network.

    The output holds the channel key: share it only with people who may join.
    """
    from .radio import profiles

    try:
        if template:
            click.echo(profiles.template_yaml(role), nl=False)
            return
        if network_path is None:
            raise CliError("give --network network.json (or --template)")
        text = profiles.filled_yaml(role, load_profile(network_path), region)
    except SignalfireError as exc:
        raise _fail(exc) from None
    click.echo(text, nl=False)


# -- docs ---------------------------------------------------------------------


@main.group()
def docs() -> None:
    """Printed material: the civilian card."""


@docs.command("card")
@click.option(
    "--lang",
    "langs",
    multiple=True,
    type=click.Choice(["en", "hy", "ru"]),
    help="Language (repeatable; default: all three).",
)
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(path_type=Path),
    help="A .pdf file (one language), or a directory for card-LANG.pdf and .png.",
)
@click.option(
    "--network",
    "network_path",
    type=click.Path(path_type=Path),
    help="Print this network's channel QR code on the card (it holds the channel key).",
)
@click.option("--region", help="LoRa region for the QR code, if the profile names none.")
@click.option("--png/--no-png", default=True, show_default=True, help="Also write a PNG.")
def docs_card(
    langs: tuple[str, ...], out: Path, network_path: Path | None, region: str | None, png: bool
) -> None:
    """Make the one-page civilian card: how to join, send SAFE / SOS / MEDICAL, and stay safe."""
    try:
        from .cards import build

        url = channel = None
        if network_path is not None:
            from .onboarding import channel_url

            profile = load_profile(network_path)
            url, channel = channel_url(profile, region), profile.channel_name
        chosen = langs or ("en", "hy", "ru")
        if out.suffix.lower() == ".pdf":
            if len(chosen) != 1:
                raise CliError("a .pdf --out takes one --lang; give a directory for several")
            targets = [(chosen[0], out)]
        else:
            targets = [(lang, out / f"card-{lang}.pdf") for lang in chosen]
        written = [
            build.write_card(lang, path, channel_url=url, channel=channel, png=png)
            for lang, path in targets
        ]
    except SignalfireError as exc:
        raise _fail(exc) from None
    for paths in written:
        for path in paths:
            click.echo(str(path))


@network.command("show")
@click.argument("profile_path", type=click.Path(path_type=Path))
def network_show(profile_path: Path) -> None:
    """Print a network profile."""
    try:
        profile = load_profile(profile_path)
    except SignalfireError as exc:
        raise _fail(exc) from None
    click.echo(json.dumps(profile.to_json(), indent=2))


# -- report -------------------------------------------------------------------


@main.group()
def report() -> None:
    """Encode and decode signalfire reports."""


def _parse_time(value: str | None) -> int:
    if value is None:
        return int(time.time())
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CliError(f"--time {value!r} is not ISO 8601 (e.g. 2026-11-28T10:15:00Z)") from None
    if parsed.tzinfo is None:
        raise CliError(f"--time {value!r} has no time zone; add Z for UTC")
    return int(parsed.timestamp())


_F = TypeVar("_F", bound=Callable[..., Any])


def _report_options(fn: _F) -> _F:
    """The options that say what a report holds (report encode and send share them)."""
    for option in reversed(
        [
            click.option("--identity", "identity_path", required=True,
                         type=click.Path(path_type=Path)),
            click.option("--network", "network_path", required=True,
                         type=click.Path(path_type=Path)),
            click.option("--status", required=True, help="safe, sos, medical, trapped, "
                         "evacuate, need-supplies, missing-person, cancel"),
            click.option("--needs", default="",
                         help="Comma list: water,food,shelter,medicine,power,transport"),
            click.option("--people", type=int, default=1, show_default=True),
            click.option("--lat", type=float),
            click.option("--lon", type=float),
            click.option("--accuracy", type=float, help="Location accuracy in metres."),
            click.option("--text", default=None,
                         help="A few words (UTF-8); '-' reads them from standard input."),
            click.option("--ask", is_flag=True,
                         help="Ask for the position and the words instead (they then stay "
                         "out of the shell history)."),
        ]
    ):  # fmt: skip
        fn = option(fn)
    return fn


def _private_inputs(
    ask: bool,
    text: str | None,
    lat: float | None,
    lon: float | None,
    *,
    ask_position: bool = True,
) -> tuple[str | None, float | None, float | None]:
    """Text and position from standard input or prompts, where they leave no trace.

    Whatever is typed on a command line lands in the shell history, where a captor
    reads where someone was and what they said.
    """
    if text == "-":
        text = sys.stdin.read().strip()
    if ask:
        if ask_position and lat is None and lon is None:
            where = str(
                click.prompt(
                    "Position as lat,lon (empty: none)", default="", show_default=False, err=True
                )
            ).strip()
            if where:
                try:
                    lat, lon = (float(part) for part in where.replace(" ", "").split(","))
                except ValueError:
                    raise CliError(
                        f"{where!r} is not lat,lon in degrees (e.g. 40.1811,44.5136)"
                    ) from None
        if text is None:
            text = str(
                click.prompt("A few words (empty: none)", default="", show_default=False, err=True)
            )
    if (lat is None) != (lon is None):
        raise CliError("give both --lat and --lon, or neither")
    return text or None, lat, lon


@report.command("encode")
@_report_options
@click.option("--seq", type=int, help="Sequence number (default: the next unused one).")
@click.option("--time", "when", help="Creation time, ISO 8601 (default: now).")
@click.option("--json", "as_json", is_flag=True, help="Print id, size, seq and hex as JSON.")
def report_encode(
    identity_path: Path,
    network_path: Path,
    status: str,
    needs: str,
    people: int,
    lat: float | None,
    lon: float | None,
    accuracy: float | None,
    text: str | None,
    ask: bool,
    seq: int | None,
    when: str | None,
    as_json: bool,
) -> None:
    """Seal a report and print it as hex."""
    text, lat, lon = _private_inputs(ask, text, lat, lon)
    try:
        location = (
            wire.Location.from_degrees(lat, lon, accuracy_m=accuracy)
            if lat is not None and lon is not None
            else None
        )
        rep = wire.Report(
            status=wire.Status.from_label(status),
            time=_parse_time(when),
            people=people,
            needs=wire.needs_from_labels(needs.split(",")),
            location=location,
            text=text or None,
        )
        identity = Identity.load(identity_path)
        profile = load_profile(network_path)
        sealed = identity.seal(profile, rep, seq)
    except (SignalfireError, wire.WireError) as exc:
        raise _fail(exc) from None
    if sealed.announcement is not None:
        click.echo(
            f"note: enrolled with network {profile.name}; the key announcement is in "
            f"{identity.card_path} and must reach the coordinator",
            err=True,
        )
    if as_json:
        click.echo(
            json.dumps(
                {
                    "id": wire.parse(sealed.packet).id.hex(),
                    "seq": sealed.seq,
                    "size": len(sealed.packet),
                    "hex": sealed.packet.hex(),
                    "announcement": sealed.announcement.hex() if sealed.announcement else None,
                }
            )
        )
    else:
        click.echo(sealed.packet.hex())


def _read_hex(value: str) -> bytes:
    if value == "-":
        value = sys.stdin.read()
    cleaned = "".join(value.split())
    if cleaned.lower().startswith("0x"):
        cleaned = cleaned[2:]
    if len(cleaned) > 2 * 4096:
        raise CliError("input is far larger than any signalfire packet")
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise CliError("input is not hexadecimal") from None


@report.command("decode")
@click.argument("packet_hex")
@click.option("--network-key", "network_key", required=True, type=click.Path(path_type=Path))
@click.option(
    "--network",
    "network_path",
    type=click.Path(path_type=Path),
    help="Profile to check the key against (optional).",
)
@click.option(
    "--sender-key",
    "sender_keys",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Sender card (.pub) or file of hex keys/announcements; repeatable.",
)
@click.option("--json", "as_json", is_flag=True)
def report_decode(
    packet_hex: str,
    network_key: Path,
    network_path: Path | None,
    sender_keys: tuple[Path, ...],
    as_json: bool,
) -> None:
    """Verify and decrypt a report (or check a key announcement). PACKET_HEX may be - for stdin."""
    data = _read_hex(packet_hex)
    try:
        private = load_network_key(network_key)
        public = wire.x25519_public_bytes(private)
        if network_path is not None and load_profile(network_path).public_key != public:
            raise CliError("the network key does not belong to the given network profile")
        ring = wire.Keyring(public, private)
        for path in sender_keys:
            identities, announcements = load_sender_keys(path)
            for identity in identities:
                ring.add_identity(identity)
            for ann in announcements:
                try:
                    ring.add(ann)
                except wire.NotForThisNetwork:
                    continue  # a card may list enrolments with other networks
        packet = wire.parse(data)
        if isinstance(packet, wire.Announcement):
            packet.verify(public)
            out = announcement_to_dict(packet, verified=True)
        else:
            out = opened_to_dict(ring.open(packet))
    except (SignalfireError, wire.WireError) as exc:
        raise _fail(exc) from None
    if as_json:
        click.echo(json.dumps(out, ensure_ascii=False))
    else:
        for key, value in out.items():
            click.echo(f"{key:15} {value}")


@main.command("send")
@click.option(
    "--radio",
    "radio_spec",
    required=True,
    help="serial:/dev/ttyUSB0, tcp:HOST[:4403] or ble:NAME_OR_ADDRESS",
)
@_report_options
@click.option("--from-radio-gps", is_flag=True, help="Use the radio's own GPS position.")
@click.option(
    "--to",
    "to_node",
    help="Gateway node (!a1b2c3d4): a direct message, acknowledged "
    "by the gateway's radio. Default: broadcast on the channel.",
)
@click.option(
    "--timeout",
    "ack_timeout",
    type=float,
    default=60.0,
    show_default=True,
    help="Seconds to wait for the mesh to answer each try.",
)
@click.option("--tries", type=int, default=3, show_default=True)
@click.option("--connect-timeout", type=float, default=30.0, show_default=True)
@click.option("--announce", is_flag=True, help="Send the key announcement again first.")
@click.option("--json", "as_json", is_flag=True)
def send_command(
    radio_spec: str,
    identity_path: Path,
    network_path: Path,
    status: str,
    needs: str,
    people: int,
    lat: float | None,
    lon: float | None,
    accuracy: float | None,
    from_radio_gps: bool,
    text: str | None,
    ask: bool,
    to_node: str | None,
    ack_timeout: float,
    tries: int,
    connect_timeout: float,
    announce: bool,
    as_json: bool,
) -> None:
    """Send a signed, encrypted report through a Meshtastic radio and say what happened.

    Exit 0 when a radio confirmed it, 4 when nothing confirmed it (the report is
    saved and its sequence number used: send again), 1 on any other problem.
    """
    from .radio.api import BROADCAST, RadioError
    from .radio.meshtastic_radio import MeshtasticRadio
    from .send import GOOD, parse_node, send_report

    # With --from-radio-gps the radio gives the position: --ask asks for the words only.
    text, lat, lon = _private_inputs(ask, text, lat, lon, ask_position=not from_radio_gps)
    if from_radio_gps and lat is not None:
        raise CliError("give --lat/--lon or --from-radio-gps, not both")
    try:
        identity = Identity.load(identity_path)
        profile = load_profile(network_path)
        dest = parse_node(to_node) if to_node else BROADCAST
        report_for = _report_builder(status, needs, people, text)
        location = (
            wire.Location.from_degrees(lat, lon, accuracy_m=accuracy)
            if lat is not None and lon is not None
            else None
        )
        # Refuse an oversize report before touching the radio or a sequence number.
        wire.check_fits(report_for(location))
        radio = MeshtasticRadio(radio_spec, connect_timeout=connect_timeout)
    except (SignalfireError, wire.WireError) as exc:
        raise _fail(exc) from None
    except RadioError as exc:
        raise CliError(str(exc)) from None
    radio.start()
    try:
        if not radio.wait_connected(connect_timeout):
            raise CliError(
                f"the radio {radio_spec} did not answer within {connect_timeout:.0f} s; is it "
                "plugged in and switched on? Nothing was sent."
            )
        if from_radio_gps:
            fix = radio.own_position()
            if fix is None:
                raise CliError("the radio has no GPS position yet; give --lat and --lon instead")
            location = wire.Location.from_degrees(fix.lat, fix.lon, accuracy_m=accuracy)
        result = send_report(
            radio,
            identity,
            profile,
            report_for(location),
            dest=dest,
            ack_timeout=ack_timeout,
            tries=tries,
            force_announce=announce,
        )
    except (SignalfireError, wire.WireError) as exc:
        raise _fail(exc) from None
    except RadioError as exc:
        raise CliError(str(exc)) from None
    finally:
        radio.close()
    if as_json:
        click.echo(json.dumps(result.to_json()))
    else:
        click.echo(result.in_words())
        click.echo(f"report {result.report_id} · seq {result.seq} · {result.size} bytes")
    if result.outcome not in GOOD:
        raise SystemExit(EXIT_NOT_CONFIRMED)


def _report_builder(
    status: str, needs: str, people: int, text: str | None
) -> Callable[[wire.Location | None], wire.Report]:
    """A report maker checked now (bad words fail before the radio is used); time set at send."""
    parsed_status = wire.Status.from_label(status)
    parsed_needs = wire.needs_from_labels(needs.split(","))

    def build(location: wire.Location | None) -> wire.Report:
        return wire.Report(
            status=parsed_status,
            time=int(time.time()),
            people=people,
            needs=parsed_needs,
            location=location,
            text=text or None,
        )

    wire.encode_body(build(None))  # range checks (people, text) now
    return build


@main.command()
@click.option(
    "--dir",
    "workdir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Keep the demo's keys, databases, logs and summary.json here (default: a new "
    "directory under $TMPDIR).",
)
@click.option("--seed", type=int, default=1, show_default=True, help="Another town, another run.")
@click.option(
    "--duration",
    type=click.FloatRange(20, 24 * 3600),
    default=120,
    show_default=True,
    help="Seconds of scenario traffic (real time; the mesh runs --speed times faster).",
)
@click.option(
    "--speed",
    type=click.FloatRange(1, 60),
    default=20,
    show_default=True,
    help="Simulated mesh seconds per real second.",
)
@click.option(
    "--headless",
    is_flag=True,
    help="No browser hint; exit when the scenario ends, non-zero if anything a gateway "
    "stored was lost.",
)
@click.option("--keep", is_flag=True, help="Leave the services running after the summary.")
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="The feed's port (0: free).")
@click.option(
    "--walkthrough",
    is_flag=True,
    help="Instead: the wire-format walkthrough (reports, keys, forgeries) without services.",
)
def demo(
    workdir: Path | None,
    seed: int,
    duration: float,
    speed: float,
    headless: bool,
    keep: bool,
    port: int,
    walkthrough: bool,
) -> None:
    """Run the whole system on this machine: a town's mesh, two gateways, a coordinator."""
    if walkthrough:
        from .demo import walkthrough as walk

        outcome = walk.run(workdir, seed)
        if outcome.opened != outcome.sent:
            raise CliError(f"{outcome.sent - outcome.opened} report(s) sent but not opened")
        return
    from .demo.system import DemoOptions, run_demo

    summary = run_demo(
        DemoOptions(
            duration=duration,
            seed=seed,
            speed=speed,
            headless=headless,
            keep=keep,
            workdir=workdir,
            port=port,
        )
    )
    if summary.lost:
        raise CliError(
            f"{summary.lost} report(s) stored by a gateway never reached the coordinator: "
            f"{', '.join(summary.lost_ids[:5])}; see the logs in {workdir or 'the demo directory'}"
        )

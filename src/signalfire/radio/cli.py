"""`signalfire radio ...`: radio tools. The main CLI adds this group with add_command."""

from __future__ import annotations

import contextlib
import random
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import click

from signalfire.radio.emulator import EmulatedDevice
from signalfire.radio.virtual_mesh import InMemoryMesh


def parse_host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise click.BadParameter(f"expected HOST:PORT, got {value!r}")
    host = host.strip("[]") or "127.0.0.1"
    number = int(port)
    if not 0 <= number <= 65535:
        raise click.BadParameter(f"port {number} is out of range")
    return host, number


@click.group()
def radio() -> None:
    """Meshtastic radio tools."""


@radio.command()
@click.option(
    "--tcp", "tcp", metavar="HOST:PORT", help="Serve the stream API on TCP (port 0 picks one)."
)
@click.option("--pty", "use_pty", is_flag=True, help="Serve the stream API on a pseudo-terminal.")
@click.option(
    "--pty-link",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Keep a symlink to the current pty at this path (stable across unplug/plug).",
)
@click.option(
    "--nodes",
    default=3,
    show_default=True,
    type=click.IntRange(0, 200),
    help="Virtual nodes in range.",
)
@click.option(
    "--seed", default=0, show_default=True, type=int, help="Seed for node numbers, names, keys."
)
@click.option("--long-name", default="Signalfire Gateway", show_default=True)
@click.option("--short-name", default="SFGW", show_default=True)
@click.option(
    "--chatter",
    default=0.0,
    type=click.FloatRange(min=0),
    help="Every this many seconds a random virtual node sends a text or a position (0: never).",
)
@click.option(
    "--scenario",
    "scenario_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Put this radio in a simulated mesh (TOML, see scenarios/town.toml) instead.",
)
@click.option(
    "--gateway",
    metavar="NAME",
    help="With --scenario: which gateway of the scenario this radio is (default: the first).",
)
@click.option(
    "--speed",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="With --scenario: simulated seconds per wall-clock second.",
)
@click.option(
    "--keys-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="With --scenario: where civilians' signalfire identities (and the network) live.",
)
@click.pass_context
def emulate(
    ctx: click.Context,
    tcp: str | None,
    use_pty: bool,
    pty_link: Path | None,
    nodes: int,
    seed: int,
    long_name: str,
    short_name: str,
    chatter: float,
    scenario_file: Path | None,
    gateway: str | None,
    speed: float,
    keys_dir: Path | None,
) -> None:
    """Emulate a Meshtastic radio that the meshtastic library and CLI can connect to.

    The first lines on stdout are `tcp HOST:PORT` and/or `pty PATH`; then one line per
    node. Runs until SIGINT or SIGTERM.
    """
    if tcp is None and not use_pty and pty_link is None:
        raise click.UsageError("give --tcp HOST:PORT and/or --pty")
    if scenario_file is not None:
        if chatter or _given(ctx, "nodes"):
            raise click.UsageError("--chatter and --nodes are for the trivial mesh, not --scenario")
        given = {
            name: value
            for name, value in (("long_name", long_name), ("short_name", short_name))
            if _given(ctx, name)
        }
        _emulate_scenario(
            scenario_file,
            gateway=gateway,
            speed=speed,
            keys_dir=keys_dir,
            tcp=parse_host_port(tcp) if tcp is not None else None,
            pty_link=pty_link,
            use_pty=use_pty or pty_link is not None,
            names=given,
            seed=seed if _given(ctx, "seed") else None,
        )
        return
    if gateway is not None or keys_dir is not None:
        raise click.UsageError("--gateway and --keys-dir go with --scenario")
    from signalfire.radio.device_state import default_state

    mesh = InMemoryMesh.generate(nodes, seed=seed)
    state = default_state(
        seed=seed, long_name=long_name, short_name=short_name, avoid_nums=set(mesh.nodes)
    )
    device = EmulatedDevice(
        mesh,
        tcp=parse_host_port(tcp) if tcp is not None else None,
        pty=use_pty or pty_link is not None,
        pty_link=pty_link,
        state=state,
        seed=seed,
    )
    lines = [f"node {device.node_id} {long_name} (this radio)"] + [
        f"node {node.node_id} {node.long_name} {node.latitude:.5f},{node.longitude:.5f}"
        for node in mesh.nodes.values()
    ]
    with _running(device, pty_link, lines) as stop:
        _run(mesh, stop, chatter, random.Random(seed))  # noqa: S311 - demo traffic


@contextlib.contextmanager
def _running(
    device: EmulatedDevice, pty_link: Path | None, lines: list[str]
) -> Iterator[threading.Event]:
    """Start the radio, print where it is (first lines: whoever started us reads them),
    and hand back an event that SIGINT or SIGTERM sets; stop the radio afterwards."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    device.start()
    try:
        if device.tcp_address is not None:
            host, port = device.tcp_address
            click.echo(f"tcp {host}:{port}")
        if device.pty_path is not None:
            click.echo(f"pty {pty_link or device.pty_path}")
        for line in lines:
            click.echo(line)
        sys.stdout.flush()
        yield stop
    finally:
        device.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _given(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT


def _emulate_scenario(
    scenario_file: Path,
    *,
    gateway: str | None,
    speed: float,
    keys_dir: Path | None,
    tcp: tuple[str, int] | None,
    pty_link: Path | None,
    use_pty: bool,
    names: dict[str, str],
    seed: int | None,
) -> None:
    from signalfire.errors import SignalfireError
    from signalfire.radio.mesh_sim import MeshSimulator, Scenario

    try:
        scenario = Scenario.load(scenario_file)
        if seed is not None:
            scenario.seed = seed  # another run of the same town
        if gateway is None:
            if not scenario.gateways:
                raise click.UsageError(f"{scenario_file} has no [[gateways]] for this radio")
            gateway = scenario.gateways[0].name
        # It may run for days: keep the newest events only.
        sim = MeshSimulator(scenario, keys_dir=keys_dir, log_limit=100_000)
        device = sim.device(
            gateway,
            state=sim.device_state(gateway, **names),
            tcp=tcp,
            pty=use_pty,
            pty_link=pty_link,
        )
    except SignalfireError as exc:
        raise click.ClickException(exc.message) from None
    lines = [f"node {device.node_id} {device.state.owner.long_name} (this radio)"]
    for spec in scenario.nodes:
        if spec.num != device.node_num:
            node = spec.node
            lines.append(
                f"node {node.node_id} {node.long_name} "
                f"{node.latitude:.5f},{node.longitude:.5f} {spec.kind.value} {spec.role.name}"
            )
    if sim.keys is not None:
        lines.append(f"network {sim.keys.profile.name} {sim.keys.profile.network_id.hex()}")
        if sim.keys.key_path is not None:
            lines.append(f"network-key {sim.keys.key_path}")
    with _running(device, pty_link, lines) as stop:
        sim.start(speed=speed)
        try:
            while not stop.wait(3600):
                pass
        finally:
            sim.stop()


def _run(mesh: InMemoryMesh, stop: threading.Event, chatter: float, rng: random.Random) -> None:
    # Event.wait sleeps in the kernel; the signal handler sets the event.
    if chatter <= 0 or not mesh.nodes:
        while not stop.wait(3600):
            pass
        return
    nodes = list(mesh.nodes.values())
    while not stop.wait(chatter):
        node = rng.choice(nodes)
        if rng.random() < 0.5:
            mesh.send_position(node)
        else:
            mesh.send_text(node, rng.choice(("SAFE 2", "SOS 3", "MED 1 broken leg", "WATER 4")))


@radio.command()
@click.option(
    "--radio",
    "radio_spec",
    required=True,
    help="serial:/dev/ttyUSB0, tcp:HOST[:4403] or ble:NAME_OR_ADDRESS",
)
@click.option(
    "--profile",
    "role",
    required=True,
    type=click.Choice(["civilian", "relay", "gateway"]),
    help="Which radio profile (firmware-config/README.md says what each sets).",
)
@click.option(
    "--network",
    "network_path",
    required=True,
    type=click.Path(path_type=Path),
    help="The network profile (network.json): channel, key, preset, region.",
)
@click.option("--region", help="LoRa region, if the network profile names none.")
@click.option("--yes", is_flag=True, help="Write without asking.")
@click.option("--connect-timeout", type=float, default=30.0, show_default=True)
@click.option(
    "--settle",
    type=click.FloatRange(min=0),
    default=12.0,
    show_default=True,
    help="Seconds to wait for the radio's reboot after writing, before reading back.",
)
def provision(
    radio_spec: str,
    role: str,
    network_path: Path,
    region: str | None,
    yes: bool,
    connect_timeout: float,
    settle: float,
) -> None:
    """Put a radio on the network: show the changes, ask, write, read back and check.

    Exit 0 when the radio holds the profile (or already did), 1 otherwise.
    """
    from signalfire.errors import SignalfireError
    from signalfire.profile import load_profile
    from signalfire.radio.api import RadioError
    from signalfire.radio.profiles import target as make_target
    from signalfire.radio.provision import Change
    from signalfire.radio.provision import provision as run_provision

    def confirm(node_id: str, changes: list[Change]) -> bool:
        click.echo(f"radio {node_id}: {len(changes)} change(s) for the {role} profile:")
        for change in changes:
            click.echo(f"  {change}")
        if yes:
            return True
        return click.confirm("write them to the radio?", default=False)

    try:
        wanted = make_target(role, load_profile(network_path), region)
        if (
            radio_spec.startswith("ble:")
            and wanted.config.get("bluetooth", {}).get("enabled") is False
        ):
            raise click.UsageError(
                f"the {role} profile turns Bluetooth off: provision it over serial or TCP"
            )
        outcome = run_provision(
            radio_spec, wanted, confirm=confirm, connect_timeout=connect_timeout, settle=settle
        )
    except (SignalfireError, RadioError) as exc:
        message = exc.message if isinstance(exc, SignalfireError) else str(exc)
        raise click.ClickException(message) from None
    if not outcome.changes:
        click.echo(f"radio {outcome.node_id} already holds the {role} profile; nothing written")
    elif not outcome.written:
        raise click.ClickException("nothing written")
    else:
        click.echo(f"radio {outcome.node_id} holds the {role} profile (read back and checked)")

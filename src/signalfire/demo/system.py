"""`signalfire demo`: a town's mesh, two gateways and a coordinator, running on this machine.

What runs, each as the command an operator would run:

- a coordinator (`signalfire coordinator serve`, SQLite) with a demo user, and
  `coordinator ingest-mqtt` when a Mosquitto binary is installed;
- the mesh simulator of a small town (30 civilians, 3 relays on the hills,
  2 gateways; EU_868 LONG_FAST; losses, collisions and duty cycle as the
  simulator models them), whose two gateway radios are device emulators
  speaking the real Meshtastic stream protocol on TCP;
- two gateway daemons (`signalfire gateway run`): gateway-1 uplinks over
  HTTPS through a link the demo cuts for a while, gateway-2 over MQTT (or
  HTTPS without a broker) and gets its power cut (SIGKILL) and restarted.

Civilians send sealed signalfire reports and stock-radio texts (some in
Armenian and Russian). The summary is computed from the stores themselves:
what a gateway committed must be at the coordinator, or the run failed.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from signalfire.coordinator.accounts import Accounts
from signalfire.coordinator.store import CoordinatorStore
from signalfire.errors import SignalfireError
from signalfire.profile import init_network
from signalfire.radio.emulator import EmulatedDevice
from signalfire.radio.mesh_sim import MeshSimulator
from signalfire.radio.mesh_sim.scenario import TrafficPlan, town
from signalfire.sender import Identity

from .observe import coordinator_view, gateway_backlog, gateway_report_ids
from .services import (
    START_TIMEOUT_S,
    CuttableLink,
    Service,
    ServiceError,
    find_mosquitto,
    free_port,
    mosquitto,
    wait_for_port,
)

GATEWAYS = ("gateway-1", "gateway-2")
DEMO_USER = "demo"
DRAIN_TIMEOUT_S = 60.0
# When things happen, as fractions of the scenario's duration.
LINK_CUT, LINK_BACK = 0.25, 0.45
POWER_CUT, POWER_BACK = 0.55, 0.70
_USER_LABELS = ("report", "text", "canned")  # what people sent (not positions, not keys)


@dataclass
class DemoOptions:
    duration: float = 120.0  # wall-clock seconds of scenario traffic
    seed: int = 1
    speed: float = 20.0  # simulated seconds per wall-clock second
    headless: bool = False
    keep: bool = False
    workdir: Path | None = None
    port: int = 0  # the feed's port; 0: a free one


@dataclass
class Summary:
    seed: int
    duration_s: float
    simulated_s: float
    feed_url: str
    username: str
    sent: int = 0  # reports and stock messages civilians sent
    sent_by_kind: dict[str, int] = field(default_factory=dict)
    heard_by_a_gateway: int = 0  # committed to at least one gateway's store
    delivered: int = 0  # of those, at the coordinator
    lost: int = 0  # committed by a gateway, not at the coordinator: must be 0
    lost_ids: list[str] = field(default_factory=list)
    stored_reports: int = 0  # reports in the coordinator (all, opened)
    kept_pending: int = 0  # kept until the sender's key announcement arrives
    duplicates_suppressed: int = 0  # extra copies (other gateway, retries) merged away
    by_status: dict[str, int] = field(default_factory=dict)
    airtime_s: float = 0.0
    channel_busy_percent: float = 0.0
    transmissions: int = 0
    collisions: int = 0
    events: list[str] = field(default_factory=list)
    mqtt: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Demo:
    def __init__(self, options: DemoOptions, console: Console) -> None:
        self.o = options
        self.console = console
        self.root = (
            options.workdir
            or Path(
                os.environ.get("TMPDIR", "/tmp")  # noqa: S108 - a fresh private dir below
            )
            / f"signalfire-demo-{os.getpid()}"
        )
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)  # keys and the demo password live here
        self.events: list[str] = []
        self.services: dict[str, Service] = {}
        self.devices: dict[str, EmulatedDevice] = {}
        self.link: CuttableLink | None = None
        self.sim: MeshSimulator | None = None
        self.t0 = 0.0
        self.password = secrets.token_urlsafe(9)
        self.mqtt_port: int | None = None
        self.feed_port = options.port or free_port()

    # -- set-up -----------------------------------------------------------------

    def _note(self, text: str) -> None:
        stamp = time.monotonic() - self.t0 if self.t0 else 0.0
        self.events.append(f"{int(stamp) // 60:02d}:{int(stamp) % 60:02d} {text}")

    def build(self) -> None:
        root = self.root
        profile, _ = init_network(root / "network", "demo-town")
        sim_seconds = self.o.duration * self.o.speed
        scenario = town(
            civilians=30,
            relays=3,
            gateways=2,
            seed=self.o.seed,
            duration=sim_seconds,
            keys_dir=root / "civilians",
            # The mesh runs `speed` times faster than the clock: its reports are dated as
            # if the town's last `sim_seconds` were replayed, so none claims a future time.
            start_time=int(time.time() - sim_seconds),
            traffic=TrafficPlan(
                position_interval=900.0,
                signalfire_share=0.5,
                reports=1.5,
                texts=1.2,
                start=15.0 * self.o.speed,  # the gateways are still connecting
            ),
        )
        scenario.network = root / "network" / "network.json"
        self.sim = MeshSimulator(scenario, log_limit=50_000)
        for name in GATEWAYS:
            identity = Identity.create(root / name / "gateway.key")
            identity.enrol(profile)
            device = self.sim.device(name, tcp=("127.0.0.1", 0))
            self.devices[name] = device

        broker = find_mosquitto()
        if broker is not None:
            self.mqtt_port = free_port()
            self.services["mosquitto"] = mosquitto(broker, root / "broker", self.mqtt_port)
        self._coordinator_config()
        self._demo_user()

    def _coordinator_config(self) -> None:
        c = self.root / "coordinator"
        c.mkdir(exist_ok=True)
        lines = [
            "# Written by `signalfire demo`.",
            "[database]",
            'url = "sqlite:///coordinator.db"',
            "[network]",
            'profile = "../network/network.json"',
            'key = "../network/network.key"',
            "[listen]",
            'host = "127.0.0.1"',
            f"port = {self.feed_port}",
            "[rate_limit]",
            "batches_per_second = 50",
            "burst = 200",
        ]
        if self.mqtt_port is not None:
            lines += ["[mqtt]", 'host = "127.0.0.1"', f"port = {self.mqtt_port}"]
        for name in GATEWAYS:
            lines += ["[[gateways]]", f'name = "{name}"', f'key = "../{name}/gateway.key.pub"']
        (c / "coordinator.toml").write_text("\n".join(lines) + "\n")

    def _demo_user(self) -> None:
        store = CoordinatorStore(f"sqlite:///{self.root / 'coordinator' / 'coordinator.db'}")
        try:
            Accounts(store).add_user(
                DEMO_USER, self.password, "admin", time.time(), actor="signalfire demo"
            )
        finally:
            store.close()

    def _gateway_config(self, name: str, radio_port: int) -> Path:
        d = self.root / name
        lines = [
            "# Written by `signalfire demo`.",
            "[gateway]",
            f'name = "{name}"',
            'identity = "gateway.key"',
            'network = "../network/network.json"',
            'data_dir = "data"',
            "[radio]",
            f'spec = "tcp:127.0.0.1:{radio_port}"',
            "reply = true",
            "[[uplink]]",
        ]
        if name == "gateway-2" and self.mqtt_port is not None:
            lines += ['type = "mqtt"', 'name = "broker"', 'host = "127.0.0.1"']
            lines += [f"port = {self.mqtt_port}"]
        else:
            assert self.link is not None or name != "gateway-1"
            port = self.link.port if name == "gateway-1" and self.link else self.feed_port
            lines += ['type = "https"', 'name = "coordinator"', f'url = "http://127.0.0.1:{port}"']
            lines += ["timeout_s = 5", "batch_size = 100"]
        path = d / "gateway.toml"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start(self) -> None:
        logs = self.root / "logs"
        if "mosquitto" in self.services:
            self.services["mosquitto"].start()
            assert self.mqtt_port is not None
            wait_for_port(self.mqtt_port, START_TIMEOUT_S, self.services["mosquitto"])
        cfg = str(self.root / "coordinator" / "coordinator.toml")
        serve = Service.signalfire("coordinator", ["coordinator", "serve", "--config", cfg],
                                   logs / "coordinator.log")  # fmt: skip
        self.services["coordinator"] = serve
        serve.start()
        wait_for_port(self.feed_port, START_TIMEOUT_S, serve)
        if self.mqtt_port is not None:
            ingest = Service.signalfire(
                "ingest-mqtt", ["coordinator", "ingest-mqtt", "--config", cfg], logs / "ingest.log"
            )
            self.services["ingest-mqtt"] = ingest
            ingest.start()
        self.link = CuttableLink(self.feed_port)
        assert self.sim is not None
        for name, device in self.devices.items():
            device.start()
            assert device.tcp_address is not None
            config = self._gateway_config(name, device.tcp_address[1])
            gw = Service.signalfire(name, ["gateway", "run", "--config", str(config)],
                                    logs / f"{name}.log")  # fmt: skip
            self.services[name] = gw
            gw.start()
        self.t0 = time.monotonic()
        self.sim.start(speed=self.o.speed)
        self._note("town on the air; gateways connecting")

    # -- the scenario's disruptions -----------------------------------------------

    def _script(self, elapsed: float, done: set[str]) -> None:
        d = self.o.duration
        assert self.link is not None
        steps = (
            ("cut", LINK_CUT, self.link.cut, "gateway-1's uplink goes down"),
            ("back", LINK_BACK, self.link.restore, "gateway-1's uplink is back"),
            ("kill", POWER_CUT, self.services["gateway-2"].kill, "gateway-2 loses power (SIGKILL)"),
            ("boot", POWER_BACK, self.services["gateway-2"].start, "gateway-2 powers up again"),
        )
        for key, at, action, text in steps:
            if key not in done and elapsed >= at * d:
                action()
                done.add(key)
                self._note(text)

    # -- numbers ------------------------------------------------------------------

    def _gateway_ids(self) -> set[str]:
        ids: set[str] = set()
        for name in GATEWAYS:
            ids |= gateway_report_ids(self.root / name / "data" / "gateway.sqlite")
        return ids

    def _sent(self) -> dict[str, int]:
        assert self.sim is not None
        by_kind = self.sim.delivery()["by_kind"]
        return {k: v["sent"] for k, v in by_kind.items() if k in _USER_LABELS}

    def _check_services(self) -> None:
        for name, svc in self.services.items():
            killed = svc.proc is not None and svc.proc.returncode == -signal.SIGKILL
            if name == "gateway-2" and killed:
                continue  # the power cut
            svc.check()

    def _view(self, phase: str) -> Group:
        coord = coordinator_view(self.root / "coordinator" / "coordinator.db")
        at_gateways = self._gateway_ids()
        sent = self._sent()
        assert self.sim is not None
        with self.sim._cond:  # a consistent reading of the air counters
            tx = self.sim.air.counters.transmissions
            air = self.sim.air.counters.airtime
        elapsed = time.monotonic() - self.t0
        head = Text.assemble(
            ("signalfire demo ", "bold"),
            f"{phase} · {int(elapsed)} s of {int(self.o.duration)} s · seed {self.o.seed}\n",
            ("feed ", "bold"),
            f"http://127.0.0.1:{self.feed_port}  login {DEMO_USER} / {self.password}",
        )
        table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
        for col in ("sent by civilians", "frames on air", "at gateways", "at coordinator",
                    "airtime"):  # fmt: skip
            table.add_column(col, justify="right")
        table.add_row(
            str(sum(sent.values())),
            str(tx),
            str(len(at_gateways)),
            str(len(coord.delivered & at_gateways) if at_gateways else len(coord.delivered)),
            f"{air:.0f} s",
        )
        statuses = " · ".join(f"{k} {v}" for k, v in sorted(coord.by_status.items())) or "—"
        link = "DOWN" if self.link is not None and self.link.is_cut else "up"
        gw2 = "running" if self.services["gateway-2"].running else "NO POWER"
        state = Text(f"by status: {statuses}\ngateway-1 uplink {link} · gateway-2 {gw2}")
        recent = Text("\n".join(self.events[-5:]), style="dim")
        return Group(head, table, state, recent)

    # -- the run --------------------------------------------------------------------

    def run(self) -> Summary:
        self.build()
        try:
            self.start()
            if not self.o.headless:
                self.console.print(
                    f"Open the feed: [bold]http://127.0.0.1:{self.feed_port}[/bold] "
                    f"(user [bold]{DEMO_USER}[/bold], password [bold]{self.password}[/bold])"
                )
            else:
                self.console.print(
                    f"feed http://127.0.0.1:{self.feed_port} user {DEMO_USER} "
                    f"password {self.password}"
                )
            done: set[str] = set()
            with Live(self._view("running"), console=self.console, refresh_per_second=2,
                      transient=self.o.headless) as live:  # fmt: skip
                while True:
                    elapsed = time.monotonic() - self.t0
                    if elapsed >= self.o.duration:
                        break
                    self._script(elapsed, done)
                    self._check_services()
                    live.update(self._view("running"))
                    time.sleep(0.5)
                self._script(self.o.duration, done)  # every step happens, even on a short run
                self._note("scenario over; gateways deliver what they hold")
                deadline = time.monotonic() + DRAIN_TIMEOUT_S
                while time.monotonic() < deadline:
                    live.update(self._view("draining"))
                    if self._drained():
                        break
                    self._check_services()
                    time.sleep(0.5)
                live.update(self._view("done"))
            summary = self._summary()
            self._print(summary)
            (self.root / "summary.json").write_text(json.dumps(summary.to_json(), indent=2))
            if self.o.keep:
                self._keep()
            return summary
        finally:
            self.stop()

    def _drained(self) -> bool:
        coord = coordinator_view(self.root / "coordinator" / "coordinator.db")
        if self._gateway_ids() - coord.delivered:
            return False
        return all(
            gateway_backlog(self.root / n / "data" / "gateway.sqlite") == 0 for n in GATEWAYS
        )

    def _summary(self) -> Summary:
        assert self.sim is not None
        coord = coordinator_view(self.root / "coordinator" / "coordinator.db")
        heard = self._gateway_ids()
        lost = sorted(heard - coord.delivered)
        sent = self._sent()
        air = self.sim.summary()
        return Summary(
            seed=self.o.seed,
            duration_s=self.o.duration,
            simulated_s=air["simulated_s"],
            feed_url=f"http://127.0.0.1:{self.feed_port}",
            username=DEMO_USER,
            sent=sum(sent.values()),
            sent_by_kind=sent,
            heard_by_a_gateway=len(heard),
            delivered=len(heard & coord.delivered),
            lost=len(lost),
            lost_ids=lost,
            stored_reports=len(coord.reports),
            kept_pending=len(coord.pending),
            duplicates_suppressed=max(0, coord.receipts - len(coord.reports)),
            by_status=dict(sorted(coord.by_status.items())),
            airtime_s=round(air["airtime_s"], 1),
            channel_busy_percent=air["channel_busy_percent"],
            transmissions=air["transmissions"],
            collisions=air["collisions"],
            events=list(self.events),
            mqtt=self.mqtt_port is not None,
        )

    def _print(self, s: Summary) -> None:
        t = Table(title="signalfire demo: summary", show_header=False, box=None)
        t.add_column(justify="left")
        t.add_column(justify="right")
        rows = [
            ("sent by civilians (reports and stock messages)", s.sent),
            ("heard by a gateway and stored there", s.heard_by_a_gateway),
            ("delivered to the coordinator", s.delivered),
            ("lost after a gateway stored them (must be 0)", s.lost),
            ("duplicates suppressed (two gateways, retries)", s.duplicates_suppressed),
            ("kept until the sender's key arrives", s.kept_pending),
            ("airtime used", f"{s.airtime_s} s ({s.channel_busy_percent:.1f} % of the channel)"),
            (
                "frames on air / receptions lost to collisions",
                f"{s.transmissions} / {s.collisions}",
            ),
        ]
        for label, value in rows:
            t.add_row(label, str(value))
        self.console.print(t)
        by_status = " · ".join(f"{k} {v}" for k, v in s.by_status.items())
        self.console.print(f"by status: {by_status}")
        uplink = "HTTPS (gateway-1) and MQTT (gateway-2)" if s.mqtt else "HTTPS (both gateways)"
        self.console.print(f"uplinks: {uplink}; events: " + "; ".join(s.events))
        self.console.print(f"files, logs and summary.json: {self.root}")

    def _keep(self) -> None:
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        self.console.print(
            f"services keep running (--keep): feed http://127.0.0.1:{self.feed_port}; "
            "Ctrl-C stops them"
        )
        while not stop.wait(1.0):
            pass

    def stop(self) -> None:
        if self.sim is not None:
            self.sim.stop()
        for name in (*GATEWAYS, "ingest-mqtt", "coordinator", "mosquitto"):
            svc = self.services.get(name)
            if svc is not None:
                svc.stop()
        for device in self.devices.values():
            device.stop()
        if self.link is not None:
            self.link.close()


def run_demo(options: DemoOptions, console: Console | None = None) -> Summary:
    try:
        return Demo(options, console or Console()).run()
    except ServiceError:
        raise
    except SignalfireError:
        raise

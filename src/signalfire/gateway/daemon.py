"""`signalfire gateway run`: wire the radio, the intake, the store and the uplinks together."""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from types import FrameType
from typing import Any

from .. import wire
from ..intake.stock import StockIntake
from ..keyfiles import load_network_key
from ..profile import NetworkProfile, load_profile
from ..radio.api import Radio, RadioState
from ..radio.meshtastic_radio import MeshtasticRadio
from ..sender import Identity
from .config import GatewayConfig, UplinkConfig
from .intake import GatewayIntake, ReplySender, stored_packet
from .records import Verified
from .scheduler import UplinkWorker
from .store import GatewayStore, StoreError
from .uplinks.base import Uplink
from .uplinks.https import HttpsUplink

log = logging.getLogger(__name__)

STATUS_INTERVAL_S = 30.0
PURGE_INTERVAL_S = 600.0  # how often delivered packets past keep_delivered_hours go


def build_uplink(cfg: UplinkConfig, identity: Identity, profile: NetworkProfile) -> Uplink:
    s = cfg.settings
    if cfg.type == "https":
        return HttpsUplink(
            s["url"],
            gateway=identity.key,
            network_id=profile.network_id,
            name=cfg.name,
            ca_file=s.get("ca_file") or None,
            timeout_s=float(s.get("timeout_s", 15.0)),
        )
    if cfg.type == "mqtt":
        from .uplinks.mqtt import MqttUplink

        password = None
        if s.get("password_file"):
            with open(s["password_file"], encoding="utf-8") as fh:
                password = fh.read().strip()
        return MqttUplink(
            s["host"],
            int(s.get("port", 1883)),
            network_id=profile.network_id,
            gateway=identity.key,
            name=cfg.name,
            tls=bool(s.get("tls", False)),
            ca_file=s.get("ca_file") or None,
            username=s.get("username") or None,
            password=password,
        )
    if cfg.type == "bundle":
        from .uplinks.bundle import BundleUplink

        return BundleUplink(
            s["dir"], gateway=identity.key, network_id=profile.network_id, name=cfg.name
        )
    if cfg.type == "sbd":
        from .uplinks.sbd import SbdUplink

        return SbdUplink(
            s["port"],
            name=cfg.name,
            baudrate=int(s.get("baudrate", 19200)),
            min_signal=int(s.get("min_signal", 2)),
            credits_per_day=int(s.get("credits_per_day", 0)) or None,
            session_timeout_s=float(s.get("session_timeout_s", 90.0)),
        )
    if cfg.type == "sms":
        from .uplinks.sms import SmsUplink

        return SmsUplink(
            s["port"],
            to=s["to"],
            name=cfg.name,
            baudrate=int(s.get("baudrate", 115200)),
            smsc=s.get("smsc") or None,
            max_parts=int(s.get("max_parts", 8)),
            parts_per_day=int(s.get("parts_per_day", 0)) or None,
            min_signal=int(s.get("min_signal", 5)),
            status_report_timeout_s=float(s.get("status_report_timeout_s", 120.0)),
            send_timeout_s=float(s.get("send_timeout_s", 60.0)),
        )
    raise ValueError(f"unknown uplink type {cfg.type}")


def install_signal_handlers() -> threading.Event:
    """SIGTERM and SIGINT set the returned event; install before the slow start-up."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stop


class GatewayDaemon:
    def __init__(self, config: GatewayConfig, *, radio: Radio | None = None) -> None:
        self.config = config
        self.profile = load_profile(config.network)
        self.identity = Identity.load(config.identity)
        network_private = load_network_key(config.network_key) if config.network_key else None
        self.keyring = wire.Keyring(self.profile.public_key, network_private)
        config.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = GatewayStore(
            config.store_path, min_free_bytes=config.min_free_mb * 1024 * 1024
        )
        for raw in self.store.announcements():
            try:
                self.keyring.add(raw)
            except wire.WireError:
                continue
        self.uplinks = [build_uplink(u, self.identity, self.profile) for u in config.uplinks]
        names = [u.name for u in self.uplinks]
        self.store.ensure_uplinks(names)
        self.workers = [
            UplinkWorker(u, self.store, batch_size=int(c.settings.get("batch_size", 200)))
            for u, c in zip(self.uplinks, config.uplinks, strict=True)
        ]
        self._store_own_announcement(names)
        self.radio: Radio = radio or MeshtasticRadio(config.radio)
        stock = StockIntake(
            self.identity,
            self.profile,
            help_interval_s=config.help_interval_s,
            receipt_interval_s=config.receipt_interval_s,
        )
        self.replies = ReplySender(self.radio) if config.reply else None
        self.intake = GatewayIntake(
            self.store,
            self.keyring,
            names,
            app_port=self.profile.app_port,
            stock=stock,
            replies=self.replies,
            per_node_per_minute=config.per_node_per_minute,
            per_key_per_minute=config.per_key_per_minute,
            on_stored=self._kick,
        )
        self.radio.add_listener(self.intake.handle)
        self.radio.add_state_listener(self._radio_state)
        self._stop = threading.Event()

    def _store_own_announcement(self, uplinks: list[str]) -> None:
        """Attested reports are signed by this gateway: the coordinator needs its announcement."""
        announcement, _ = self.identity.enrol(self.profile)
        parsed = wire.parse(announcement)
        self.keyring.add(announcement)
        self.store.add(
            stored_packet(announcement, parsed, None, time.time(), Verified.VERIFIED), uplinks
        )

    def _kick(self) -> None:
        for worker in self.workers:
            worker.notify()

    def _radio_state(self, state: RadioState, reason: str) -> None:
        self.store.set_status(
            "radio",
            json.dumps(
                {
                    "state": state.value,
                    "reason": reason,
                    "since": time.time(),
                    "spec": self.config.radio,
                }
            ),
        )

    def start(self) -> None:
        for worker in self.workers:
            worker.start()
        if self.replies is not None:
            self.replies.start()
        self.radio.start()
        if not self.workers:
            log.warning(
                "gateway.toml has no [[uplink]]: packets are stored here and never leave this "
                "gateway; add an uplink (https, mqtt, bundle, sbd or sms) and restart"
            )
        log.info(
            "gateway %s running: radio %s, uplinks %s",
            self.config.name, self.config.radio, ", ".join(u.name for u in self.uplinks) or "none",
        )  # fmt: skip

    def stop(self) -> None:
        self._stop.set()
        self.radio.close()
        if self.replies is not None:
            self.replies.stop()
        for worker in self.workers:
            worker.stop()
        self._write_intake_status()
        self.store.close()
        log.info("gateway %s stopped", self.config.name)

    def _write_intake_status(self) -> None:
        counts: dict[str, Any] = dict(self.intake.counts)
        self.store.set_status("intake", json.dumps({"counts": counts, "at": time.time()}))

    def run_forever(self, stop: threading.Event | None = None) -> None:
        """Run until SIGTERM/SIGINT or ``stop`` is set (install_signal_handlers gives one)."""
        if stop is not None:
            self._stop = stop
        else:
            self._stop = install_signal_handlers()
        self.start()
        next_purge = time.monotonic()
        try:
            while not self._stop.wait(STATUS_INTERVAL_S):
                self._write_intake_status()
                if time.monotonic() >= next_purge:
                    self.purge_delivered(time.time())
                    next_purge = time.monotonic() + PURGE_INTERVAL_S
        finally:
            self.stop()

    def purge_delivered(self, now: float) -> int:
        """Delete what every uplink finished more than keep_delivered_hours ago.

        A seized gateway should hold as little as possible of who said what where;
        what the coordinators have is no longer this store's to keep.
        """
        names = [u.name for u in self.uplinks]
        if not names:
            return 0  # nothing is ever delivered: nothing may go
        try:
            return self.store.purge_delivered(now - self.config.keep_delivered_s, names)
        except StoreError as exc:
            log.warning("purge of delivered packets failed (tried again later): %s", exc)
            return 0

"""`signalfire coordinator ...`: serve the ingest endpoint, ingest from MQTT, manage gateways."""

from __future__ import annotations

import getpass
import json
import logging
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from sqlalchemy.exc import SQLAlchemyError

from signalfire import wire
from signalfire.errors import SignalfireError
from signalfire.render import iso_time

from .accounts import ROLES, AccountError, Accounts
from .api import ApiSettings, create_coordinator_app
from .config import (
    CoordinatorConfig,
    check_gateway_name,
    is_loopback,
    load_config,
    parse_gateway_key,
)
from .feed import Feed
from .ingest import Ingestor, import_announcements
from .mqtt_ingest import run_workers, subscription
from .store import CoordinatorStore
from .webhooks import Webhooks

log = logging.getLogger(__name__)

GRACEFUL_SHUTDOWN_S = 10  # in-flight batches finish and commit; the gateway resends the rest


class CoordinatorCliError(click.ClickException):
    """One line on stderr, nothing on stdout (as the main CLI does)."""

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.message}", err=True)


def _config(path: Path) -> CoordinatorConfig:
    try:
        return load_config(path)
    except SignalfireError as exc:
        raise CoordinatorCliError(exc.message) from None


def _store(cfg: CoordinatorConfig) -> CoordinatorStore:
    try:
        return CoordinatorStore(cfg.database_url)
    except SignalfireError as exc:
        raise CoordinatorCliError(exc.message) from None


@contextmanager
def _opened_store(cfg: CoordinatorConfig) -> Iterator[CoordinatorStore]:
    """The store for one command, closed afterwards; account errors become one CLI line."""
    store = _store(cfg)
    try:
        yield store
    except AccountError as exc:
        raise CoordinatorCliError(exc.message) from None
    finally:
        store.close()


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


_config_option = click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="SIGNALFIRE_COORDINATOR_CONFIG",
    help="coordinator.toml (env SIGNALFIRE_COORDINATOR_CONFIG).",
)


@click.group()
def coordinator() -> None:
    """Coordinator: receive gateway batches, verify, deduplicate and store reports."""


@coordinator.command("serve")
@_config_option
def serve(config_path: Path) -> None:
    """Serve the feed page, the JSON API and the gateways' batch endpoint until SIGTERM."""
    import uvicorn

    cfg = _config(config_path)
    store, ingestor = _ingestor(cfg)
    stop_retention = threading.Event()
    try:
        now = time.time()
        tls = cfg.tls_cert is not None
        feed = Feed(store, cfg.feed_settings())
        app = create_coordinator_app(
            ingestor=ingestor,
            feed=feed,
            accounts=Accounts(store, session_s=cfg.session_s),
            settings=ApiSettings(
                secure_cookies=tls,
                max_body_bytes=cfg.max_body_bytes,
                rate_per_s=cfg.rate_per_s,
                burst=cfg.burst,
            ),
            webhooks=Webhooks(sbd=cfg.sbd, sms=cfg.sms),
        )
        if cfg.retention_days is not None:
            threading.Thread(
                target=_retention_loop,
                args=(feed, cfg.retention_every_s, stop_retention),
                name="retention",
                daemon=True,
            ).start()
        if not tls and not is_loopback(cfg.host):
            # Reports are end-to-end encrypted and batches signed, but the gateway
            # metadata (radio nodes, times, signal) would travel readable.
            log.warning(
                "serving plain HTTP on %s: put a TLS proxy in front or set "
                "[listen].tls_cert and tls_key",
                cfg.host,
            )
        store.audit(
            "coordinator",
            "serve.start",
            {"host": cfg.host, "port": cfg.port, "tls": tls, "network": cfg.profile.name},
            now,
        )
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                host=cfg.host,
                port=cfg.port,
                ssl_certfile=str(cfg.tls_cert) if cfg.tls_cert else None,
                ssl_keyfile=str(cfg.tls_key) if cfg.tls_key else None,
                log_config=None,  # keep signalfire's logging set-up
                access_log=False,  # quiet: one line per batch comes from ingest at -v
                server_header=False,
                lifespan="off",
                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
            )
        )
        scheme = "https" if tls else "http"
        click.echo(
            f"coordinator for network {cfg.profile.name} on {scheme}://{cfg.host}:{cfg.port} "
            f"(database {cfg.safe_database_url})",
            err=True,
        )

        # uvicorn turns SIGTERM and SIGINT into a graceful stop (no new connections,
        # in-flight batches finish and commit), then raises the signal again for the
        # handler it found. Ours only asks for the stop (in case the signal comes
        # before uvicorn's handlers are in place), so the store is closed and the
        # exit status is 0 rather than death by signal.
        def _stop(_signum: int, _frame: object) -> None:
            server.should_exit = True

        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, _stop)
        server.run()
    except (SignalfireError, wire.WireError) as exc:
        raise CoordinatorCliError(exc.message) from None
    finally:
        stop_retention.set()
        store.close()
    click.echo("coordinator stopped", err=True)


def _retention_loop(feed: Feed, every_s: float, stop: threading.Event) -> None:
    while True:
        try:
            gone = feed.expire(time.time())
            if gone:
                log.info("retention: deleted %d old reports", gone)
        except SQLAlchemyError as exc:
            # The next round tries again; the service itself keeps running.
            log.error("retention: database error %s; trying again later", type(exc).__name__)
        if stop.wait(every_s):
            return


def _ingestor(cfg: CoordinatorConfig) -> tuple[CoordinatorStore, Ingestor]:
    try:
        keyring = cfg.keyring()
    except SignalfireError as exc:
        raise CoordinatorCliError(exc.message) from None
    store = _store(cfg)
    try:
        now = time.time()
        for gw in cfg.gateways:
            if gw.announcements:
                import_announcements(store, cfg.profile.public_key, gw.announcements, now)
        ingestor = Ingestor(
            store,
            keyring,
            enrolled_gateways=[(g.name, g.public_key) for g in cfg.gateways],
            policy=cfg.policy,
            now=now,
        )
    except BaseException:
        store.close()
        raise
    return store, ingestor


def build_ingestor(config_path: Path) -> tuple[CoordinatorStore, Ingestor]:
    """The store and ingestor `serve` uses, for other ways in (USB bundle import)."""
    return _ingestor(_config(config_path))


@coordinator.command("ingest-mqtt")
@_config_option
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Worker processes sharing the subscription, each with its own database connection.",
)
def ingest_mqtt(config_path: Path, workers: int) -> None:
    """Ingest gateway reports from the MQTT broker in [mqtt] until SIGTERM or Ctrl-C.

    The workers share one MQTT 5 shared subscription ($share/<group>/...), so
    the broker splits the stream between them; several machines running this
    with the same group split it too. A worker that dies is restarted.
    """
    cfg = _config(config_path)
    if cfg.mqtt is None:
        raise CoordinatorCliError(
            f"{config_path} has no [mqtt] section; add one (see coordinator.example.toml)"
        )
    try:
        cfg.keyring()
        cfg.mqtt.password()
    except SignalfireError as exc:
        raise CoordinatorCliError(exc.message) from None
    # Open the database once here: the schema, configured gateways and their
    # announcements are in place before the workers start.
    store, ingestor = _ingestor(cfg)
    network_id = ingestor.network_id
    store.close()
    if cfg.database_url.get_backend_name() == "sqlite" and workers > 1:
        log.info("%d workers on SQLite take turns at its one write lock", workers)
    scheme = "mqtts" if cfg.mqtt.tls else "mqtt"
    click.echo(
        f"ingest-mqtt for network {cfg.profile.name}: {workers} worker(s) on "
        f"{scheme}://{cfg.mqtt.host}:{cfg.mqtt.port} {subscription(cfg.mqtt, network_id)} "
        f"(database {cfg.safe_database_url})",
        err=True,
    )
    status = run_workers(
        config_path,
        workers,
        build_ingestor,
        log_level=logging.getLogger().getEffectiveLevel(),
    )
    if status:
        raise CoordinatorCliError("MQTT ingest stopped: a worker cannot use the [mqtt] settings")
    click.echo("ingest-mqtt stopped", err=True)


@coordinator.group()
def gateway() -> None:
    """Gateways allowed to deliver batches (their Ed25519 public keys)."""


@gateway.command("add")
@_config_option
@click.option("--name", required=True, help="A name people recognise, e.g. hilltop-north.")
@click.option(
    "--key",
    "key",
    required=True,
    help="The gateway's public key: its .pub card (signalfire keys new) or 64 hex digits.",
)
def gateway_add(config_path: Path, name: str, key: str) -> None:
    """Enrol a gateway: its signed batches are accepted from now on."""
    cfg = _config(config_path)
    try:
        check_gateway_name(name)
        public_key, announcements = parse_gateway_key(key, Path.cwd())
    except SignalfireError as exc:
        raise CoordinatorCliError(exc.message) from None
    store = _store(cfg)
    try:
        now = time.time()
        row, new = store.add_gateway(public_key, name, now, actor=_actor())
        if not row.active:
            revoked = iso_time(int(row.revoked_at or 0))
            raise CoordinatorCliError(
                f"gateway {row.key_id} ({row.name}) was revoked at {revoked}; a revoked key "
                "stays revoked: give the gateway a new key (signalfire keys new) and add that"
            )
        imported = import_announcements(store, cfg.profile.public_key, announcements, now)
    except wire.WireError as exc:
        raise CoordinatorCliError(f"{key}: a key announcement is unusable: {exc.message}") from None
    except SignalfireError as exc:
        raise CoordinatorCliError(exc.message) from None
    finally:
        store.close()
    if new:
        click.echo(f"enrolled gateway {name} (key id {row.key_id})")
    else:
        click.echo(f"gateway {row.name} (key id {row.key_id}) was already enrolled")
    if imported:
        click.echo(f"stored {len(imported)} key announcement(s) from the card")


@gateway.command("list")
@_config_option
@click.option("--json", "as_json", is_flag=True, help="One JSON array on stdout.")
def gateway_list(config_path: Path, as_json: bool) -> None:
    """List enrolled gateways, revoked ones included."""
    cfg = _config(config_path)
    store = _store(cfg)
    try:
        rows = store.gateways()
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps([r.to_json() for r in rows]))
        return
    if not rows:
        click.echo("no gateways enrolled; add one with: signalfire coordinator gateway add")
        return
    click.echo(f"{'name':<24} {'key id':<16}  {'enrolled':<20}  status")
    for r in rows:
        status = "active" if r.active else f"revoked {iso_time(int(r.revoked_at or 0))}"
        click.echo(f"{r.name:<24} {r.key_id:<16}  {iso_time(int(r.enrolled_at)):<20}  {status}")


@gateway.command("revoke")
@_config_option
@click.argument("which")
def gateway_revoke(config_path: Path, which: str) -> None:
    """Revoke a gateway (by key id or name): its batches are refused from now on."""
    cfg = _config(config_path)
    store = _store(cfg)
    try:
        rows = [r for r in store.gateways() if which in (r.key_id, r.name)]
        if len(rows) != 1:
            found = "no gateway" if not rows else f"{len(rows)} gateways"
            raise CoordinatorCliError(
                f"{found} named or with key id {which!r}; see: signalfire coordinator gateway list"
            )
        row = rows[0]
        done = store.revoke_gateway(row.key_id, time.time(), actor=_actor())
    finally:
        store.close()
    if done:
        click.echo(f"revoked gateway {row.name} (key id {row.key_id})")
    else:
        click.echo(f"gateway {row.name} (key id {row.key_id}) was already revoked")


@coordinator.group()
def user() -> None:
    """People who use the feed: viewer (coarse positions), responder, admin."""


def _read_password(password_file: Path | None, confirm: bool) -> str:
    if password_file is not None:
        try:
            lines = password_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise CoordinatorCliError(f"cannot read {password_file}: {exc}") from None
        return lines[0] if lines else ""
    value: str = click.prompt("password", hide_input=True, confirmation_prompt=confirm)
    return value


_password_file_option = click.option(
    "--password-file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Read the password from the first line of this file instead of asking.",
)


@user.command("add")
@_config_option
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True)
@_password_file_option
def user_add(config_path: Path, username: str, role: str, password_file: Path | None) -> None:
    """Add a user; asks for the password (at least 10 characters)."""
    cfg = _config(config_path)
    password = _read_password(password_file, confirm=True)
    with _opened_store(cfg) as store:
        Accounts(store).add_user(username, password, role, time.time(), actor=_actor())
    click.echo(f"added {role} {username}")


@user.command("list")
@_config_option
@click.option("--json", "as_json", is_flag=True, help="One JSON array on stdout.")
def user_list(config_path: Path, as_json: bool) -> None:
    """List users and their roles."""
    cfg = _config(config_path)
    with _opened_store(cfg) as store:
        rows = Accounts(store).users()
    if as_json:
        click.echo(json.dumps([u.to_json() for u in rows]))
        return
    if not rows:
        click.echo("no users; add one with: signalfire coordinator user add NAME --role admin")
        return
    click.echo(f"{'username':<24} {'role':<10} {'last login':<20}  status")
    for u in rows:
        last = iso_time(int(u.last_login_at)) if u.last_login_at else "never"
        click.echo(
            f"{u.username:<24} {u.role:<10} {last:<20}  {'active' if u.active else 'disabled'}"
        )


@user.command("set")
@_config_option
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), help="A new role.")
@click.option("--password", "new_password", is_flag=True, help="Set a new password (asks).")
@_password_file_option
@click.option("--disable/--enable", "disabled", default=None, help="Lock the user out or back in.")
def user_set(
    config_path: Path,
    username: str,
    role: str | None,
    new_password: bool,
    password_file: Path | None,
    disabled: bool | None,
) -> None:
    """Change a user's role or password, or disable them (ends their sessions and tokens)."""
    cfg = _config(config_path)
    if role is None and not new_password and password_file is None and disabled is None:
        raise CoordinatorCliError("nothing to change: give --role, --password or --disable")
    password = None
    if new_password or password_file is not None:
        password = _read_password(password_file, confirm=True)
    with _opened_store(cfg) as store:
        u = Accounts(store).update_user(
            username, time.time(), actor=_actor(), role=role, password=password, disabled=disabled
        )
    click.echo(f"{u.username}: {u.role}, {'active' if u.active else 'disabled'}")


@coordinator.command("token")
@_config_option
@click.argument("username")
@click.option("--label", required=True, help="What the token is for, e.g. qgis-laptop.")
@click.option("--days", type=click.FloatRange(0.001, 3650), default=90, show_default=True)
def token(config_path: Path, username: str, label: str, days: float) -> None:
    """Create an API token for USERNAME (Authorization: Bearer ...); printed once, on stdout."""
    cfg = _config(config_path)
    with _opened_store(cfg) as store:
        secret = Accounts(store).create_token(
            username, label, time.time(), days=days, actor=_actor()
        )
    click.echo(secret)
    click.echo(
        f"token {label!r} for {username}, valid {days:g} days; store it like a password", err=True
    )


@coordinator.command("expire")
@_config_option
def expire(config_path: Path) -> None:
    """Delete reports older than [retention].report_days now (serve also does it hourly)."""
    cfg = _config(config_path)
    if cfg.retention_days is None:
        raise CoordinatorCliError(
            f"{config_path} keeps reports for ever; set [retention].report_days to expire them"
        )
    with _opened_store(cfg) as store:
        gone = Feed(store, cfg.feed_settings()).expire(time.time(), actor=_actor())
    click.echo(f"deleted {gone} report(s) older than {cfg.retention_days:g} days")


@coordinator.group()
def sender() -> None:
    """Senders (signalfire identities, or stock radios as node-<hex>) whose reports to flag."""


_SENDER_RE_HELP = "A sender as the feed shows it: 16 hex digits (key id) or node-<8 hex>."


def _check_sender(value: str) -> str:
    import re

    if not re.fullmatch(r"[0-9a-f]{16}|node-[0-9a-f]{8}", value):
        raise CoordinatorCliError(f"{value!r} is not a sender; {_SENDER_RE_HELP.lower()}")
    return value


def _parse_since(value: str | None, now: float) -> float:
    if value is None:
        return now
    if value.replace(".", "", 1).isdigit():
        return float(value)
    import datetime as dt

    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CoordinatorCliError(
            f"--since {value!r}: give a Unix time or an ISO time such as 2026-11-28T09:00Z"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


@sender.command("revoke")
@_config_option
@click.argument("who")
@click.option(
    "--since",
    help="Flag reports created at or after this time (Unix or ISO; default: now). Use the "
    "time the device was lost or seized.",
)
@click.option("--reason", required=True, help="Why, for the audit log (e.g. 'phone seized').")
def sender_revoke(config_path: Path, who: str, since: str | None, reason: str) -> None:
    """Flag the reports of WHO created since a time: its device is in someone else's hands.

    Reports stay stored and shown, marked "revoked-sender"; new ones are flagged as
    they arrive. Revoking again moves the time.
    """
    cfg = _config(config_path)
    who = _check_sender(who)
    now = time.time()
    start = _parse_since(since, now)
    with _opened_store(cfg) as store, store.transaction() as tx:
        flagged = tx.revoke_sender(who, start, reason, _actor(), now)
    click.echo(f"revoked {who} from {iso_time(int(start))}; flagged {flagged} stored report(s)")


@sender.command("revoked")
@_config_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
def sender_revoked(config_path: Path, as_json: bool) -> None:
    """List revoked senders and the time from which their reports are flagged."""
    cfg = _config(config_path)
    with _opened_store(cfg) as store, store.transaction(write=False) as tx:
        rows = tx.revoked_senders()
    if as_json:
        click.echo(json.dumps(rows))
        return
    if not rows:
        click.echo("no senders revoked")
    for who, start in sorted(rows.items()):
        click.echo(f"{who:<20} since {iso_time(int(start))}")

"""`signalfire gateway run|status` and `signalfire bundle export|import`."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from ..errors import SignalfireError
from .config import GatewayConfig, load_config


class GatewayCliError(click.ClickException):
    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.message}", err=True)


@click.group()
def gateway() -> None:
    """The gateway daemon: radio in, durable store, uplinks out."""


@gateway.command("run")
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path))
def gateway_run(config_path: Path) -> None:
    """Run the gateway until SIGTERM (systemd) or Ctrl-C."""
    from .daemon import GatewayDaemon, install_signal_handlers
    from .store import StoreError

    stop = install_signal_handlers()  # a SIGTERM during start-up still stops cleanly
    try:
        config = load_config(config_path)
        daemon = GatewayDaemon(config)
    except (SignalfireError, StoreError) as exc:
        raise GatewayCliError(str(exc)) from None
    click.echo(f"gateway {config.name} starting; store {config.store_path}", err=True)
    daemon.run_forever(stop)


def _ago(ts: float | None, now: float) -> str:
    if ts is None:
        return "never"
    seconds = int(now - ts)
    if seconds < -1:
        # A Raspberry Pi has no clock battery: cut off from NTP it boots at the last
        # time it saved, and the store then holds times "from the future".
        return f"{_span(-seconds)} in the future (check the clock)"
    return f"{_span(max(seconds, 0))} ago"


def _span(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 3 * 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


def _last_error(state: dict[str, Any], now: float) -> str:
    error, at = state.get("last_error"), state.get("last_error_at")
    if not error:
        return "-"
    success = state.get("last_success")
    # The last failure stays on record; say when the uplink has worked since.
    later = isinstance(success, int | float) and isinstance(at, int | float) and success > at
    return f"{error} ({_ago(at, now)}{', then recovered' if later else ''})"


@gateway.command("status")
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def gateway_status(config_path: Path, as_json: bool) -> None:
    """What is queued, what got out, what failed: read from the gateway's store."""
    now = time.time()
    with _opened_store(config_path, "has the gateway run?") as (config, store):
        stats = store.stats(now)
        status = store.status()
    info = {"gateway": config.name, "at": now, "stats": stats, "status": status}
    if as_json:
        click.echo(json.dumps(info, default=str))
        return
    console = Console()
    radio = _loads(status.get("radio"))
    console.print(
        f"[bold]{config.name}[/] radio {config.radio}: "
        f"{radio.get('state', 'unknown')} ({radio.get('reason', 'no report yet')}), "
        f"since {_ago(radio.get('since'), now)}"
    )
    table = Table(title="uplinks")
    for col in ("uplink", "pending (life/elev/routine)", "done", "rejected", "oldest pending",
                "last success", "last error"):  # fmt: skip
        table.add_column(col)
    for name, up in stats.get("uplinks", {}).items():
        st = _loads(status.get(f"uplink:{name}"))
        pending = up.get("pending", {})
        table.add_row(
            name + (" (not configured)" if up.get("orphaned") else ""),
            f"{up.get('pending_total', 0)} ({pending.get('life-safety', 0)}/"
            f"{pending.get('elevated', 0)}/{pending.get('routine', 0)})",
            str(up.get("done", 0)),
            str(up.get("rejected", 0)),
            _ago(up.get("oldest_pending_received_at"), now),
            _ago(st.get("last_success"), now),
            _last_error(st, now),
        )
    console.print(table)
    packets = stats.get("packets", {})
    hourly = stats.get("reports_per_hour") or []
    recent = (
        f"reports heard in the last hour {hourly[-1]}, in the last 24 h {sum(hourly)}"
        if isinstance(hourly, list) and hourly
        else "no reports heard in the last 24 h"
    )
    console.print(f"stored packets: {packets.get('total', 0)} · {recent}")
    counters = stats.get("counters") or {}
    if counters:
        console.print("counters: " + ", ".join(f"{k} {v}" for k, v in sorted(counters.items())))


@gateway.command("purge")
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path))
@click.option(
    "--keep-hours",
    type=click.FloatRange(min=0),
    default=None,
    help="Keep what was delivered in the last this many hours (default: keep_delivered_hours "
    "of gateway.toml; 0: delete everything delivered).",
)
def gateway_purge(config_path: Path, keep_hours: float | None) -> None:
    """Delete packets every uplink has delivered; undelivered ones always stay.

    The running gateway does this every 10 minutes for what is older than
    keep_delivered_hours. Run it by hand with --keep-hours 0 when the gateway may be
    seized: what the coordinators already have is then gone from this machine, its
    bytes zeroed in the store's files. Safe while the gateway runs.
    """
    with _opened_store(config_path, "nothing to purge") as (config, store):
        names = [u.name for u in config.uplinks]
        if not names:
            raise GatewayCliError(
                "gateway.toml has no [[uplink]]: nothing can have been delivered, nothing goes"
            )
        keep_s = config.keep_delivered_s if keep_hours is None else keep_hours * 3600
        deleted = store.purge_delivered(time.time() - keep_s, names)
        left = store.stats(time.time())["packets"]["total"]
    click.echo(
        f"deleted {deleted} packets delivered on every uplink ({', '.join(names)}) more than "
        f"{keep_s / 3600:g} h ago; {left} stay (undelivered, or delivered since)"
    )


@contextmanager
def _opened_store(config_path: Path, if_missing: str) -> Iterator[tuple[GatewayConfig, Any]]:
    """gateway.toml and its store, open; any problem of either is one error line."""
    from .store import GatewayStore, StoreError

    try:
        config = load_config(config_path)
        if not config.store_path.exists():
            raise GatewayCliError(f"no store at {config.store_path} yet: {if_missing}")
        store = GatewayStore(config.store_path)
        try:
            yield config, store
        finally:
            store.close()
    except (SignalfireError, StoreError) as exc:
        raise GatewayCliError(str(exc)) from None


def _loads(text: object) -> dict[str, Any]:
    if isinstance(text, dict):
        return text
    try:
        value = json.loads(str(text)) if text else {}
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


# -- bundles ---------------------------------------------------------------------


@click.group()
def bundle() -> None:
    """Signed bundle files of reports, for a USB stick carried out of the blackout."""


@bundle.command("export")
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path))
@click.option("--to", "out_dir", required=True, type=click.Path(path_type=Path))
@click.option("--per-file", type=click.IntRange(1, 20_000), default=5_000, show_default=True)
def bundle_export(config_path: Path, out_dir: Path, per_file: int) -> None:
    """Write every packet no uplink has delivered yet into bundle files in OUT_DIR."""
    from ..profile import load_profile
    from ..sender import Identity
    from .store import GatewayStore, StoreError
    from .uplinks.bundle import write_bundle

    try:
        config = load_config(config_path)
        identity = Identity.load(config.identity)
        profile = load_profile(config.network)
        store = GatewayStore(config.store_path)
    except (SignalfireError, StoreError) as exc:
        raise GatewayCliError(str(exc)) from None
    if not out_dir.is_dir():
        raise GatewayCliError(f"{out_dir} is not a directory: mount the USB stick first")
    written: list[Path] = []
    try:
        packets = store.undelivered()
        now = time.time()
        with Progress(transient=True) as progress:
            task = progress.add_task("writing bundles", total=len(packets))
            for start in range(0, len(packets), per_file):
                chunk = packets[start : start + per_file]
                try:
                    path = write_bundle(
                        out_dir,
                        chunk,
                        gateway=identity.key,
                        network_id=profile.network_id,
                        now=now,
                        index=len(written),
                    )
                except SignalfireError as exc:
                    raise GatewayCliError(
                        f"{exc.message} ({len(written)} file(s) written before that are complete)"
                    ) from None
                written.append(path)
                progress.advance(task, len(chunk))
    finally:
        store.close()
    click.echo(f"{len(packets)} packet(s) in {len(written)} bundle file(s) in {out_dir}")
    for path in written:
        click.echo(f"  {path.name}")


@bundle.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--to", "url", help="Coordinator URL to deliver the bundles to (https://...).")
@click.option("--coordinator-config", "coord_config", type=click.Path(path_type=Path),
              help="Ingest directly into this coordinator's database instead.")  # fmt: skip
def bundle_import(files: tuple[Path, ...], url: str | None, coord_config: Path | None) -> None:
    """Ingest bundle files, idempotently: importing the same file twice changes nothing."""
    if (url is None) == (coord_config is None):
        raise GatewayCliError("give either --to URL or --coordinator-config FILE")
    totals = {"stored": 0, "duplicates": 0, "pending": 0, "rejected": 0, "deferred": 0}
    failed: list[str] = []
    deliver: _HttpImporter | _LocalImporter = (
        _HttpImporter(url) if url else _LocalImporter(Path(str(coord_config)))
    )
    try:
        with Progress(transient=True) as progress:
            task = progress.add_task("importing", total=len(files))
            for path in files:
                try:
                    answer = deliver(path.read_bytes())
                except GatewayCliError as exc:
                    failed.append(f"{path.name}: {exc.message}")
                else:
                    for key in totals:
                        totals[key] += len(answer.get(key, []))
                progress.advance(task)
    finally:
        deliver.close()
    click.echo(", ".join(f"{k} {v}" for k, v in totals.items()))
    for line in failed:
        click.echo(f"error: {line}", err=True)
    if failed:
        raise SystemExit(1)


class _HttpImporter:
    def __init__(self, url: str) -> None:
        import httpx

        self.url = url.rstrip("/") + "/api/v1/batches"
        self.client = httpx.Client(timeout=60)

    def __call__(self, data: bytes) -> dict[str, Any]:
        import httpx

        try:
            response = self.client.post(self.url, content=data)
        except httpx.HTTPError as exc:
            raise GatewayCliError(f"coordinator unreachable: {exc}") from None
        if response.status_code != 200:
            raise GatewayCliError(
                f"coordinator answered {response.status_code}: {response.text[:200]}"
            )
        result: dict[str, Any] = response.json()
        return result

    def close(self) -> None:
        self.client.close()


class _LocalImporter:
    def __init__(self, config_path: Path) -> None:
        from ..coordinator.cli import build_ingestor

        try:
            self.store, self.ingestor = build_ingestor(config_path)
        except click.ClickException as exc:
            raise GatewayCliError(exc.message) from None

    def __call__(self, data: bytes) -> dict[str, Any]:
        from ..batch import BatchError
        from ..coordinator.ingest import GatewayRefused

        try:
            result = self.ingestor.ingest_batch(data, "bundle", time.time())
        except (BatchError, GatewayRefused) as exc:
            raise GatewayCliError(str(exc)) from None
        return result.response()

    def close(self) -> None:
        self.store.close()

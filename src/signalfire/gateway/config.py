"""gateway.toml: read once at start; every setting checked; errors name the setting and the fix."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ..errors import SignalfireError
from ..modem.gsm import is_e164
from ..radio.api import RadioError
from ..radio.meshtastic_radio import parse_spec

UPLINK_TYPES = ("https", "mqtt", "bundle", "sbd", "sms")
# Every setting there is: a misspelt one is an error, not a default silently kept.
_TABLE_KEYS = {
    "gateway": {
        "name", "identity", "network", "network_key", "data_dir", "min_free_mb",
        "keep_delivered_hours",
    },
    "radio": {"spec", "reply"},
    "limits": {"per_node_per_minute", "per_key_per_minute"},
    "intake": {"help_interval_s", "receipt_interval_s"},
}  # fmt: skip
_UPLINK_KEYS = {
    "https": {"url", "timeout_s", "ca_file"},
    "mqtt": {"host", "port", "tls", "ca_file", "username", "password_file"},
    "bundle": {"dir"},
    "sbd": {"port", "baudrate", "min_signal", "credits_per_day", "session_timeout_s"},
    "sms": {
        "port", "to", "baudrate", "smsc", "max_parts", "parts_per_day", "min_signal",
        "status_report_timeout_s", "send_timeout_s",
    },
}  # fmt: skip


class GatewayConfigError(SignalfireError):
    pass


@dataclass(frozen=True)
class UplinkConfig:
    type: str
    name: str
    settings: dict[str, Any]


@dataclass(frozen=True)
class GatewayConfig:
    path: Path
    name: str
    identity: Path
    network: Path
    network_key: Path | None
    data_dir: Path
    min_free_mb: int
    keep_delivered_s: float  # delivered packets are purged from the store after this
    radio: str
    reply: bool
    per_node_per_minute: int
    per_key_per_minute: int
    help_interval_s: float
    receipt_interval_s: float
    uplinks: tuple[UplinkConfig, ...] = field(default=())

    @property
    def store_path(self) -> Path:
        return self.data_dir / "gateway.sqlite"


class _Reader:
    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.data = data

    def fail(self, where: str, problem: str, fix: str) -> GatewayConfigError:
        return GatewayConfigError(f"{self.path}: {where} {problem}; {fix}")

    def known(self, table: dict[str, Any], where: str, keys: set[str]) -> None:
        for key in sorted(set(table) - keys):
            close = [k for k in sorted(keys) if k.split("_")[0] == key.split("_")[0]]
            hint = f"did you mean {close[0]}?" if close else f"known: {', '.join(sorted(keys))}"
            raise self.fail(f"{where} {key}", "is not a setting", hint)

    def table(self, name: str, *, required: bool = True) -> dict[str, Any]:
        value = self.data.get(name)
        if value is None and not required:
            return {}
        if not isinstance(value, dict):
            raise self.fail(
                f"[{name}]", "is missing", f"add a [{name}] table (see gateway.example.toml)"
            )
        return value

    def get(
        self, table: dict[str, Any], section: str, key: str, kind: type, default: Any = ...
    ) -> Any:
        where = f"[{section}] {key}"
        if key not in table:
            if default is ...:
                raise self.fail(where, "is missing", f"set {key} in [{section}]")
            return default
        value = table[key]
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            raise self.fail(where, f"is {value!r}", f"it must be a {kind.__name__}")
        return value

    def file(
        self, table: dict[str, Any], section: str, key: str, *, required: bool = True
    ) -> Path | None:
        raw = self.get(table, section, key, str, "" if not required else ...)
        if not raw:
            return None
        path = (self.path.parent / raw).resolve() if not Path(raw).is_absolute() else Path(raw)
        if not path.exists():
            raise self.fail(
                f"[{section}] {key}",
                f"names {path}, which does not exist",
                _FILE_HINTS.get(key, "check the path"),
            )
        return path

    def required_file(self, table: dict[str, Any], section: str, key: str) -> Path:
        found = self.file(table, section, key)
        if found is None:
            raise self.fail(f"[{section}] {key}", "is empty", _FILE_HINTS.get(key, "set it"))
        return found


_FILE_HINTS = {
    "identity": "create the gateway's key with: signalfire keys new --out PATH",
    "network": "copy network.json from your coordinator",
    "network_key": "leave it empty unless this gateway should open reports (docs/security.md)",
    "ca_file": "point it at the coordinator's CA certificate, or leave it empty",
    "password_file": "write the MQTT password into that file (mode 0600)",
}


def load_config(path: Path) -> GatewayConfig:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GatewayConfigError(
            f"{path} not found; copy gateway.example.toml and edit it"
        ) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise GatewayConfigError(f"{path} is not valid TOML: {exc}") from None
    r = _Reader(path, data)
    for key in sorted(set(data) - set(_TABLE_KEYS) - {"uplink"}):
        raise r.fail(f"[{key}]", "is not a section", "the sections are [gateway], [radio], "
                     "[limits], [intake] and [[uplink]]")  # fmt: skip
    for section, keys in _TABLE_KEYS.items():
        if isinstance(data.get(section), dict):
            r.known(data[section], f"[{section}]", keys)
    gw = r.table("gateway")
    name = r.get(gw, "gateway", "name", str)
    if not name.strip():
        raise r.fail("[gateway] name", "is empty", "give the gateway a short name")
    identity = r.required_file(gw, "gateway", "identity")
    network = r.required_file(gw, "gateway", "network")
    network_key = r.file(gw, "gateway", "network_key", required=False)
    data_dir = Path(r.get(gw, "gateway", "data_dir", str))
    if not data_dir.is_absolute():
        data_dir = (path.parent / data_dir).resolve()
    min_free_mb = r.get(gw, "gateway", "min_free_mb", int, 50)
    if min_free_mb < 0:
        raise r.fail("[gateway] min_free_mb", f"is {min_free_mb}", "it must be 0 or more")
    keep_h = r.get(gw, "gateway", "keep_delivered_hours", float, 72.0)
    if not 0 <= keep_h <= 24 * 366:
        raise r.fail(
            "[gateway] keep_delivered_hours", f"is {keep_h:g}", "it must be 0 to 8784 (a year)"
        )
    radio = r.table("radio")
    spec = r.get(radio, "radio", "spec", str)
    try:
        parse_spec(spec)
    except RadioError as exc:
        raise r.fail("[radio] spec", f"is {spec!r}", str(exc)) from None
    reply = r.get(radio, "radio", "reply", bool, True)
    limits = r.table("limits", required=False)
    per_node = r.get(limits, "limits", "per_node_per_minute", int, 30)
    per_key = r.get(limits, "limits", "per_key_per_minute", int, 12)
    for key, value in (("per_node_per_minute", per_node), ("per_key_per_minute", per_key)):
        if value < 1:
            raise r.fail(f"[limits] {key}", f"is {value}", "it must be at least 1")
    intake = r.table("intake", required=False)
    help_s = r.get(intake, "intake", "help_interval_s", float, 600.0)
    receipt_s = r.get(intake, "intake", "receipt_interval_s", float, 60.0)
    uplinks = _uplinks(r, data.get("uplink", []))
    return GatewayConfig(
        path=path,
        name=name,
        identity=identity,
        network=network,
        network_key=network_key,
        data_dir=data_dir,
        min_free_mb=min_free_mb,
        keep_delivered_s=keep_h * 3600,
        radio=spec,
        reply=reply,
        per_node_per_minute=per_node,
        per_key_per_minute=per_key,
        help_interval_s=help_s,
        receipt_interval_s=receipt_s,
        uplinks=uplinks,
    )


def _resolved(settings: dict[str, Any], key: str, path: Path | None) -> None:
    """Keep the checked, absolute path: the daemon must open the file the check found."""
    if path is not None:
        settings[key] = str(path)


def _uplinks(r: _Reader, raw: Any) -> tuple[UplinkConfig, ...]:
    if not isinstance(raw, list):
        raise r.fail("[[uplink]]", "must be an array of tables", "write each uplink as [[uplink]]")
    out: list[UplinkConfig] = []
    names: set[str] = set()
    for n, table in enumerate(raw, start=1):
        section = f"uplink #{n}"
        if not isinstance(table, dict):
            raise r.fail(f"[[uplink]] #{n}", "is not a table", "write each uplink as [[uplink]]")
        kind = r.get(table, section, "type", str)
        if kind not in UPLINK_TYPES:
            raise r.fail(
                f"[[uplink]] #{n} type", f"is {kind!r}", f"use one of {', '.join(UPLINK_TYPES)}"
            )
        name = r.get(table, section, "name", str, kind)
        if name in names:
            raise r.fail(
                f"[[uplink]] #{n} name", f"{name!r} is used twice", "give each uplink its own name"
            )
        names.add(name)
        r.known(table, f"[[uplink]] #{n}", {"type", "name", "batch_size"} | _UPLINK_KEYS[kind])
        settings = {k: v for k, v in table.items() if k not in ("type", "name")}
        if kind == "https":
            url = r.get(table, section, "url", str)
            parsed = urlparse(url)
            if parsed.scheme not in ("https", "http") or not parsed.netloc:
                raise r.fail(f"[[uplink]] #{n} url", f"is {url!r}", "use https://HOST[:PORT]")
            r.get(table, section, "timeout_s", float, 15.0)
            r.get(table, section, "batch_size", int, 200)
            _resolved(settings, "ca_file", r.file(table, section, "ca_file", required=False))
        elif kind == "mqtt":
            r.get(table, section, "host", str)
            port = r.get(table, section, "port", int, 1883)
            if not 0 < port < 65536:
                raise r.fail(f"[[uplink]] #{n} port", f"is {port}", "use 1-65535")
            r.get(table, section, "tls", bool, False)
            _resolved(settings, "ca_file", r.file(table, section, "ca_file", required=False))
            password_file = r.file(table, section, "password_file", required=False)
            _resolved(settings, "password_file", password_file)
        elif kind == "bundle":
            # Relative to this file, as every other path here: the daemon's working
            # directory (systemd: /var/lib/signalfire) is not where the config lives.
            # It need not exist yet: a USB stick is mounted when one is carried in.
            bundle_dir = Path(r.get(table, section, "dir", str)).expanduser()
            if not bundle_dir.is_absolute():
                bundle_dir = r.path.parent.resolve() / bundle_dir
            settings["dir"] = str(bundle_dir)
        elif kind == "sbd":
            port = r.get(table, section, "port", str)
            if not port.strip():
                raise r.fail(
                    f"[[uplink]] #{n} port", "is empty", "name the modem's serial port, e.g. "
                    "/dev/serial/by-id/usb-FTDI_...-if00-port0",
                )  # fmt: skip
            r.get(table, section, "baudrate", int, 19200)
            bars = r.get(table, section, "min_signal", int, 2)
            if not 0 <= bars <= 5:
                raise r.fail(f"[[uplink]] #{n} min_signal", f"is {bars}", "use 0-5 (signal bars)")
            credits = r.get(table, section, "credits_per_day", int, 0)
            if credits < 0:
                raise r.fail(
                    f"[[uplink]] #{n} credits_per_day", f"is {credits}",
                    "use 0 (no budget) or the credits the link may spend in 24 hours",
                )  # fmt: skip
            r.get(table, section, "session_timeout_s", float, 90.0)
        elif kind == "sms":
            _sms_settings(r, table, section, n)
        out.append(UplinkConfig(kind, name, settings))
    return tuple(out)


def _sms_settings(r: _Reader, table: dict[str, Any], section: str, n: int) -> None:
    where = f"[[uplink]] #{n}"
    port = r.get(table, section, "port", str)
    if not port.strip():
        raise r.fail(
            f"{where} port", "is empty",
            "name the GSM modem's serial port, e.g. /dev/serial/by-id/usb-...-if00-port0",
        )  # fmt: skip
    baudrate = r.get(table, section, "baudrate", int, 115200)
    if baudrate <= 0:
        raise r.fail(f"{where} baudrate", f"is {baudrate}", "use the modem's rate, e.g. 115200")
    to = r.get(table, section, "to", str)
    if not is_e164(to):
        raise r.fail(
            f"{where} to", f"is {to!r}",
            "write the coordinator's SMS number in international form, e.g. \"+37491000009\"",
        )  # fmt: skip
    smsc = r.get(table, section, "smsc", str, "")
    if smsc and not is_e164(smsc):
        raise r.fail(
            f"{where} smsc", f"is {smsc!r}",
            "leave it out to use the SIM's SMSC, or write it in international form (+...)",
        )  # fmt: skip
    parts = r.get(table, section, "max_parts", int, 8)
    if not 2 <= parts <= 255:
        # One SMS carries 140 octets: not a key announcement (142 bytes) in its container.
        raise r.fail(
            f"{where} max_parts", f"is {parts}",
            "use 2-255 (8 is a good choice); one SMS cannot carry a key announcement",
        )  # fmt: skip
    per_day = r.get(table, section, "parts_per_day", int, 0)
    if per_day < 0:
        raise r.fail(
            f"{where} parts_per_day", f"is {per_day}",
            "use 0 (no budget) or the SMS parts the link may send in 24 hours",
        )  # fmt: skip
    if per_day == 1:
        # A new sender's key announcement alone takes two parts: it could never go.
        raise r.fail(
            f"{where} parts_per_day", "is 1",
            "use 0 (no budget) or at least 2: a key announcement needs two SMS parts",
        )  # fmt: skip
    signal = r.get(table, section, "min_signal", int, 5)
    if not 0 <= signal <= 31:
        raise r.fail(f"{where} min_signal", f"is {signal}", "use 0-31 (AT+CSQ units)")
    for key, default in (("status_report_timeout_s", 120.0), ("send_timeout_s", 60.0)):
        seconds = r.get(table, section, key, float, default)
        if seconds <= 0:
            raise r.fail(f"{where} {key}", f"is {seconds}", "use a number of seconds above 0")

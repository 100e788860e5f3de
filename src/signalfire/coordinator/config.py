"""coordinator.toml: loading and validation, all at start.

Every problem is reported at once, each naming its setting and the fix, so
an operator fixes the file in one pass instead of one error per restart.
Relative paths are relative to the file's own directory, not to wherever the
service happens to be started from.
"""

from __future__ import annotations

import ipaddress
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from sqlalchemy.engine import URL

from signalfire import wire
from signalfire.errors import SignalfireError
from signalfire.keyfiles import load_network_key
from signalfire.profile import NetworkProfile, load_profile
from signalfire.sender import load_sender_keys

from .accounts import DEFAULT_SESSION_S
from .app import DEFAULT_BURST, DEFAULT_MAX_BODY_BYTES, DEFAULT_RATE_PER_S
from .feed import DEFAULT_VIEWER_PRECISION_M, FeedSettings
from .ingest import (
    DEFAULT_FUTURE_SKEW_S,
    DEFAULT_MAX_AGE_S,
    DEFAULT_MAX_PENDING,
    Policy,
)
from .store import StoreError, normalize_url, safe_url

DEFAULT_PORT = 8443
_HEX_KEY_RE = re.compile(r"^[0-9a-fA-F]{64}$")
_NAME_RE = re.compile(r"^[^\x00-\x1f\x7f]{1,64}$")
_SECTIONS = {
    "database": {"url"},
    "network": {"profile", "key"},
    "listen": {"host", "port", "tls_cert", "tls_key", "max_body_bytes"},
    "rate_limit": {"batches_per_second", "burst"},
    "ingest": {"future_skew_seconds", "max_report_age_days", "max_pending"},
    "gateways": {"name", "key"},
    "feed": {"tile_url", "tile_attribution", "viewer_precision_m", "session_hours"},
    "retention": {"report_days", "every_minutes"},
    "mqtt": {
        "host",
        "port",
        "tls",
        "ca_file",
        "cert_file",
        "key_file",
        "username",
        "password_file",
        "group",
        "topic_prefix",
        "client_id",
        "session_expiry_hours",
        "keepalive",
    },
    "sbd": {"token_file", "modems", "jwt_public_key"},
    "sms": {"token_file", "phones", "part_ttl_hours"},
}
_IMEI_RE = re.compile(r"^[0-9]{15}$")
_PHONE_RE = re.compile(r"^\+?[0-9]{3,20}$")
# A webhook secret travels in the URL the operator gives RockBLOCK or the SMS forwarder:
# URL-safe, and long enough that guessing is hopeless (`openssl rand -hex 24`).
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{24,128}$")
# An MQTT 5 share name: one topic level without wildcards (spec 4.8.2); kept to a
# safe alphabet so it reads the same in broker logs and ACLs.
_SHARE_GROUP_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
_TOPIC_PREFIX_RE = re.compile(r"^[^#+\x00$][^#+\x00]{0,99}$")
_TILE_URL_RE = re.compile(r"^https?://[^\s\"'<>]+$")
DEFAULT_MQTT_GROUP = "signalfire-coordinators"
DEFAULT_MQTT_TOPIC_PREFIX = "signalfire/v1"  # the gateways' default (gateway/uplinks/mqtt.py)
DEFAULT_MQTT_SESSION_EXPIRY_H = 7 * 24.0


class ConfigError(SignalfireError):
    """The configuration file is missing, unreadable or has invalid settings."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{path}: {len(problems)} problem(s):\n{lines}")
        self.problems = problems


@dataclass(frozen=True)
class GatewayKey:
    name: str
    public_key: bytes
    announcements: tuple[bytes, ...] = ()  # from a .pub card: its key announcements

    @property
    def key_id(self) -> str:
        return wire.key_id(self.public_key).hex()


@dataclass(frozen=True)
class MqttSettings:
    """The [mqtt] table: where `coordinator ingest-mqtt` subscribes."""

    host: str = "127.0.0.1"
    port: int = 1883
    tls: bool = False
    ca_file: Path | None = None  # None with tls: the system's trusted CAs
    cert_file: Path | None = None  # a client certificate, for brokers that require one
    key_file: Path | None = None
    username: str | None = None
    password_file: Path | None = None
    group: str = DEFAULT_MQTT_GROUP  # the shared subscription's share name
    topic_prefix: str = DEFAULT_MQTT_TOPIC_PREFIX
    client_id: str = ""  # prefix of the workers' client ids; empty: signalfire-ingest-<host>
    session_expiry_s: int = int(DEFAULT_MQTT_SESSION_EXPIRY_H * 3600)
    keepalive: int = 60

    def password(self) -> str | None:
        """The password (first line of password_file), read when needed, never kept in config."""
        if self.password_file is None:
            return None
        try:
            text = self.password_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SignalfireError(
                f"[mqtt].password_file: cannot read {self.password_file}: {exc}"
            ) from None
        lines = text.splitlines()
        return lines[0] if lines else ""


@dataclass(frozen=True)
class SbdSettings:
    """The [sbd] table: the RockBLOCK delivery webhook (docs/uplinks.md, "Iridium SBD")."""

    token: str = field(repr=False)  # the secret in the delivery URL; never logged
    modems: tuple[tuple[str, str], ...] = ()  # (IMEI, gateway name or key id)
    jwt_key: bytes | None = field(default=None, repr=False)  # Ground Control's PEM, if set


@dataclass(frozen=True)
class SmsSettings:
    """The [sms] table: the SMS forwarder's webhook (docs/uplinks.md, "SMS")."""

    token: str = field(repr=False)
    phones: tuple[tuple[str, str], ...] = ()  # (gateway's number, gateway name or key id)
    part_ttl_s: float = 24 * 3600.0  # parts of an incomplete message are kept this long


@dataclass(frozen=True)
class CoordinatorConfig:
    path: Path
    database_url: URL
    profile: NetworkProfile
    network_key_path: Path
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    tls_cert: Path | None = None
    tls_key: Path | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    rate_per_s: float = DEFAULT_RATE_PER_S
    burst: int = DEFAULT_BURST
    policy: Policy = field(default_factory=Policy)
    gateways: tuple[GatewayKey, ...] = ()
    mqtt: MqttSettings | None = None  # None: no [mqtt] table, no MQTT ingest
    sbd: SbdSettings | None = None  # None: no [sbd] table, no RockBLOCK webhook
    sms: SmsSettings | None = None  # None: no [sms] table, no SMS webhook
    tile_url: str | None = None
    tile_attribution: str = ""
    viewer_precision_m: float = DEFAULT_VIEWER_PRECISION_M
    session_s: float = DEFAULT_SESSION_S
    retention_days: float | None = None
    retention_every_s: float = 3600.0

    def feed_settings(self) -> FeedSettings:
        return FeedSettings(
            network=self.profile.name,
            viewer_precision_m=self.viewer_precision_m,
            tile_url=self.tile_url,
            tile_attribution=self.tile_attribution,
            retention_days=self.retention_days,
        )

    @property
    def safe_database_url(self) -> str:
        return safe_url(self.database_url)

    def load_network_key(self) -> X25519PrivateKey:
        """The network private key, checked against the profile's public key."""
        try:
            key = load_network_key(self.network_key_path)
        except SignalfireError as exc:
            raise ConfigError(self.path, [f"[network].key: {exc.message}"]) from None
        if wire.x25519_public_bytes(key) != self.profile.public_key:
            raise ConfigError(
                self.path,
                [
                    f"[network].key: {self.network_key_path} is not the private key of the "
                    f"network in [network].profile ({self.profile.name}); point both at the "
                    "files one `signalfire network init` wrote"
                ],
            )
        return key

    def keyring(self) -> wire.Keyring:
        return wire.Keyring(self.profile.public_key, self.load_network_key())


def parse_gateway_key(value: str, base: Path) -> tuple[bytes, tuple[bytes, ...]]:
    """A gateway's public key from 64 hex digits or a key file (.pub card or hex lines).

    Returns the key and any announcements the file carries. Raises SignalfireError.
    """
    text = value.strip()
    if _HEX_KEY_RE.match(text):
        return bytes.fromhex(text), ()
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = base / path
    if not path.exists():
        raise SignalfireError(
            f"{value!r} is neither 64 hex digits nor an existing file; give the gateway's "
            "public key or its .pub card (from `signalfire keys new --out gateway.key`)"
        )
    identities, announcements = load_sender_keys(path)
    if len(identities) != 1:
        raise SignalfireError(
            f"{path} holds {len(identities)} public keys; give a file with exactly one "
            "(the gateway's .pub card)"
        )
    return identities[0], tuple(announcements)


def check_gateway_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise SignalfireError("a gateway name must be 1-64 printable characters")
    return name


class _Reader:
    """Reads settings, collecting every problem instead of stopping at the first."""

    def __init__(self, path: Path, doc: dict[str, Any]) -> None:
        self.path = path
        self.base = path.parent
        self.doc = doc
        self.problems: list[str] = []

    def section(self, name: str) -> dict[str, Any]:
        value = self.doc.get(name, {})
        if not isinstance(value, dict):
            self.problems.append(f"[{name}] must be a table; write it as a [{name}] section")
            return {}
        self.unknown(value, name, _SECTIONS[name])
        return value

    def unknown(self, table: dict[str, Any], where: str, known: set[str]) -> None:
        for key in sorted(set(table) - known):
            self.problems.append(
                f"[{where}].{key} is not a setting; known here: {', '.join(sorted(known))}"
            )

    def string(self, table: dict[str, Any], where: str, key: str, default: str | None) -> str:
        value = table.get(key, default)
        if value is None:
            self.problems.append(f"[{where}].{key} is required; see coordinator.example.toml")
            return ""
        if not isinstance(value, str):
            self.problems.append(f"[{where}].{key} must be a string in quotes")
            return ""
        return value

    def boolean(self, table: dict[str, Any], where: str, key: str, default: bool) -> bool:
        value = table.get(key, default)
        if not isinstance(value, bool):
            self.problems.append(f"[{where}].{key} must be true or false, got {value!r}")
            return default
        return value

    def number(
        self,
        table: dict[str, Any],
        where: str,
        key: str,
        default: float,
        *,
        low: float,
        high: float = math.inf,
        integer: bool = False,
    ) -> float:
        value = table.get(key, default)
        ok_type = isinstance(value, int) if integer else isinstance(value, int | float)
        if isinstance(value, bool) or not ok_type:
            kind = "a whole number" if integer else "a number"
            self.problems.append(f"[{where}].{key} must be {kind}, got {value!r}")
            return default
        if not (low <= value <= high) or (isinstance(value, float) and not math.isfinite(value)):
            upper = "" if high == math.inf else f" and at most {high:g}"
            self.problems.append(f"[{where}].{key} must be at least {low:g}{upper}, got {value}")
            return default
        return float(value)

    def path_setting(
        self, table: dict[str, Any], where: str, key: str, *, required: bool, hint: str
    ) -> Path | None:
        value = table.get(key)
        if value is None or value == "":
            if required:
                self.problems.append(f"[{where}].{key} is required; {hint}")
            return None
        if not isinstance(value, str):
            self.problems.append(f"[{where}].{key} must be a file path in quotes")
            return None
        path = Path(value).expanduser()
        path = path if path.is_absolute() else self.base / path
        if not path.exists():
            self.problems.append(f"[{where}].{key}: {path} does not exist; {hint}")
            return None
        return path


def load_config(path: Path) -> CoordinatorConfig:
    """Read and validate ``path``; raises ConfigError listing every problem."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            path, ["file not found; copy coordinator.example.toml and edit it"]
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, [f"cannot read the file: {exc}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, [f"not valid TOML: {exc}"]) from None
    r = _Reader(path.resolve(), doc)
    for key in sorted(set(doc) - set(_SECTIONS)):
        r.problems.append(f"[{key}] is not a section; known: {', '.join(sorted(_SECTIONS))}")

    db = r.section("database")
    url = _database_url(r, r.string(db, "database", "url", "sqlite:///coordinator.db"))

    net = r.section("network")
    profile = None
    profile_path = r.path_setting(
        net,
        "network",
        "profile",
        required=True,
        hint="point it at network.json from `signalfire network init`",
    )
    if profile_path is not None:
        try:
            profile = load_profile(profile_path)
        except SignalfireError as exc:
            r.problems.append(f"[network].profile: {exc.message}")
    key_path = r.path_setting(
        net,
        "network",
        "key",
        required=True,
        hint="point it at network.key from `signalfire network init` (keep it mode 0600)",
    )

    listen = r.section("listen")
    host = r.string(listen, "listen", "host", "127.0.0.1")
    if not host:
        r.problems.append('[listen].host must be an address such as "127.0.0.1" or "0.0.0.0"')
    port = int(r.number(listen, "listen", "port", DEFAULT_PORT, low=1, high=65535, integer=True))
    hint_tls = "give the PEM file, or remove the setting to serve plain HTTP behind a TLS proxy"
    tls_cert = r.path_setting(listen, "listen", "tls_cert", required=False, hint=hint_tls)
    tls_key = r.path_setting(listen, "listen", "tls_key", required=False, hint=hint_tls)
    if bool(listen.get("tls_cert")) != bool(listen.get("tls_key")):
        r.problems.append("[listen].tls_cert and [listen].tls_key go together: set both or neither")
    max_body = int(
        r.number(
            listen,
            "listen",
            "max_body_bytes",
            DEFAULT_MAX_BODY_BYTES,
            low=1024,
            high=64 * 1024 * 1024,
            integer=True,
        )
    )

    rl = r.section("rate_limit")
    rate = r.number(rl, "rate_limit", "batches_per_second", DEFAULT_RATE_PER_S, low=0.001)
    burst = int(r.number(rl, "rate_limit", "burst", DEFAULT_BURST, low=1, integer=True))

    ing = r.section("ingest")
    policy = Policy(
        future_skew_s=r.number(ing, "ingest", "future_skew_seconds", DEFAULT_FUTURE_SKEW_S, low=0),
        max_age_s=86_400.0
        * r.number(ing, "ingest", "max_report_age_days", DEFAULT_MAX_AGE_S / 86_400.0, low=0.01),
        max_pending=int(
            r.number(ing, "ingest", "max_pending", DEFAULT_MAX_PENDING, low=0, integer=True)
        ),
    )

    gateways = _gateways(r)
    mqtt = _mqtt(r) if "mqtt" in doc else None
    sbd = _sbd(r) if "sbd" in doc else None
    sms = _sms(r) if "sms" in doc else None

    fd = r.section("feed")
    tile_url = r.string(fd, "feed", "tile_url", "").strip() or None
    if tile_url is not None and not (
        _TILE_URL_RE.match(tile_url) and all(p in tile_url for p in ("{z}", "{x}", "{y}"))
    ):
        r.problems.append(
            f"[feed].tile_url {tile_url!r} must be an http(s) URL with {{z}}, {{x}} and {{y}}, "
            'e.g. "http://10.0.0.5:8080/tile/{z}/{x}/{y}.png"; leave it empty for the '
            "coordinate grid"
        )
    tile_attribution = r.string(fd, "feed", "tile_attribution", "")
    precision = r.number(
        fd, "feed", "viewer_precision_m", DEFAULT_VIEWER_PRECISION_M, low=100, high=100_000
    )
    session_h = r.number(
        fd, "feed", "session_hours", DEFAULT_SESSION_S / 3600, low=0.1, high=24 * 30
    )

    ret = r.section("retention")
    report_days = r.number(ret, "retention", "report_days", 0, low=0)
    every_min = r.number(ret, "retention", "every_minutes", 60, low=1, high=7 * 24 * 60)

    if r.problems or profile is None or key_path is None or url is None:
        raise ConfigError(path, r.problems or ["incomplete configuration"])
    return CoordinatorConfig(
        path=r.path,
        database_url=url,
        profile=profile,
        network_key_path=key_path,
        host=host,
        port=port,
        tls_cert=tls_cert,
        tls_key=tls_key,
        max_body_bytes=max_body,
        rate_per_s=rate,
        burst=burst,
        policy=policy,
        gateways=gateways,
        mqtt=mqtt,
        sbd=sbd,
        sms=sms,
        tile_url=tile_url,
        tile_attribution=tile_attribution,
        viewer_precision_m=precision,
        session_s=session_h * 3600,
        retention_days=report_days or None,
        retention_every_s=every_min * 60,
    )


def _mqtt(r: _Reader) -> MqttSettings:
    t = r.section("mqtt")
    d = MqttSettings()
    host = r.string(t, "mqtt", "host", d.host)
    if not host.strip():
        r.problems.append('[mqtt].host must be the broker\'s name or address, e.g. "127.0.0.1"')
    tls = r.boolean(t, "mqtt", "tls", d.tls)
    port = int(
        r.number(t, "mqtt", "port", 8883 if tls else d.port, low=1, high=65535, integer=True)
    )
    hint_tls = "give the PEM file, or remove the setting"
    ca_file = r.path_setting(t, "mqtt", "ca_file", required=False, hint=hint_tls)
    cert_file = r.path_setting(t, "mqtt", "cert_file", required=False, hint=hint_tls)
    key_file = r.path_setting(t, "mqtt", "key_file", required=False, hint=hint_tls)
    if bool(t.get("cert_file")) != bool(t.get("key_file")):
        r.problems.append("[mqtt].cert_file and [mqtt].key_file go together: set both or neither")
    if not tls and any(t.get(k) for k in ("ca_file", "cert_file", "key_file")):
        r.problems.append(
            "[mqtt].ca_file, cert_file and key_file need tls = true; set it (and the TLS port)"
        )
    username = r.string(t, "mqtt", "username", "") or None
    password_file = r.path_setting(
        t,
        "mqtt",
        "password_file",
        required=False,
        hint="write the ingest user's MQTT password into that file (one line, mode 0600)",
    )
    if password_file is not None and username is None:
        r.problems.append("[mqtt].password_file needs [mqtt].username")
    group = r.string(t, "mqtt", "group", d.group)
    if isinstance(t.get("group", group), str) and not _SHARE_GROUP_RE.match(group):
        r.problems.append(
            f"[mqtt].group {group!r} must be 1-64 of A-Z, a-z, 0-9, '_' and '-' "
            "(it becomes $share/<group>/... in the subscription)"
        )
    prefix = r.string(t, "mqtt", "topic_prefix", d.topic_prefix).rstrip("/")
    if not _TOPIC_PREFIX_RE.match(prefix):
        r.problems.append(
            f"[mqtt].topic_prefix {prefix!r} must be a topic without wildcards (+, #) that does "
            f"not start with $; the gateways' default is {DEFAULT_MQTT_TOPIC_PREFIX!r}"
        )
    client_id = r.string(t, "mqtt", "client_id", "")
    if client_id and not _CLIENT_ID_RE.match(client_id):
        r.problems.append(
            f"[mqtt].client_id {client_id!r} must be 1-100 of A-Z, a-z, 0-9, '.', '_' and '-' "
            "(each worker appends -<number>)"
        )
    expiry_h = r.number(
        t,
        "mqtt",
        "session_expiry_hours",
        DEFAULT_MQTT_SESSION_EXPIRY_H,
        low=1 / 60,
        high=0xFFFFFFFE / 3600,  # the largest finite MQTT 5 session expiry interval
    )
    keepalive = int(r.number(t, "mqtt", "keepalive", d.keepalive, low=5, high=65535, integer=True))
    return MqttSettings(
        host=host,
        port=port,
        tls=tls,
        ca_file=ca_file,
        cert_file=cert_file,
        key_file=key_file,
        username=username,
        password_file=password_file,
        group=group,
        topic_prefix=prefix,
        client_id=client_id,
        session_expiry_s=int(expiry_h * 3600),
        keepalive=keepalive,
    )


def _token(r: _Reader, table: dict[str, Any], where: str) -> str:
    path = r.path_setting(
        table,
        where,
        "token_file",
        required=True,
        hint="write a long random secret into that file (`openssl rand -hex 24 > FILE`, "
        "mode 0600) and put the same secret in the delivery URL",
    )
    if path is None:
        return ""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        r.problems.append(f"[{where}].token_file: cannot read {path}: {exc}")
        return ""
    token = lines[0].strip() if lines else ""
    if not _TOKEN_RE.match(token):
        # Never echo the secret itself.
        r.problems.append(
            f"[{where}].token_file: the first line of {path} must be 24-128 of A-Z, a-z, "
            "0-9, '_' and '-' (e.g. `openssl rand -hex 24`)"
        )
        return ""
    return token


def _mapping(
    r: _Reader,
    table: dict[str, Any],
    where: str,
    key: str,
    field_name: str,
    pattern: re.Pattern[str],
) -> tuple[tuple[str, str], ...]:
    entries = table.get(key, [])
    if not isinstance(entries, list):
        r.problems.append(f"[{where}].{key} must be written as [[{where}.{key}]] entries")
        return ()
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for n, entry in enumerate(entries, 1):
        here = f"{where}.{key} #{n}"
        if not isinstance(entry, dict):
            r.problems.append(f"[[{here}]] must be a table with {field_name} and gateway")
            continue
        r.unknown(entry, here, {field_name, "gateway"})
        value = r.string(entry, here, field_name, None).strip()
        gateway = r.string(entry, here, "gateway", None).strip()
        if value and not pattern.match(value):
            r.problems.append(f"[{here}].{field_name} {value!r} is not valid")
            continue
        if value in seen:
            r.problems.append(f"[{here}].{field_name} {value!r} is listed twice")
            continue
        if value and gateway:
            seen.add(value)
            out.append((value, gateway))
    return tuple(out)


def _sbd(r: _Reader) -> SbdSettings:
    t = r.section("sbd")
    token = _token(r, t, "sbd")
    modems = _mapping(r, t, "sbd", "modems", "imei", _IMEI_RE)
    if not modems:
        r.problems.append(
            "[sbd] needs at least one [[sbd.modems]] entry (imei = the modem's 15-digit IMEI, "
            "gateway = the name of a gateway in [[gateways]])"
        )
    return SbdSettings(token=token, modems=modems, jwt_key=_jwt_key(r, t))


def _jwt_key(r: _Reader, table: dict[str, Any]) -> bytes | None:
    path = r.path_setting(
        table,
        "sbd",
        "jwt_public_key",
        required=False,
        hint="save Ground Control's RockBLOCK webhook public key (PEM) into that file",
    )
    if path is None:
        return None
    from .webhooks import load_rockblock_key

    try:
        pem = path.read_bytes()
        load_rockblock_key(pem)
    except OSError as exc:
        r.problems.append(f"[sbd].jwt_public_key: cannot read {path}: {exc.strerror}")
        return None
    except (ValueError, TypeError) as exc:
        r.problems.append(
            f"[sbd].jwt_public_key: {path} is not usable ({exc}); it must hold the PEM "
            "'-----BEGIN PUBLIC KEY-----' block from the RockBLOCK webhook documentation"
        )
        return None
    return pem


def _sms(r: _Reader) -> SmsSettings:
    t = r.section("sms")
    token = _token(r, t, "sms")
    phones = _mapping(r, t, "sms", "phones", "number", _PHONE_RE)
    if not phones:
        r.problems.append(
            "[sms] needs at least one [[sms.phones]] entry (number = the gateway modem's "
            "number as the forwarder reports it, gateway = a gateway's name)"
        )
    ttl_h = r.number(t, "sms", "part_ttl_hours", 24, low=0.1, high=24 * 30)
    return SmsSettings(token=token, phones=phones, part_ttl_s=ttl_h * 3600)


def _database_url(r: _Reader, value: str) -> URL | None:
    if not value:
        return None
    try:
        url = normalize_url(value)
    except StoreError as exc:
        r.problems.append(f"[database].url: {exc.message}")
        return None
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return url
    db_path = Path(url.database).expanduser()
    if not db_path.is_absolute():
        db_path = r.base / db_path
    if not db_path.parent.is_dir():
        r.problems.append(
            f"[database].url: directory {db_path.parent} does not exist; "
            f"create it (mkdir -p {db_path.parent})"
        )
        return None
    return url.set(database=str(db_path))


def _gateways(r: _Reader) -> tuple[GatewayKey, ...]:
    entries = r.doc.get("gateways", [])
    if not isinstance(entries, list):
        r.problems.append("gateways must be written as [[gateways]] entries (name, key)")
        return ()
    out: list[GatewayKey] = []
    seen: dict[bytes, str] = {}
    for n, entry in enumerate(entries, 1):
        where = f"gateways #{n}"
        if not isinstance(entry, dict):
            r.problems.append(f"[[{where}]] must be a table with name and key")
            continue
        r.unknown(entry, where, _SECTIONS["gateways"])
        name = r.string(entry, where, "name", None)
        if name:
            try:
                check_gateway_name(name)
            except SignalfireError as exc:
                r.problems.append(f"[{where}].name: {exc.message}")
                continue
        key_value = r.string(entry, where, "key", None)
        if not name or not key_value:
            continue
        try:
            public_key, announcements = parse_gateway_key(key_value, r.base)
        except SignalfireError as exc:
            r.problems.append(f"[{where}].key: {exc.message}")
            continue
        if public_key in seen:
            r.problems.append(f"[{where}].key is the same key as gateway {seen[public_key]!r}")
            continue
        seen[public_key] = name
        out.append(GatewayKey(name, public_key, announcements))
    return tuple(out)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

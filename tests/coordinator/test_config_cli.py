"""coordinator.toml validation, `coordinator gateway ...`, and `coordinator serve` as a process."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from signalfire import batch as batchfmt
from signalfire import wire
from signalfire.coordinator.cli import coordinator
from signalfire.coordinator.config import ConfigError, load_config
from signalfire.coordinator.store import CoordinatorStore
from signalfire.profile import NetworkProfile, init_network
from signalfire.sender import Identity

from .kit import Sender, pid

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def site(tmp_path: Path) -> tuple[Path, NetworkProfile, Identity]:
    """A coordinator directory: network files, a gateway identity with its card, a config."""
    profile, _ = init_network(tmp_path / "network", "testnet")
    gateway = Identity.create(tmp_path / "gw.key")
    gateway.enrol(profile)  # the card now carries the gateway's key announcement
    shutil.copy(REPO / "coordinator.example.toml", tmp_path / "coordinator.toml")
    return tmp_path, profile, gateway


def test_example_config_is_valid(site: tuple[Path, NetworkProfile, Identity]) -> None:
    root, profile, _ = site
    cfg = load_config(root / "coordinator.toml")
    assert cfg.profile == profile
    assert cfg.database_url.database == str(root / "coordinator.db")  # beside the file
    assert (cfg.host, cfg.port, cfg.rate_per_s, cfg.burst) == ("127.0.0.1", 8443, 10, 50)
    assert cfg.policy.max_age_s == 30 * 86_400 and cfg.policy.future_skew_s == 600
    assert cfg.gateways == ()
    assert cfg.keyring().can_open


def test_every_problem_is_named_at_once(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text(
        """
[database]
url = "mysql://somewhere/db"
[network]
profile = "missing.json"
[listen]
port = "eighty"
tls_cert = "cert.pem"
colour = "blue"
[rate_limit]
burst = 0
[[gateways]]
name = "north"
key = "abcd"
[extras]
"""
    )
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "c.toml")
    text = str(info.value)
    for needle in (
        "[database].url",
        "[network].profile",
        "[network].key is required",
        "[listen].port must be a whole number",
        "[listen].tls_cert",
        "tls_cert and [listen].tls_key go together",
        "[listen].colour is not a setting",
        "[rate_limit].burst must be at least 1",
        "[gateways #1].key",
        "[extras] is not a section",
    ):
        assert needle in text, needle


def test_mismatched_network_key_is_refused(site: tuple[Path, NetworkProfile, Identity]) -> None:
    root, _, _ = site
    init_network(root / "other", "other")
    cfg_text = (root / "coordinator.toml").read_text()
    (root / "coordinator.toml").write_text(
        cfg_text.replace('key = "network/network.key"', 'key = "other/network.key"')
    )
    with pytest.raises(ConfigError, match=r"\[network\].key"):
        load_config(root / "coordinator.toml").keyring()


def test_gateway_add_list_revoke(site: tuple[Path, NetworkProfile, Identity]) -> None:
    root, _, gateway = site
    cfg = str(root / "coordinator.toml")
    runner = CliRunner()
    card = str(gateway.card_path)
    added = runner.invoke(
        coordinator, ["gateway", "add", "--config", cfg, "--name", "north", "--key", card]
    )
    assert added.exit_code == 0, added.output
    assert f"key id {gateway.key_id.hex()}" in added.output
    assert "1 key announcement" in added.output
    again = runner.invoke(
        coordinator,
        ["gateway", "add", "--config", cfg, "--name", "x", "--key", gateway.public.hex()],
    )
    assert again.exit_code == 0 and "already enrolled" in again.output
    listed = runner.invoke(coordinator, ["gateway", "list", "--config", cfg, "--json"])
    [row] = json.loads(listed.output)
    assert (row["name"], row["key_id"], row["revoked_at"]) == ("north", gateway.key_id.hex(), None)
    revoked = runner.invoke(coordinator, ["gateway", "revoke", "--config", cfg, "north"])
    assert revoked.exit_code == 0 and "revoked gateway north" in revoked.output
    table = runner.invoke(coordinator, ["gateway", "list", "--config", cfg])
    assert "revoked" in table.output
    refused = runner.invoke(
        coordinator, ["gateway", "add", "--config", cfg, "--name", "north", "--key", card]
    )
    assert refused.exit_code == 1 and "stays revoked" in refused.output
    bad = runner.invoke(
        coordinator, ["gateway", "add", "--config", cfg, "--name", "n", "--key", "cafe"]
    )
    assert bad.exit_code == 1 and "64 hex digits" in bad.output
    store = CoordinatorStore(load_config(root / "coordinator.toml").database_url)
    with store.transaction(write=False) as tx:
        actions = [e["action"] for e in tx.audit_entries()]
    store.close()
    assert actions == ["gateway.add", "gateway.revoke"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_ingests_and_stops_cleanly_on_sigterm(
    site: tuple[Path, NetworkProfile, Identity],
) -> None:
    root, profile, gateway = site
    port = _free_port()
    cfg_path = root / "coordinator.toml"
    cfg_path.write_text(
        cfg_path.read_text().replace("port = 8443", f"port = {port}")
        + f'\n[[gateways]]\nname = "north"\nkey = "{gateway.card_path.name}"\n'
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from signalfire.coordinator.cli import coordinator; coordinator()",
            "serve",
            "--config",
            str(cfg_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, proc.communicate()[1]
            try:
                if httpx.get(f"{base}/api/v1/health", timeout=1).json() == {"ok": True}:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "coordinator did not come up"
            time.sleep(0.05)
        civilian = Sender(profile.public_key)
        report = civilian.report(text="on the roof")
        # the gateway's own announcement came from its card: no need to send it
        attested = gateway.seal(
            profile,
            wire.Report(
                status=wire.Status.SOS,
                time=int(time.time()),
                attestation=wire.Attestation(node_num=7, packet_id=8, rx_time=int(time.time())),
            ),
        ).packet
        data = batchfmt.encode(
            [batchfmt.BatchItem(p) for p in (civilian.announcement, report, attested)],
            gateway=gateway.key,
            network_id=profile.network_id,
            batch_id="serve-1",
            sent_at=int(time.time()),
        )
        response = httpx.post(f"{base}/api/v1/batches", content=data, timeout=10)
        assert response.status_code == 200, response.text
        assert response.json()["stored"] == [pid(civilian.announcement), pid(report), pid(attested)]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, err
    assert "coordinator stopped" in err
    store = CoordinatorStore(load_config(cfg_path).database_url)
    with store.transaction(write=False) as tx:
        assert tx.counts()["reports"] == 2
        assert [e["action"] for e in tx.audit_entries()] == ["gateway.add", "serve.start"]
    store.close()


def test_feed_and_retention_settings_are_checked(
    site: tuple[Path, NetworkProfile, Identity],
) -> None:
    root, _, _ = site
    cfg_path = root / "coordinator.toml"
    text = cfg_path.read_text()
    cfg = load_config(cfg_path)
    assert (cfg.tile_url, cfg.viewer_precision_m, cfg.retention_days) == (None, 1000, None)
    good = text.replace(
        '# tile_url = "http://10.0.0.5:8080/tile/{z}/{x}/{y}.png"',
        'tile_url = "http://10.0.0.5:8080/tile/{z}/{x}/{y}.png"',
    ).replace("report_days = 0", "report_days = 30")
    cfg_path.write_text(good)
    cfg = load_config(cfg_path)
    assert cfg.feed_settings().tile_url == "http://10.0.0.5:8080/tile/{z}/{x}/{y}.png"
    assert cfg.feed_settings().retention_days == 30
    bad = good.replace("tile/{z}/{x}/{y}.png", "tile.png").replace(
        "viewer_precision_m = 1000", "viewer_precision_m = 5"
    )
    cfg_path.write_text(bad)
    with pytest.raises(ConfigError) as info:
        load_config(cfg_path)
    assert "[feed].tile_url" in str(info.value)
    assert "[feed].viewer_precision_m must be at least 100" in str(info.value)


def test_user_commands_and_tokens(site: tuple[Path, NetworkProfile, Identity]) -> None:
    root, _, _ = site
    cfg = str(root / "coordinator.toml")
    runner = CliRunner()
    secret = root / "pw"
    secret.write_text("correct horse battery\n")
    added = runner.invoke(
        coordinator,
        ["user", "add", "--config", cfg, "anna", "--role", "admin", "--password-file", str(secret)],
    )
    assert added.exit_code == 0 and "added admin anna" in added.output
    short = runner.invoke(
        coordinator, ["user", "add", "--config", cfg, "bob", "--role", "viewer"], input="abc\nabc\n"
    )
    assert short.exit_code == 1 and "at least 10 characters" in short.output
    prompted = runner.invoke(
        coordinator,
        ["user", "add", "--config", cfg, "bob", "--role", "viewer"],
        input="long enough pass\nlong enough pass\n",
    )
    assert prompted.exit_code == 0, prompted.output
    assert "long enough pass" not in prompted.output  # the prompt does not echo
    last = runner.invoke(coordinator, ["user", "set", "--config", cfg, "anna", "--role", "viewer"])
    assert last.exit_code == 1 and "last active admin" in last.output
    promoted = runner.invoke(
        coordinator, ["user", "set", "--config", cfg, "bob", "--role", "responder"]
    )
    assert promoted.exit_code == 0 and "bob: responder, active" in promoted.output
    listed = json.loads(
        runner.invoke(coordinator, ["user", "list", "--config", cfg, "--json"]).output
    )
    assert [(u["username"], u["role"]) for u in listed] == [("anna", "admin"), ("bob", "responder")]

    made = runner.invoke(coordinator, ["token", "--config", cfg, "bob", "--label", "qgis"])
    assert made.exit_code == 0
    token = made.stdout.strip()
    assert token.startswith("sft_") and len(token) > 40
    from signalfire.coordinator.accounts import Accounts

    store = CoordinatorStore(load_config(Path(cfg)).database_url)
    try:
        principal = Accounts(store).authenticate(token, time.time())
        assert principal is not None and principal.user.username == "bob"
        disabled = runner.invoke(coordinator, ["user", "set", "--config", cfg, "bob", "--disable"])
        assert disabled.exit_code == 0 and "disabled" in disabled.output
        assert Accounts(store).authenticate(token, time.time()) is None
        with store.transaction(write=False) as tx:
            entries = tx.audit_entries()
    finally:
        store.close()
    assert [e["action"] for e in entries] == [
        "user.add",
        "user.add",
        "user.update",
        "token.create",
        "user.update",
    ]
    assert all(token not in json.dumps(e) for e in entries)


def test_expire_deletes_old_reports_only_when_retention_is_set(
    site: tuple[Path, NetworkProfile, Identity],
) -> None:
    root, profile, _ = site
    cfg_path = root / "coordinator.toml"
    runner = CliRunner()
    refused = runner.invoke(coordinator, ["expire", "--config", str(cfg_path)])
    assert refused.exit_code == 1 and "report_days" in refused.output
    cfg_path.write_text(cfg_path.read_text().replace("report_days = 0", "report_days = 7"))
    cfg = load_config(cfg_path)
    store = CoordinatorStore(cfg.database_url)
    try:
        from signalfire.coordinator.store import report_values

        keyring = cfg.keyring()
        civilian = Sender(profile.public_key)
        keyring.add(wire.parse(civilian.announcement))
        now = time.time()
        with store.transaction() as tx:
            for age_days, packet in ((10, civilian.report()), (1, civilian.report())):
                opened = keyring.open(packet)
                tx.add_report(report_values(opened, now - age_days * 86_400, 0))
    finally:
        store.close()
    done = runner.invoke(coordinator, ["expire", "--config", str(cfg_path)])
    assert done.exit_code == 0 and "deleted 1 report(s)" in done.output
    store = CoordinatorStore(cfg.database_url)
    try:
        with store.transaction(write=False) as tx:
            assert tx.counts()["reports"] == 1
            assert tx.audit_entries()[-1]["action"] == "retention.expire"
    finally:
        store.close()


def test_sender_revoke_and_list(site: tuple[Path, NetworkProfile, Identity]) -> None:
    root, _, _ = site
    cfg = str(root / "coordinator.toml")
    runner = CliRunner()
    bad = runner.invoke(coordinator, ["sender", "revoke", "--config", cfg, "anna", "--reason", "x"])
    assert bad.exit_code == 1 and "is not a sender" in bad.output
    done = runner.invoke(
        coordinator,
        ["sender", "revoke", "--config", cfg, "0123456789abcdef", "--reason", "seized",
         "--since", "2026-11-28T09:00Z"],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "revoked 0123456789abcdef from 2026-11-28T09:00:00Z; flagged 0" in done.output
    listed = runner.invoke(coordinator, ["sender", "revoked", "--config", cfg, "--json"])
    assert json.loads(listed.output) == {"0123456789abcdef": 1795856400.0}


def test_webhook_tables_are_checked(site: tuple[Path, NetworkProfile, Identity]) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    root, _, _ = site
    cfg_path = root / "coordinator.toml"
    base = cfg_path.read_text()
    (root / "sbd-token").write_text("s" * 32 + "\n")
    (root / "sms-token").write_text("m" * 32 + "\n")
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    rsa_pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    (root / "gc.pem").write_bytes(rsa_pem.public_bytes(serialization.Encoding.PEM, public))
    ed_key = ed25519.Ed25519PrivateKey.generate().public_key()
    (root / "ed.pem").write_bytes(ed_key.public_bytes(serialization.Encoding.PEM, public))
    tables = """
[sbd]
token_file = "sbd-token"
jwt_public_key = "{pem}"
[[sbd.modems]]
imei = "300434063480220"
gateway = "hill-school"
[sms]
token_file = "sms-token"
part_ttl_hours = 12
[[sms.phones]]
number = "+37491000001"
gateway = "hill-school"
"""
    cfg_path.write_text(base + tables.format(pem="gc.pem"))
    cfg = load_config(cfg_path)
    assert cfg.sbd is not None and cfg.sms is not None
    assert cfg.sbd.token == "s" * 32 and cfg.sbd.modems == (("300434063480220", "hill-school"),)
    assert cfg.sbd.jwt_key == (root / "gc.pem").read_bytes()
    assert cfg.sms.phones == (("+37491000001", "hill-school"),) and cfg.sms.part_ttl_s == 43_200
    assert "s" * 32 not in repr(cfg.sbd)  # the secret stays out of reprs (and so of logs)

    cfg_path.write_text(base + tables.format(pem="ed.pem"))
    with pytest.raises(ConfigError, match=r"\[sbd\].jwt_public_key: .* not usable"):
        load_config(cfg_path)
    (root / "sbd-token").write_text("short\n")
    cfg_path.write_text(base + tables.format(pem="nowhere.pem").replace("300434063480220", "12"))
    with pytest.raises(ConfigError) as info:
        load_config(cfg_path)
    text = str(info.value)
    for needle in ("[sbd].token_file", "[sbd].jwt_public_key", "[sbd.modems #1].imei"):
        assert needle in text, needle
    assert "short" not in text  # a wrong secret is not echoed either

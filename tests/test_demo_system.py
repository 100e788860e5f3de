"""`signalfire demo`, the README's main command: the whole system on one machine.

The first test runs exactly `signalfire demo --headless --duration 60 --seed 1`
and checks its summary against the coordinator's and the gateways' databases
(not against the demo's own bookkeeping). The second keeps the services up
and looks at the feed in headless Chromium, saving the screenshot the README
shows.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from browser import chromium_driver, console_problems, require_selenium

REPO = Path(__file__).resolve().parents[1]
SIGNALFIRE = shutil.which("signalfire", path=os.path.dirname(sys.executable)) or "signalfire"
SCREENSHOT = REPO / "build" / "screenshots" / "demo-feed.png"


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return list(conn.execute(sql))
    finally:
        conn.close()


@pytest.mark.slow
def test_headless_demo_summary_matches_what_was_stored(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    res = subprocess.run(
        [
            SIGNALFIRE,
            "demo",
            "--headless",
            "--duration",
            "60",
            "--seed",
            "1",
            "--dir",
            str(workdir),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "COLUMNS": "120"},
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "lost after a gateway stored them (must be 0)" in res.stdout
    summary = json.loads((workdir / "summary.json").read_text())

    db = workdir / "coordinator" / "coordinator.db"
    stored = {r[0] for r in _rows(db, "SELECT id FROM reports")}
    pending = {r[0] for r in _rows(db, "SELECT id FROM pending")}
    # Another gateway's attested copy of a stock text is a receipt of the first report.
    pending |= {r[0] for r in _rows(db, "SELECT packet_id FROM receipts WHERE packet_id != ''")}
    by_status: dict[str, int] = dict(
        _rows(db, "SELECT status, count(*) FROM reports GROUP BY status")
    )
    receipts = _rows(
        db, "SELECT count(*) FROM receipts WHERE report_id IN (SELECT id FROM reports)"
    )
    heard: set[str] = set()
    for gw in ("gateway-1", "gateway-2"):
        store = workdir / gw / "data" / "gateway.sqlite"
        heard |= {
            bytes(r[0]).hex()
            for r in _rows(store, "SELECT packet_id FROM packets WHERE kind != 'announcement'")
        }

    assert summary["lost"] == 0 and heard <= stored | pending
    assert summary["heard_by_a_gateway"] == len(heard) > 10
    assert summary["delivered"] == len(heard & (stored | pending))
    assert summary["stored_reports"] == len(stored)
    assert summary["by_status"] == by_status
    assert summary["duplicates_suppressed"] == receipts[0][0] - len(stored)
    assert summary["duplicates_suppressed"] > 0  # two gateways hear the same town
    assert summary["sent"] >= len(by_status)
    # The scripted disruptions all happened, and the coordinator saw both uplinks.
    events = " ".join(summary["events"])
    for what in ("uplink goes down", "uplink is back", "loses power", "powers up again"):
        assert what in events
    uplinks = {r[0] for r in _rows(db, "SELECT DISTINCT uplink FROM receipts")}
    assert "https" in uplinks
    if summary["mqtt"]:
        assert "mqtt" in uplinks
    # Stock-radio messages in Armenian or Russian made it into the feed.
    texts = " ".join(r[0] or "" for r in _rows(db, "SELECT text FROM reports"))
    assert any("\u0531" <= ch <= "\u058f" or "\u0400" <= ch <= "\u04ff" for ch in texts)
    # No secret in any service's log: the demo password, session cookies, tokens.
    logs = "".join(p.read_text(errors="replace") for p in (workdir / "logs").glob("*.log"))
    assert summary["username"] == "demo"
    assert "sfs_" not in logs and "sft_" not in logs
    password = res.stdout.split("password ", 1)[1].split()[0]
    assert password not in logs
    secrets = _private_secrets(workdir)
    assert len(secrets) >= 30  # the network key, two gateways', thirty civilians' at least
    leaked = [s for s in secrets if s in logs]
    assert not leaked, f"{len(leaked)} private key forms appear in the logs"


def _private_secrets(root: Path) -> set[str]:
    """Every private key under ``root`` as hex, base64 and PEM lines; sender states' strings."""
    from cryptography.hazmat.primitives import serialization

    raw = serialization.Encoding.Raw
    found: set[str] = set()
    for path in root.rglob("*"):
        if not path.is_file() or path.suffix in (".db", ".sqlite", ".log", ".png"):
            continue
        data = path.read_bytes()
        if b"PRIVATE KEY-----" in data:
            key: Any = serialization.load_pem_private_key(data, password=None)
            secret = key.private_bytes(raw, serialization.PrivateFormat.Raw,
                                       serialization.NoEncryption())  # fmt: skip
            found |= {secret.hex(), base64.b64encode(secret).decode().rstrip("=")}
            found |= {base64.urlsafe_b64encode(secret).decode().rstrip("=")}
            found |= {line for line in data.decode().splitlines() if "-----" not in line}
        elif path.name.endswith(".state"):
            # The key tree's nodes: from them come every future message key of the sender.
            for enrolment in json.loads(data)["enrolments"].values():
                found |= {node[2] for node in enrolment["nodes"]}
    return found


@pytest.mark.slow
def test_demo_feed_in_chromium_with_screenshot(tmp_path: Path) -> None:
    require_selenium()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    workdir = tmp_path / "demo"
    proc = subprocess.Popen(
        [SIGNALFIRE, "demo", "--headless", "--keep", "--duration", "30", "--seed", "2",
         "--dir", str(workdir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "120"},
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("feed http://127.0.0.1:"), first
        url, password = first.split()[1], first.split()[-1]
        deadline = time.monotonic() + 180
        while not (workdir / "summary.json").exists():
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "the demo did not finish its scenario"
            time.sleep(1)
        summary = json.loads((workdir / "summary.json").read_text())
        assert summary["lost"] == 0

        with chromium_driver(tmp_path) as driver:
            d: Any = driver
            d.get(url + "/")
            wait = WebDriverWait(d, 15, poll_frequency=0.2)
            wait.until(lambda x: x.find_element(By.ID, "login-username").is_displayed())
            d.find_element(By.ID, "login-username").send_keys("demo")
            d.find_element(By.ID, "login-password").send_keys(password)
            d.find_element(By.ID, "login-submit").click()
            wait.until(lambda x: len(x.find_elements(By.CSS_SELECTOR, "#report-list .row")) > 0)
            shown = len(d.find_elements(By.CSS_SELECTOR, "#report-list .row"))
            # --keep leaves the town running: late retries may still arrive after the summary.
            db = workdir / "coordinator" / "coordinator.db"
            now_stored = _rows(db, "SELECT count(*) FROM reports")[0][0]
            assert summary["stored_reports"] <= shown <= now_stored
            markers = d.find_elements(By.CSS_SELECTOR, "#map .sf-marker[data-report-id]")
            assert markers
            time.sleep(1)  # let the map finish fitting its bounds before the picture
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            assert d.save_screenshot(str(SCREENSHOT))
            problems = console_problems(d, ignore=[r"/api/v1/session - Failed to load.*401"])
            assert not problems, problems
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, out[-3000:]
    assert SCREENSHOT.stat().st_size > 10_000

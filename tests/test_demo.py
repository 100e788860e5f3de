"""`signalfire demo` is the README's main command: it must run and tell the truth."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

SIGNALFIRE = shutil.which("signalfire", path=os.path.dirname(sys.executable)) or "signalfire"


def test_demo_runs_and_its_summary_adds_up(tmp_path: Path) -> None:
    res = subprocess.run(
        [SIGNALFIRE, "demo", "--walkthrough", "--dir", str(tmp_path), "--seed", "3"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert res.returncode == 0, res.stderr
    summary = re.search(
        r"sent (\d+) · opened (\d+) · held until announced (\d+) · refused (\d+) · "
        r"duplicates suppressed (\d+)",
        res.stdout,
    )
    assert summary, res.stdout
    sent, opened, held, refused, dupes = map(int, summary.groups())
    assert (sent, opened, held, refused, dupes) == (6, 6, 1, 1, 3)
    assert "bad-signature" in res.stdout
    assert "Փլատակների" in res.stdout  # Armenian text survived the round trip
    # the demo wrote real key files with the right permissions
    assert oct((tmp_path / "anna.key").stat().st_mode & 0o777) == "0o600"
    assert oct((tmp_path / "network" / "network.key").stat().st_mode & 0o777) == "0o600"

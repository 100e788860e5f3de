"""bench/mesh.py runs, and what it prints is sane: packets flow, airtime adds up, reports arrive."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "bench" / "mesh.py"


def _run(*flags: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", *flags],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _row(output: str, label: str) -> str:
    """The first value cell of the table row that starts with `label`."""
    for line in output.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == label:
            return cells[1]
    raise AssertionError(f"no row {label!r} in:\n{output}")


def _number(cell: str) -> float:
    match = re.match(r"[\d,.]+", cell)
    assert match, cell
    return float(match.group().replace(",", ""))


def test_quick_run_prints_sane_numbers() -> None:
    out = _run()
    for section in ("Machine", "What the simulated air carried", "Speed", "Airtime check"):
        assert section in out
    assert "cpu: " in out and "python: CPython" in out
    assert _number(_row(out, "simulated packets per CPU second")) > 50
    assert _number(_row(out, "events per CPU second")) > 500
    transmissions = _number(_row(out, "transmissions (relays and acks included)"))
    sent = _number(_row(out, "packets sent by civilians"))
    assert transmissions > sent > 10  # flooding relays what civilians send
    airtime = _number(_row(out, "airtime accounted (s)"))
    # Every transmission lasts between a bare header and a full 255-byte frame on LONG_FAST.
    assert 0.4 * transmissions < airtime < 2.2 * transmissions
    assert 50.0 <= _number(_row(out, "delivery ratio to gateways")) <= 100.0
    assert _number(_row(out, "duplicates suppressed")) > 0
    assert "airtime check: ok" in out


def test_markdown_mode() -> None:
    out = _run("--markdown")
    assert "### Speed (one core, pure virtual time)" in out
    assert "- python: " in out

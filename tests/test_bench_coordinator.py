"""bench/coordinator.py --quick runs and prints numbers that parse and are sane (no thresholds)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "bench" / "coordinator.py"


def _cells(output: str, label: str) -> list[str]:
    for line in output.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == label:
            return cells
    raise AssertionError(f"no row {label!r} in:\n{output}")


def _number(cell: str) -> float:
    match = re.match(r"[\d,.]+", cell)
    assert match, cell
    return float(match.group().replace(",", ""))


def test_quick_run_prints_sane_numbers(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--no-postgres", "--dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "cpu: " in out and "python: CPython" in out and "sqlite: 3." in out
    for label in ("raw Ed25519 verify, 100 B", "Keyring.open of a report"):
        assert _number(_cells(out, label)[3]) > 0
    ingest = _cells(out, "ingest_batch, SQLite")
    assert _number(ingest[1]) == 330  # 300 new reports and 30 copies, every one accounted for
    assert _number(ingest[3]) > 0 and 0 < _number(ingest[5]) < 10
    assert re.search(
        r"SQLite: ingest / raw Ed25519 verify = \d+ % \(goal >= 60 %: (NOT )?met\)", out
    )
    assert "Feed queries over 5,000 reports, SQLite" in out
    newest = _cells(out, "newest 200 reports")
    assert _number(newest[1]) == 200 and _number(newest[2]) > 0
    assert _number(_cells(out, "latest report per sender, newest 200 senders")[1]) == 200
    assert _number(_cells(out, "one report by id with receipts")[1]) == 1
    assert list(tmp_path.iterdir()) == []  # the benchmark cleans up after itself

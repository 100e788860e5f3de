"""bench/gateway_store.py runs, drains in the right order, and prints sane numbers."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "bench" / "gateway_store.py"


def _run(*flags: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", *flags],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


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


def test_quick_run_prints_sane_numbers() -> None:
    out = _run()
    for section in ("Machine", "Throughput"):
        assert section in out
    assert "cpu: " in out and "python: CPython" in out and "sqlite: 3." in out
    assert "database filesystem: " in out

    intake = _cells(out, "durable intake, add() one at a time")
    assert _number(intake[1]) == 300
    # Every add is an fsync: even an SD card does tens per second, and nothing does a million.
    assert 10 < _number(intake[3]) < 1_000_000
    assert "median" in intake[5] and "p99" in intake[5]
    duplicate = _cells(out, "same bytes heard again (duplicate add)")
    assert _number(duplicate[3]) > 10
    drain = _cells(out, "backlog drain, due(100) + mark_done")
    assert _number(drain[1]) == 2000
    assert _number(drain[3]) > 100
    assert "superseded" in _cells(out, "supersede_older(), first pass over the backlog")[5]
    assert "order check: ok" in out


def test_markdown_mode_and_another_directory(tmp_path: Path) -> None:
    out = _run("--markdown", "--dir", str(tmp_path))
    assert "### Throughput" in out
    assert "- sqlite: " in out
    assert "order check: ok" in out
    assert list(tmp_path.iterdir()) == []  # the benchmark cleans up after itself

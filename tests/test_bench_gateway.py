"""bench/gateway.py --quick runs end to end and prints numbers that parse and are sane.

No timing thresholds: only that every stage ran, produced positive numbers, drained
everything life-safety first and exactly once, and that the daemon stopped cleanly.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "bench" / "gateway.py"


def _cells(output: str, label: str) -> list[str]:
    for line in output.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == label:
            return cells
    raise AssertionError(f"no row {label!r} in:\n{output}")


def _number(cell: str) -> float:
    match = re.fullmatch(r"-?[\d,]+(\.\d+)?", cell)
    assert match, cell
    return float(cell.replace(",", ""))


@pytest.mark.slow
def test_quick_run_prints_sane_numbers() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    for section in ("### Machine", "### Intake", "### Backlog drain", "### Where the time goes",
                    "### Gateway daemon"):  # fmt: skip
        assert section in out
    for key in ("cpu: ", "cores: ", "python: CPython", "sqlite: 3.", "openssl: "):
        assert f"- {key}" in out

    # Intake: every report stored with the limits high, duplicates recognised, and the
    # default limits refusing some of a burst this size.
    for label in (
        "key announcements (verify, keyring.add, durable add)",
        "reports, limits high (verify, durable add)",
        "same reports heard again (resent, or by another path)",
        "reports, default limits (all at once: a flood to them)",
    ):
        cells = _cells(out, label)
        assert all(_number(c) > 0 for c in cells[1:6]), cells
    high = _cells(out, "reports, limits high (verify, durable add)")
    assert high[6] == f"stored {high[1]}"
    assert _cells(out, "same reports heard again (resent, or by another path)")[6].startswith(
        "duplicate"
    )
    assert (
        "rate-limited" in _cells(out, "reports, default limits (all at once: a flood to them)")[6]
    )

    # Drain: both batch sizes, everything in, life-safety first.
    for size in (200, 500):
        cells = _cells(out, f"drain, batch_size {size}")
        assert _number(cells[1]) == 2000
        assert all(_number(c) > 0 for c in cells[2:7]), cells
        assert cells[7] == "ok"
        assert f"life-safety first, batch_size {size}: ok" in out
    for label in (
        "raw Ed25519 verify, 100 B",
        "Keyring.verify of a report (gateway, per report)",
        "Keyring.open of a report (coordinator, per report)",
        "gateway side alone, batch_size 200 (no HTTP)",
        "coordinator Ingestor.ingest_batch alone, batch_size 500 (no HTTP)",
    ):
        cells = _cells(out, label)
        assert all(_number(c) > 0 for c in cells[1:5]), cells
    assert re.search(r"target >= 2,000 reports/s end to end: (met|NOT met) \(best [\d,]+/s", out)

    # Daemon: memory measured, CPU non-negative (an idle daemon may use no tick at all),
    # and SIGTERM ends it with exit code 0.
    for label in (
        "start to radio connected (s)",
        "VmRSS at the start of the window (MiB)",
        "VmRSS at the end of the window (MiB)",
        "VmHWM, peak RSS (MiB)",
        "RssAnon at the end, private memory (MiB)",
        "RssFile at the end, mapped files and libraries (MiB)",
        "CPU from start to the end of the window (s)",
        "threads",
    ):
        assert _number(_cells(out, label)[1]) > 0, label
    for label in (
        "CPU in the window, utime+stime (s)",
        "idle CPU, % of one core (utime+stime)",
        "context switches in the window, all threads",
    ):
        assert _number(_cells(out, label)[1]) >= 0, label
    assert _number(_cells(out, "exit code after SIGTERM")[1]) == 0
    assert _number(_cells(out, "SIGTERM to exit (s)")[1]) >= 0

"""bench/packing.py runs and meets its goal on SBD (the quick version)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quick_run_meets_the_goal() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "packing.py"), "--quick", "--markdown"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "### Machine" in out and "cpu: " in out
    sbd = [line for line in out.splitlines() if line.startswith("| mix: ") and "SBD" in line]
    assert len(sbd) == 3
    for line in sbd:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        efficiency = float(re.match(r"[\d.]+", cells[7]).group())  # type: ignore[union-attr]
        assert efficiency >= 90.0, line
    assert ": ok" in out

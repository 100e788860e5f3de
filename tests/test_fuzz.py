"""The fuzz targets (fuzz/, scripts/fuzz): a short coverage-guided run of each finds nothing.

The long campaign (1,000,000 inputs per target) is `scripts/fuzz`; its figures are in
bench/RESULTS.md. Findings become tests in tests/fuzz_regressions/.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fuzz.targets import TARGETS  # noqa: E402


@pytest.mark.parametrize("name", TARGETS)
def test_every_seed_passes_its_target(name: str) -> None:
    """Without atheris: the seeds are clean inputs, so the harness itself is sound."""
    target = importlib.import_module(f"fuzz.targets.{name}")
    seeds = target.seeds()
    assert seeds
    for data in seeds:
        target.test_one_input(data)


@pytest.mark.slow
def test_quick_fuzz_run_of_every_target_finds_nothing() -> None:
    pytest.importorskip("atheris", reason="atheris (a dev dependency) drives the fuzzer")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "fuzz" / "run.py"), "--quick"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    out = proc.stdout
    assert proc.returncode == 0, out[-6000:] + proc.stderr[-2000:]
    rows = {
        cells[0]: cells
        for line in out.splitlines()
        if line.startswith("| ") and not line.startswith("| target")
        for cells in [[c.strip() for c in line.strip().strip("|").split("|")]]
    }
    assert set(rows) == set(TARGETS)
    for name, cells in rows.items():
        assert cells[1] == "3,000", (name, cells)  # every input ran: none stopped early
        assert cells[3] == "0", (name, cells)

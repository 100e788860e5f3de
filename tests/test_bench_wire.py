"""bench/wire.py runs, and the sizes it prints stay within the wire-format budget."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "bench" / "wire.py"

SOS_ROW = "SOS, 3 people, location, no text"
ASCII_ROW = "need-supplies + 28 ASCII characters of text"


def _run(*flags: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", *flags],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _payload_sizes(output: str) -> dict[str, int]:
    """First two cells of each row of the 'Application payload' table."""
    sizes: dict[str, int] = {}
    in_section = False
    for line in output.splitlines():
        if "Application payload" in line and not line.startswith("|"):
            in_section = True
            continue
        if in_section and (line.startswith("== ") or line.startswith("### ")):
            break
        if in_section and line.startswith("| ") and not line.startswith("| case"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if cells[1].isdigit():
                sizes[cells[0]] = int(cells[1])
    return sizes


@pytest.fixture(scope="module")
def output() -> str:
    return _run()


def test_prints_every_section(output: str) -> None:
    for section in (
        "Machine",
        "Application payload",
        "fixed layout vs protobuf",
        "LoRa time on air",
        "Rates",
    ):
        assert section in output
    assert "openssl:" in output
    assert "cryptography:" in output


def test_sizes_within_budget(output: str) -> None:
    sizes = _payload_sizes(output)
    assert SOS_ROW in sizes, output
    assert ASCII_ROW in sizes, output
    assert sizes[SOS_ROW] <= 120  # stretch goal of DESIGN.md (budget 150)
    assert sizes[ASCII_ROW] <= 150
    assert sizes["key announcement"] <= 219  # must fit a PKI direct message


def test_markdown_mode() -> None:
    out = _run("--markdown")
    assert "### Application payload (bytes)" in out
    assert "- python: " in out
    sizes = _payload_sizes(out)
    assert sizes[SOS_ROW] <= 120

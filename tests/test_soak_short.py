"""Short versions of the soaks of issue 9 (bench/soak.py; `scripts/soak` runs the long ones).

Same code, same properties, fewer cycles: kill -9 of the gateway and of the MQTT ingest
lose and duplicate nothing committed; copies of the SQLite files taken mid-write open
and hold every acknowledged commit; broker outages under an MQTT drain lose and
duplicate nothing; the daemon's footprint is within its goal over a short window.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from mosquitto import require_binary

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def _load_soak() -> ModuleType:
    # By path: `gateway` on this suite's path is tests/gateway, not bench/gateway.py.
    path = ROOT / "bench" / "soak.py"
    spec = importlib.util.spec_from_file_location("signalfire_bench_soak", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


soak = _load_soak()


def _no_duplicates(counts: dict[str, int]) -> None:
    assert counts["duplicate report ids"] == 0, counts
    assert counts["reports with two receipts of one gateway"] == 0, counts


def test_gateway_killed_9_with_a_flapping_uplink(tmp_path: Path) -> None:
    out = soak.crash_gateway(tmp_path, cycles=12, seed=11)
    c = out.counts
    assert c["kills"] == 12
    assert c["uplink outages"] >= 1, c  # the seed makes the coordinator go down
    assert c["committed"] > 12, c  # the kills landed among real traffic
    assert c["lost after commit"] == 0, c
    assert c["invented"] == 0, c
    # At most the packet in flight per kill, plus what the radio's 32-packet queue dropped
    # while no gateway was connected (the firmware does the same; counted from its log).
    assert c["lost before commit"] <= c["kills"] + c["radio queue drops"], c
    assert c["exit code after SIGTERM"] == 0
    _no_duplicates(c)
    assert out.passed


def test_ingest_workers_killed_9_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    require_binary("mosquitto")
    out = soak.crash_ingest(tmp_path, kills=5, reports=400, seed=11)
    c = out.counts
    assert c["worker kills"] >= 1 and c["process group kills"] == 1, c
    assert c["refused by the broker"] == 0, c
    assert c["lost"] == 0 and c["invented"] == 0, c
    assert c["exit code after SIGTERM"] == 0
    _no_duplicates(c)
    assert out.passed


def test_sqlite_files_copied_mid_write_hold_every_commit(tmp_path: Path) -> None:
    out = soak.power_loss(tmp_path, copies=8, seed=11)
    c = out.counts
    for which in ("gateway", "coordinator"):
        assert c[f"{which} copies"] == 8
        assert c[f"{which} acknowledged before a copy, checked"] > 0, c  # copies mid-stream
        assert c[f"{which} copies that did not open"] == 0, c
        assert c[f"{which} integrity failures"] == 0, c
        assert c[f"{which} missing"] == 0, c
    assert out.passed


def test_broker_outages_under_an_mqtt_drain(tmp_path: Path) -> None:
    require_binary("mosquitto")
    out = soak.flap(tmp_path, reports=500, outages=5, seed=11)
    c = out.counts
    assert c["committed"] == 500, c  # the intake's limits are off: all of them are stored
    assert c["lost"] == 0 and c["invented"] == 0, c
    assert c["exit code after SIGTERM"] == 0
    _no_duplicates(c)
    assert out.passed


def test_footprint_over_a_short_window(tmp_path: Path) -> None:
    out = soak.footprint(tmp_path, minutes=0.25)
    assert out.counts["exit code after SIGTERM"] == 0
    by_name = {f.name: f for f in out.figures}
    rss = by_name["gateway RSS, peak (VmHWM)"]
    assert rss.passed, rss  # <= 80 MiB
    # Idle CPU is not asserted over 15 s on a shared machine: one busy neighbour's cache
    # misses are a large share of so short a window. `scripts/soak footprint` measures it.
    assert by_name["gateway idle CPU, % of one core"].passed is not None

"""What the store promises when things go wrong: kill -9 at any moment, a full disk."""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from signalfire.gateway.store import GatewayStore, StoreFull, StoreShedding

from .storekit import ELEVATED, LIFE, ROUTINE, T0, packet

WRITER = Path(__file__).with_name("crash_writer.py")
CRASH_CYCLES = 25


def _integrity(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def test_kill_9_at_random_moments_loses_no_acknowledged_packet(tmp_path: Path) -> None:
    db = tmp_path / "gateway.db"
    rng = random.Random(4)
    acknowledged: list[bytes] = []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for cycle in range(CRASH_CYCLES):
        proc = subprocess.Popen(
            [sys.executable, str(WRITER), str(db), str(cycle)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        assert proc.stdout is not None
        if cycle % 4 == 3:
            # Now and then at any moment at all: during start-up, opening, recovery.
            time.sleep(rng.uniform(0.0, 0.4))
        else:
            assert proc.stdout.readline() == b"ready\n", proc.stderr
            time.sleep(rng.uniform(0.0, 0.08))
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=10)
        assert proc.returncode == -signal.SIGKILL, err.decode()
        # Only whole lines are acknowledgements: a line cut by the kill was never sent.
        lines = out.split(b"\n")[:-1]
        acknowledged += [bytes.fromhex(line.decode()) for line in lines if line != b"ready"]

        with GatewayStore(db, min_free_bytes=0) as store:
            missing = [c.hex() for c in acknowledged if store.get(c) is None]
            assert not missing, f"cycle {cycle}: acknowledged but lost: {missing[:5]}"
            # Each keeps its delivery rows: a restart resumes where the last run stopped.
            sample = rng.sample(acknowledged, min(20, len(acknowledged)))
            assert all(set(store.deliveries(c)) == {"https", "usb"} for c in sample)
        assert _integrity(db) == "ok"
    assert len(acknowledged) > CRASH_CYCLES  # the kills did land among the adds


# -- full disk -------------------------------------------------------------------


def _cannot_test(reason: str) -> None:
    message = f"FULL-DISK TEST NOT RUN: {reason}. Run as root on Linux to test it."
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs mounted for this test (root only), always unmounted after."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    if sys.platform != "linux" or os.geteuid() != 0:
        _cannot_test("mounting a small tmpfs needs root on Linux")
    mount, umount = shutil.which("mount"), shutil.which("umount")
    if mount is None or umount is None:
        _cannot_test("mount/umount not found")
    assert mount is not None and umount is not None
    proc = subprocess.run(
        [mount, "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        _cannot_test(f"mount -t tmpfs failed: {proc.stderr.strip()}")
    try:
        yield mount_point
    finally:
        done = subprocess.run([umount, str(mount_point)], capture_output=True, check=False)
        if done.returncode != 0:  # something still has a file open: detach it anyway
            subprocess.run([umount, "-l", str(mount_point)], capture_output=True, check=False)


def test_full_disk_is_a_clear_error_and_loses_nothing(small_tmpfs: Path) -> None:
    db = small_tmpfs / "gateway.db"
    ballast = small_tmpfs / "ballast"  # room the operator can free later
    ballast.write_bytes(b"\0" * 256 * 1024)
    floor = 640 * 1024
    acknowledged: list[bytes] = []
    first_refusal: dict[int, int] = {}
    full: StoreFull | None = None

    store = GatewayStore(db, min_free_bytes=floor)
    try:
        for i in range(100_000):
            priority = (ROUTINE, ELEVATED, LIFE)[i % 3]
            p = packet(i, priority=priority, size=200)
            try:
                store.add(p, ["https"])
            except StoreShedding as exc:
                assert exc.priority != LIFE
                first_refusal.setdefault(exc.priority, i)
                continue
            except StoreFull as exc:
                assert priority == LIFE  # nothing else gets this far on a nearly full disk
                full = exc
                break
            acknowledged.append(p.copy_id)
        assert full is not None, "the 2 MiB disk never filled"
        stop = i

        message = str(full)
        assert "is full" in message and "NOT stored" in message
        assert "Nothing already stored is lost" in message and "Free space" in message
        # Shedding order: routine first, elevated later, life-safety only when truly full.
        assert first_refusal[ROUTINE] < first_refusal[ELEVATED] < stop

        # The store is still usable on the full disk: reads, stats, a duplicate.
        assert store.get(acknowledged[0]) is not None
        stats = store.stats(T0)
        assert stats["full"] >= 1
        assert stats["shed"]["routine"] > 0 and stats["shed"]["elevated"] > 0
        assert store.add(packet(stop - 3, priority=LIFE, size=200), ["https"]) is False

        # Free space: new packets are stored again, through the same connection.
        ballast.unlink()
        again = packet(stop, priority=LIFE, size=200)
        assert store.add(again, ["https"]) is True
        acknowledged.append(again.copy_id)
    finally:
        store.close()

    assert _integrity(db) == "ok"
    with GatewayStore(db, min_free_bytes=0) as reopened:
        missing = [c.hex() for c in acknowledged if reopened.get(c) is None]
        assert not missing, f"acknowledged but lost after the disk filled: {missing[:5]}"
        assert reopened.stats(T0)["full"] >= 1  # the count was kept once there was room
        due = reopened.due("https", T0 + 10**6, 10)
        assert due and due[0].priority == LIFE

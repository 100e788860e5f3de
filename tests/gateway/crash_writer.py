"""Child process for the kill -9 test: add packets forever, print each copy id once stored.

Usage: python crash_writer.py DB CYCLE

A line on stdout is the acknowledgement: it is written only after ``add``
returned, so every id the parent read must be in the store after any crash.
Every few packets it also marks some done and some failed, so the kill lands
in those writes too.
"""

from __future__ import annotations

import hashlib
import sys

from signalfire.gateway.records import StoredPacket, Verified
from signalfire.gateway.store import GatewayStore


def main() -> None:
    db, cycle = sys.argv[1], int(sys.argv[2])
    store = GatewayStore(db, min_free_bytes=0)
    print("ready", flush=True)
    i = 0
    while True:
        signed = f"crash/{cycle}/{i}".encode().ljust(60, b".")
        raw = signed + hashlib.sha512(signed).digest()
        packet = StoredPacket(
            id=hashlib.sha256(signed).digest()[:16],
            raw=raw,
            kind="report",
            priority=i % 3,
            key_id=hashlib.sha256(str(cycle).encode()).digest()[:8],
            seq=i,
            received_at=1_790_000_000.0 + cycle * 1000 + i,
            verified=Verified.VERIFIED,
        )
        store.add(packet, ["https", "usb"])
        print(packet.copy_id.hex(), flush=True)
        if i % 5 == 4:
            due = store.due("https", 1_800_000_000.0, 3)
            store.mark_done("https", [p.copy_id for p in due[:2]], 1_790_000_000.0)
            store.mark_failed("usb", [p.copy_id for p in due[2:]], "down", 0.0, 1.0)
        i += 1


if __name__ == "__main__":
    main()

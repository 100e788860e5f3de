"""Write each target's seed corpus to fuzz/corpus/<target>/ from real, valid inputs.

The seeds are made by signalfire's own encoders (sealed reports, signed batches,
PDUs, webhook forms) with the fixed keys of fuzz/common.py, so the files are the
same on every run. ``scripts/fuzz`` calls this before fuzzing.
"""

from __future__ import annotations

import hashlib
import importlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fuzz.targets import TARGETS  # noqa: E402

CORPUS = ROOT / "fuzz" / "corpus"


def write(targets: tuple[str, ...] = TARGETS, corpus: Path = CORPUS) -> dict[str, int]:
    counts = {}
    for name in targets:
        module = importlib.import_module(f"fuzz.targets.{name}")
        out = corpus / name
        out.mkdir(parents=True, exist_ok=True)
        seeds = module.seeds()
        for data in seeds:
            (out / f"seed-{hashlib.sha1(data).hexdigest()[:16]}").write_bytes(data)
        counts[name] = len(seeds)
    return counts


if __name__ == "__main__":
    for name, n in write(tuple(sys.argv[1:]) or TARGETS).items():
        print(f"{name}: {n} seeds")

"""Run one fuzz target under atheris (libFuzzer).

    python fuzz/run_target.py NAME [libFuzzer args]

One process per target: libFuzzer exits the process when it is done or finds something.
``scripts/fuzz`` starts these with the corpus, limits and findings directory.
"""

from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SQL_BUILDERS = [
    "signalfire.coordinator.store",
    "signalfire.coordinator.feed",
    "signalfire.coordinator.feed_queries",
    "signalfire.coordinator.accounts",
]


def main() -> None:
    name = sys.argv.pop(1)
    # The coordinator logs every refused batch; a million log lines would be the run's cost.
    logging.disable(logging.CRITICAL)
    # Only signalfire is instrumented: coverage of the decoders is what steers the
    # fuzzer; instrumenting FastAPI, SQLAlchemy and the stdlib would slow every input.
    # Nor the modules that build SQL with `column == value`: atheris's comparison hook
    # keeps a reference to every non-bool result (an SQLAlchemy expression), about
    # 2.4 KB an input in bundle_import, which would end a long run at the RSS limit.
    # They build queries; they decode nothing.
    with atheris.instrument_imports(include=["signalfire"], exclude=SQL_BUILDERS):
        target = importlib.import_module(f"fuzz.targets.{name}")
    atheris.Setup(sys.argv, target.test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()

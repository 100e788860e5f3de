"""Run the fuzz targets, each in its own process, and print a table of what ran.

    scripts/fuzz                     every target, 1,000,000 inputs each
    scripts/fuzz --quick             3,000 inputs each (the test suite's run)
    scripts/fuzz wire_body pdu --runs 200000 --jobs 2

Each target runs under libFuzzer (atheris) with -rss_limit_mb and -timeout; an input
that raises anything but the decoder's documented errors, hangs past the timeout or
grows memory past the limit is saved in fuzz/findings/<target>/ and counted.
Exit status 1 if anything was found.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import benchkit  # noqa: E402
from fuzz import make_corpus  # noqa: E402
from fuzz.targets import TARGETS  # noqa: E402

FINDINGS = ROOT / "fuzz" / "findings"
WORK = ROOT / "fuzz" / "work"
QUICK_RUNS = 3_000
_ARTIFACT = re.compile(r"^(crash|timeout|oom|leak|slow-unit)-")


@dataclass
class Outcome:
    target: str
    runs: int
    execs_per_s: int
    crashes: int
    peak_rss_mb: int
    seconds: float
    returncode: int
    log: str


def _stat(log: str, name: str) -> int | None:
    m = re.search(rf"stat::{name}:\s+(\d+)", log)
    return int(m.group(1)) if m else None


def _last_status(log: str) -> tuple[int, int, int]:
    """(inputs, exec/s, rss MB) from libFuzzer's last progress line (when it stopped early)."""
    found = re.findall(r"^#(\d+)\s.*?exec/s: (\d+) rss: (\d+)Mb", log, re.MULTILINE)
    if not found:
        return 0, 0, 0
    n, rate, rss = found[-1]
    return int(n), int(rate), int(rss)


def run_target(
    name: str,
    runs: int,
    *,
    work: Path,
    rss_limit_mb: int,
    timeout_s: int,
    max_len: int,
    max_seconds: int = 0,
    seed: int = 1,
) -> Outcome:
    findings = FINDINGS / name
    findings.mkdir(parents=True, exist_ok=True)
    corpus = work / name
    corpus.mkdir(parents=True, exist_ok=True)
    before = {p.name for p in findings.iterdir()}
    cmd = [
        sys.executable, str(ROOT / "fuzz" / "run_target.py"), name,
        f"-runs={runs}", f"-rss_limit_mb={rss_limit_mb}", f"-timeout={timeout_s}",
        f"-max_len={max_len}", f"-artifact_prefix={findings}/", "-print_final_stats=1",
        f"-seed={seed}",  # reproducible mutation order for a given corpus
        f"-max_total_time={max_seconds}",
        str(corpus), str(make_corpus.CORPUS / name),
    ]  # fmt: skip
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - start
    log = proc.stdout + proc.stderr
    # A long campaign's own record, kept whatever happens to this script afterwards.
    (work / f"{name}.log").write_text(log)
    new = [p for p in findings.iterdir() if p.name not in before and _ARTIFACT.match(p.name)]
    n, rate, rss = _last_status(log)
    return Outcome(
        target=name,
        runs=_stat(log, "number_of_executed_units") or n,
        # libFuzzer's average is whole inputs per whole second: 0 for a run under 1 s.
        execs_per_s=_stat(log, "average_exec_per_sec") or rate or round(n / seconds),
        # The same input crashing again overwrites its file: count what the log says too.
        crashes=max(len(new), log.count("Test unit written to")),
        peak_rss_mb=_stat(log, "peak_rss_mb") or rss,
        seconds=seconds,
        returncode=proc.returncode,
        log=log,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("targets", nargs="*", help=f"default: all ({', '.join(TARGETS)})")
    parser.add_argument("--runs", type=int, default=1_000_000, help="inputs per target")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_RUNS:,} inputs each")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--rss-limit-mb", type=int, default=2048)
    parser.add_argument("--timeout", type=int, default=10, help="seconds per input")
    parser.add_argument("--max-len", type=int, default=4096, help="bytes per input")
    parser.add_argument(
        "--max-seconds", type=int, default=0, help="stop each target after this long (0: no cap)"
    )
    parser.add_argument("--markdown", action="store_true", help="Markdown headings")
    parser.add_argument(
        "--seed", type=int, default=1,
        help="libFuzzer's seed; two runs of one target on one corpus need different ones",
    )  # fmt: skip
    args = parser.parse_args()
    targets = tuple(args.targets) or TARGETS
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}; known: {', '.join(TARGETS)}")
    runs = QUICK_RUNS if args.quick else args.runs
    make_corpus.write(targets)
    h = "### " if args.markdown else ""
    print(f"{h}Machine\n")
    print(f"- date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")
    print(f"- platform: {platform.platform()}")
    print(f"- cpu: {benchkit.cpu_model()} ({os.cpu_count()} cores, {args.jobs} jobs)")
    print(f"- python: {platform.python_implementation()} {platform.python_version()}\n")
    # A quick run starts from the seeds alone, in a throw-away corpus: the same
    # inputs every time. A full run keeps growing fuzz/work/ across runs.
    with tempfile.TemporaryDirectory(prefix="signalfire-fuzz-") as tmp:
        work = Path(tmp) if args.quick else WORK

        def one(target: str) -> Outcome:
            o = run_target(
                target, runs, work=work, rss_limit_mb=args.rss_limit_mb,
                timeout_s=args.timeout, max_len=args.max_len, max_seconds=args.max_seconds,
                seed=args.seed,
            )  # fmt: skip
            # Progress on stderr as each target ends: the table waits for the last one.
            print(
                f"{o.target}: {o.runs:,} inputs, {o.execs_per_s:,}/s, {o.crashes} crash(es), "
                f"peak RSS {o.peak_rss_mb} MB, {o.seconds:.0f} s",
                file=sys.stderr, flush=True,
            )  # fmt: skip
            return o

        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            outcomes = list(pool.map(one, targets))
    rows = [
        (
            o.target,
            f"{o.runs:,}",
            f"{o.execs_per_s:,}",
            o.crashes,
            o.peak_rss_mb,
            f"{o.seconds:.0f}",
        )
        for o in outcomes
    ]
    print(f"{h}Fuzzing, {runs:,} inputs per target\n")
    print(
        benchkit.table(
            ("target", "inputs", "execs/s", "crashes", "peak RSS MB", "wall s"),
            rows,
            (False, True, True, True, True, True),
        )
    )
    bad = [o for o in outcomes if o.crashes or o.returncode != 0]
    for o in bad:
        print(f"\n--- {o.target}: exit {o.returncode}, findings in {FINDINGS / o.target}")
        print(o.log[-4000:])
    total = sum(o.runs for o in outcomes)
    print(f"\n{total:,} inputs, {sum(o.crashes for o in outcomes)} crash(es)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

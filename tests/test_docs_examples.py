"""The shell examples in docs/operator.md and docs/coordinator.md, run as written.

The convention (also described at the end of docs/operator.md):

- A fenced block marked ``console`` is run. Its lines that start with ``$ `` are
  commands, run in order with bash in one fresh temporary directory per document,
  with this checkout's ``signalfire`` first on PATH. A command line ending in `` \\``
  goes on on the next line. The lines after a command, up to the next ``$ ``, are its
  expected output (stdout and stderr together): each line must match, where ``...`` in
  a line stands for any text and a line that is only ``...`` for any number of lines.
  A command with no lines after it may print anything. Every command must exit 0; to
  show a failure, write it the way a shell user would see it: ``$ cmd; echo "exit $?"``.
- A command ending in `` &`` runs in the background for the rest of the document (its
  output goes to a log shown if the test fails) and is stopped (SIGTERM, then SIGKILL)
  at the end.
- ``<!-- file: NAME -->`` on the line before a fenced block (of any language) writes the
  block's text to NAME in the directory, at that point of the document.
- ``<!-- doctest: ports 8443 4403 -->`` anywhere in a document: when tested, those port
  numbers are replaced everywhere (commands, files, expected output) by free ones, so
  the test never collides with a real service or a parallel run.
- Other blocks (``sh``, ``toml``, ...) are not run. A block that is not run but shows a
  ``signalfire`` command must say why on the line before it:
  ``<!-- not tested: a real Raspberry Pi -->``; the test fails otherwise, so that
  every signalfire command the documents show is either run or deliberately excused.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = ["docs/operator.md", "docs/coordinator.md"]
COMMAND_TIMEOUT_S = 120

_FENCE = re.compile(r"^(`{3,})\s*([\w+-]*)\s*$")
_FILE = re.compile(r"^<!--\s*file:\s*(\S+)\s*-->\s*$")
_NOT_TESTED = re.compile(r"^<!--\s*not tested:\s*\S.*-->\s*$")
_PORTS = re.compile(r"<!--\s*doctest:\s*ports\s+([\d\s]+)-->")


@dataclass
class Command:
    line: int  # in the document, for messages
    text: str
    expected: list[str] = field(default_factory=list)

    @property
    def background(self) -> bool:
        return self.text.rstrip().endswith("&") and not self.text.rstrip().endswith("&&")


@dataclass
class FileBlock:
    line: int
    name: str
    text: str


@dataclass
class Doc:
    steps: list[Command | FileBlock]
    untested_signalfire: list[int]  # lines of unexcused untested blocks that run signalfire
    ports: list[int]


def parse(text: str) -> Doc:
    lines = text.splitlines()
    steps: list[Command | FileBlock] = []
    unexcused: list[int] = []
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        fence, lang = match.groups()
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and lines[i].strip() != fence:
            body.append(lines[i])
            i += 1
        i += 1  # the closing fence
        before = lines[start - 1] if start > 0 else ""
        file_match = _FILE.match(before)
        if file_match:
            steps.append(FileBlock(start + 1, file_match.group(1), "\n".join(body) + "\n"))
        elif lang == "console":
            steps.extend(_commands(body, start + 2))
        elif not _NOT_TESTED.match(before) and any(
            re.match(r"^\s*(sudo\s+(-u\s+\S+\s+)?)?(\S*/)?signalfire\s", b) for b in body
        ):
            unexcused.append(start + 1)
    ports = [int(p) for m in _PORTS.finditer(text) for p in m.group(1).split()]
    return Doc(steps, unexcused, ports)


def _commands(body: list[str], first_line: int) -> list[Command]:
    out: list[Command] = []
    current: Command | None = None
    continuing = False
    for n, raw in enumerate(body, start=first_line):
        if continuing and current is not None:
            current.text += "\n" + raw
            continuing = raw.endswith("\\")
        elif raw.startswith("$ "):
            current = Command(n, raw[2:])
            out.append(current)
            continuing = raw.endswith("\\")
        elif current is not None:
            current.expected.append(raw)
        elif raw.strip():
            raise AssertionError(f"line {n}: output before any $ command: {raw!r}")
    for cmd in out:
        while cmd.expected and not cmd.expected[-1].strip():
            cmd.expected.pop()
    return out


def _line_regex(pattern: str) -> re.Pattern[str]:
    parts = [re.escape(p) for p in pattern.rstrip().split("...")]
    return re.compile(".*".join(parts) + r"\s*")


def matches(expected: list[str], actual: list[str]) -> bool:
    """Expected lines against actual ones: ``...`` in a line is any text, alone any lines."""
    memo: dict[tuple[int, int], bool] = {}

    def go(e: int, a: int) -> bool:
        key = (e, a)
        if key not in memo:
            if e == len(expected):
                memo[key] = a == len(actual)
            elif expected[e].strip() == "...":
                memo[key] = go(e + 1, a) or (a < len(actual) and go(e, a + 1))
            else:
                memo[key] = (
                    a < len(actual)
                    and _line_regex(expected[e]).fullmatch(actual[a]) is not None
                    and go(e + 1, a + 1)
                )
        return memo[key]

    return go(0, 0)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _substitute(text: str, ports: dict[int, int]) -> str:
    for old, new in ports.items():
        text = re.sub(rf"(?<!\d){old}(?!\d)", str(new), text)
    return text


def _environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNALFIRE_")}
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.update(HOME=str(home), COLUMNS="120", NO_COLOR="1", TERM="dumb", LC_ALL="C.UTF-8")
    return env


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
    except ProcessLookupError:
        pass


def run_document(path: Path, workdir: Path) -> int:
    """Run every step of one document; returns how many commands ran."""
    doc = parse(path.read_text(encoding="utf-8"))
    assert not doc.untested_signalfire, (
        f"{path.name}: blocks at lines {doc.untested_signalfire} show signalfire commands but "
        "are neither ```console (tested) nor excused with <!-- not tested: why -->"
    )
    ports = {p: _free_port() for p in doc.ports}
    home = workdir / ".home"
    home.mkdir()
    env = _environment(home)
    background: list[tuple[Command, subprocess.Popen[bytes], Path]] = []
    ran = 0

    def logs() -> str:
        parts = []
        for cmd, proc, log in background:
            state = "running" if proc.poll() is None else f"exited {proc.returncode}"
            tail = log.read_text(errors="replace")[-3000:]
            parts.append(f"--- background (line {cmd.line}, {state}): {cmd.text}\n{tail}")
        return "\n".join(parts)

    try:
        for step in doc.steps:
            if isinstance(step, FileBlock):
                target = workdir / step.name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(_substitute(step.text, ports), encoding="utf-8")
                continue
            text = _substitute(step.text, ports)
            ran += 1
            if step.background:
                log = workdir / f".background-{step.line}.log"
                with log.open("wb") as out:
                    proc = subprocess.Popen(
                        ["bash", "-c", "exec " + text.rstrip().removesuffix("&")],
                        cwd=workdir,
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                background.append((step, proc, log))
                continue
            started = time.monotonic()
            try:
                result = subprocess.run(
                    ["bash", "-o", "pipefail", "-c", text],
                    cwd=workdir,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    timeout=COMMAND_TIMEOUT_S,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                pytest.fail(f"{path.name} line {step.line}: timed out: {text}\n{logs()}")
            output = result.stdout.decode("utf-8", errors="replace")
            where = (
                f"{path.name} line {step.line} ({time.monotonic() - started:.1f} s): $ {text}\n"
                f"--- output:\n{output}\n{logs()}"
            )
            assert result.returncode == 0, f"exit {result.returncode}: {where}"
            if step.expected:
                expected = [_substitute(e, ports) for e in step.expected]
                # Leading and trailing blank lines are not compared (rich's transient
                # progress bar leaves one when the output is not a terminal).
                actual = output.strip("\n").splitlines() if output.strip() else []
                assert matches(expected, actual), (
                    "output differs; expected:\n" + "\n".join(expected) + f"\n{where}"
                )
    finally:
        for _, proc, _ in reversed(background):
            _stop(proc)
    return ran


# -- the convention itself --------------------------------------------------------


def test_parse_commands_output_files_and_excuses() -> None:
    text = "\n".join(
        [
            "<!-- doctest: ports 8443 4403 -->",
            "<!-- file: a.toml -->",
            "```toml",
            "port = 8443",
            "```",
            "```console",
            "$ signalfire x \\",
            "    --y",
            "line one",
            "...",
            "$ serve &",
            "```",
            "<!-- not tested: a real radio -->",
            "```sh",
            "signalfire send --radio serial:/dev/ttyUSB0",
            "```",
            "```sh",
            "sudo -u signalfire /opt/signalfire/.venv/bin/signalfire gateway status",
            "```",
        ]
    )
    doc = parse(text)
    assert doc.ports == [8443, 4403]
    file, cmd, bg = doc.steps
    assert isinstance(file, FileBlock) and file.name == "a.toml" and file.text == "port = 8443\n"
    assert isinstance(cmd, Command) and cmd.text == "signalfire x \\\n    --y"
    assert cmd.expected == ["line one", "..."] and not cmd.background
    assert isinstance(bg, Command) and bg.background
    assert doc.untested_signalfire == [17]


def test_matching_wildcards() -> None:
    assert matches(["a ... c"], ["a b c"])
    assert matches(["a", "...", "z"], ["a", "z"])
    assert matches(["a", "...", "z"], ["a", "b", "c", "z"])
    assert not matches(["a", "z"], ["a", "b", "z"])
    assert not matches(["exit 0"], ["exit 1"])
    assert matches(["key id     ..."], ["key id     1646b62a9dabda4c"])


# -- the documents ----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("doc", DOCS)
def test_document_examples(doc: str, tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("the examples use curl (Debian: apt-get install curl)")
    ran = run_document(REPO / doc, tmp_path)
    assert ran >= 10, f"{doc}: only {ran} commands were tested"

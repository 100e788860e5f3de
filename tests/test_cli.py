"""The CLI contract, driven through the installed console script as other tools will drive it."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

SIGNALFIRE = shutil.which("signalfire", path=os.path.dirname(sys.executable)) or "signalfire"


def run(
    *args: str, stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SIGNALFIRE, *args], input=stdin, capture_output=True, text=True, cwd=cwd, timeout=60
    )


@pytest.fixture
def world(tmp_path: Path) -> Path:
    assert (
        run("network", "init", "--out", str(tmp_path / "net"), "--name", "yerevan").returncode == 0
    )
    assert run("keys", "new", "--out", str(tmp_path / "alice.key")).returncode == 0
    return tmp_path


def encode(world: Path, *extra: str) -> str:
    res = run(
        "report",
        "encode",
        "--identity",
        str(world / "alice.key"),
        "--network",
        str(world / "net" / "network.json"),
        *extra,
    )
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def decode(world: Path, packet: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return run(
        "report",
        "decode",
        packet,
        "--network-key",
        str(world / "net" / "network.key"),
        "--sender-key",
        str(world / "alice.key.pub"),
        "--json",
        *extra,
    )


def test_secrets_are_0600_and_public_files_are_readable(world: Path) -> None:
    def mode(p: Path) -> int:
        return stat.S_IMODE(p.stat().st_mode)

    assert mode(world / "alice.key") == 0o600
    assert mode(world / "net" / "network.key") == 0o600
    assert mode(world / "alice.key.pub") == 0o644
    assert mode(world / "net" / "network.json") == 0o644
    encode(world, "--status", "safe")
    assert mode(world / "alice.key.state") == 0o600
    # no secret in the public files
    private_pem = (world / "alice.key").read_text()
    assert "PRIVATE" not in (world / "alice.key.pub").read_text()
    assert private_pem.splitlines()[1] not in (world / "alice.key.pub").read_text()


def test_encode_then_decode_gives_every_field(world: Path) -> None:
    packet = encode(
        world,
        "--status",
        "need-supplies",
        "--needs",
        "water,medicine",
        "--people",
        "4",
        "--lat",
        "40.1792",
        "--lon",
        "44.4991",
        "--accuracy",
        "20",
        "--text",
        "Вода нужна",
        "--time",
        "2026-11-28T10:00:00Z",
    )
    res = decode(world, packet)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["status"] == "need-supplies"
    assert out["needs"] == ["water", "medicine"]
    assert out["people"] == 4
    assert abs(out["lat"] - 40.1792) < 1e-4 and abs(out["lon"] - 44.4991) < 1e-4
    assert out["text"] == "Вода нужна"
    assert out["time"] == "2026-11-28T10:00:00Z"
    assert out["seq"] == 0
    assert out["verified"] is True
    assert out["sender"] == json.loads((world / "alice.key.pub").read_text())["key_id"]
    assert len(out["id"]) == 32
    assert out["size"] == len(packet) // 2


def test_stdin_input_and_sequence_survives_restarts(world: Path) -> None:
    seqs = []
    for _ in range(3):
        packet = encode(world, "--status", "safe")
        res = run(
            "report",
            "decode",
            "-",
            "--network-key",
            str(world / "net" / "network.key"),
            "--sender-key",
            str(world / "alice.key.pub"),
            "--json",
            stdin=packet + "\n",
        )
        assert res.returncode == 0, res.stderr
        seqs.append(json.loads(res.stdout)["seq"])
    assert seqs == [0, 1, 2]
    packet = encode(world, "--status", "sos", "--seq", "10")
    assert json.loads(decode(world, packet).stdout)["seq"] == 10
    res = run(
        "report",
        "encode",
        "--identity",
        str(world / "alice.key"),
        "--network",
        str(world / "net" / "network.json"),
        "--status",
        "sos",
        "--seq",
        "4",
    )
    assert res.returncode == 1 and res.stdout == ""
    assert "already used" in res.stderr


@pytest.mark.parametrize(
    ("mangle", "code"),
    [
        (lambda h: h[:-2], "bad-signature"),
        (lambda h: h[:40], "truncated"),
        (lambda h: "02" + h[2:], "unknown-version"),
        (lambda h: h[:30] + ("0" if h[30] != "0" else "1") + h[31:], "bad-signature"),
        (lambda h: h + "00" * 120, "oversize"),
        (lambda h: "zz", "not hexadecimal"),
        (lambda h: "", "truncated"),
    ],
)
def test_invalid_input_gives_one_error_line_and_nothing_on_stdout(
    world: Path, mangle, code
) -> None:  # type: ignore[no-untyped-def]
    packet = encode(world, "--status", "sos", "--lat", "1", "--lon", "2")
    res = decode(world, mangle(packet))
    assert res.returncode != 0
    assert res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and code in lines[0], res.stderr


def test_unknown_sender_exits_3_and_says_what_to_do(world: Path) -> None:
    packet = encode(world, "--status", "sos")
    res = run("report", "decode", packet, "--network-key", str(world / "net" / "network.key"))
    assert res.returncode == 3 and res.stdout == ""
    assert "announcement" in res.stderr


def test_announcement_decodes_and_enrol_is_stable(world: Path) -> None:
    args = [
        "keys",
        "enrol",
        "--identity",
        str(world / "alice.key"),
        "--network",
        str(world / "net" / "network.json"),
    ]
    first = run(*args)
    again = run(*args)
    assert first.returncode == 0 and first.stdout == again.stdout
    res = run(
        "report",
        "decode",
        first.stdout.strip(),
        "--network-key",
        str(world / "net" / "network.key"),
        "--json",
    )
    out = json.loads(res.stdout)
    assert out["kind"] == "announcement" and out["verified"] is True and out["first_seq"] == 0


def test_decode_with_another_networks_key_fails(world: Path, tmp_path: Path) -> None:
    packet = encode(world, "--status", "sos")
    assert run("network", "init", "--out", str(tmp_path / "other")).returncode == 0
    res = run(
        "report",
        "decode",
        packet,
        "--network-key",
        str(tmp_path / "other" / "network.key"),
        "--sender-key",
        str(world / "alice.key.pub"),
        "--json",
    )
    assert res.returncode == 3  # alice's card holds no enrolment with this network
    assert res.stdout == ""


def test_refuses_to_overwrite_keys(world: Path) -> None:
    before = (world / "alice.key").read_bytes()
    res = run("keys", "new", "--out", str(world / "alice.key"))
    assert res.returncode == 1 and "--force" in res.stderr
    assert (world / "alice.key").read_bytes() == before
    res = run("network", "init", "--out", str(world / "net"))
    assert res.returncode == 1 and "already exists" in res.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"type": "signalfire-network", "version": 2}', "version"),
        (
            '{"type": "signalfire-network", "version": 1, "name": "x", '
            '"network_public_key": "abcd"}',
            "32 bytes",
        ),
    ],
)
def test_malformed_profile_gives_a_clear_error(world: Path, content: str, message: str) -> None:
    bad = world / "bad.json"
    bad.write_text(content)
    res = run(
        "report",
        "encode",
        "--identity",
        str(world / "alice.key"),
        "--network",
        str(bad),
        "--status",
        "safe",
    )
    assert res.returncode == 1 and res.stdout == ""
    assert message in res.stderr and str(bad) in res.stderr


def test_bad_arguments_are_explained(world: Path) -> None:
    for extra, message in [
        (["--status", "fine"], "unknown status"),
        (["--status", "sos", "--lat", "1"], "both --lat and --lon"),
        (["--status", "sos", "--lat", "95", "--lon", "1"], "latitude"),
        (["--status", "sos", "--needs", "beer"], "unknown need"),
        (["--status", "sos", "--time", "yesterday"], "ISO 8601"),
        (["--status", "sos", "--text", "ա" * 120], "shorten the text"),
    ]:
        res = run(
            "report",
            "encode",
            "--identity",
            str(world / "alice.key"),
            "--network",
            str(world / "net" / "network.json"),
            *extra,
        )
        assert res.returncode == 1 and res.stdout == "", extra
        assert message in res.stderr, (extra, res.stderr)


def test_missing_identity_says_how_to_create_one(tmp_path: Path, world: Path) -> None:
    res = run(
        "report",
        "encode",
        "--identity",
        str(tmp_path / "nope.key"),
        "--network",
        str(world / "net" / "network.json"),
        "--status",
        "safe",
    )
    assert res.returncode == 1
    assert "signalfire keys new" in res.stderr


def test_words_and_position_can_stay_out_of_the_shell_history(world: Path) -> None:
    base = ["report", "encode", "--identity", str(world / "alice.key"),
            "--network", str(world / "net" / "network.json"), "--status", "trapped"]  # fmt: skip
    piped = run(*base, "--text", "-", stdin="under the school, 3 of us\n")
    assert piped.returncode == 0, piped.stderr
    fields = json.loads(decode(world, piped.stdout.strip()).stdout)
    assert fields["text"] == "under the school, 3 of us"
    asked = run(*base, "--ask", stdin="40.1811, 44.5136\nnear the bakery\n")
    assert asked.returncode == 0, asked.stderr
    fields = json.loads(decode(world, asked.stdout.strip().splitlines()[-1]).stdout)
    assert fields["text"] == "near the bakery"
    assert abs(fields["lat"] - 40.1811) < 1e-3 and abs(fields["lon"] - 44.5136) < 1e-3
    nothing = run(*base, "--ask", stdin="\n\n")
    fields = json.loads(decode(world, nothing.stdout.strip().splitlines()[-1]).stdout)
    assert fields["text"] is None and fields["lat"] is None
    wrong = run(*base, "--ask", stdin="the old mill\n")
    assert wrong.returncode == 1 and "is not lat,lon" in wrong.stderr

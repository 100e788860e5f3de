"""scripts/make-wheelhouse, and installing signalfire from its output with no network.

Builds the wheelhouse for this machine's architecture (run-time dependencies only)
into build/wheelhouse-test/, where it stays: a second run downloads nothing unless
pyproject.toml changed. Then a fresh virtual environment installs signalfire from
it with pip cut off from every index (``--no-index``, ``PIP_NO_INDEX=1``, an index
URL and proxies that lead nowhere, no pip configuration files), as on a Raspberry Pi
in the field (docs/operator.md section 1), and runs the installed command.
"""

from __future__ import annotations

import os
import platform
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "build" / "wheelhouse-test"
NOWHERE = "http://127.0.0.1:9"  # the discard port: nothing answers there


def _offline_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("PIP_", "SIGNALFIRE_"))}
    env.update(
        PIP_CONFIG_FILE=os.devnull,  # no find-links or extra indexes from this machine's config
        PIP_NO_INDEX="1",
        PIP_INDEX_URL=NOWHERE + "/simple",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        http_proxy=NOWHERE,
        https_proxy=NOWHERE,
        HTTP_PROXY=NOWHERE,
        HTTPS_PROXY=NOWHERE,
    )
    return env


def _run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, capture_output=True, text=True, check=False, **kwargs)
    assert result.returncode == 0, (
        f"{' '.join(map(str, args))} exited {result.returncode}\n"
        f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
    )
    return result


@pytest.mark.slow
def test_offline_install_from_the_wheelhouse(tmp_path: Path) -> None:
    arch = platform.machine()
    if arch not in ("x86_64", "aarch64"):
        pytest.skip(f"make-wheelhouse builds for x86_64 and aarch64, not {arch}")
    if sys.version_info[:2] != (3, 11):
        pytest.skip("the wheelhouse is built for Python 3.11, the Pi's")
    if shutil.which("sha256sum") is None:
        pytest.skip("sha256sum (coreutils) is missing")

    built = _run(
        ["bash", str(REPO / "scripts" / "make-wheelhouse"), "--arch", arch, "--out", str(OUT)],
        cwd=REPO,
        timeout=900,
    )
    wheelhouse = OUT / arch
    assert f"== {arch}:" in built.stdout
    wheels = sorted(p.name for p in wheelhouse.glob("*.whl"))
    names = {w.split("-")[0].lower().replace("_", "-") for w in wheels}
    # run-time dependencies with compiled parts, and signalfire itself; no dev tools
    for needed in ("signalfire", "cryptography", "psycopg-binary", "pydantic-core",
                   "argon2-cffi-bindings", "meshtastic", "fastapi", "uvicorn"):  # fmt: skip
        assert needed in names, f"{needed} missing from {wheelhouse}: {wheels}"
    for dev in ("pytest", "hypothesis", "ruff", "mypy", "selenium"):
        assert dev not in names, f"{dev} is a dev tool and must not be in the wheelhouse"
    sums = (wheelhouse / "SHA256SUMS").read_text().splitlines()
    assert sorted(line.split()[-1] for line in sums) == wheels
    _run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=wheelhouse)
    assert (OUT / "README.txt").is_file()
    assert (OUT / "gateway.example.toml").is_file()

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], timeout=300)
    bin_dir = venv / "bin"
    env = _offline_env()
    _run(
        [str(bin_dir / "python"), "-m", "pip", "install", "--quiet", "--no-index",
         "--find-links", str(wheelhouse), "signalfire"],
        env=env,
        timeout=600,
    )  # fmt: skip
    _run([str(bin_dir / "python"), "-m", "pip", "check"], env=env)

    signalfire = str(bin_dir / "signalfire")
    # The installed command, not this checkout's: run it from elsewhere, with the
    # venv's bin first on PATH and nothing of the checkout on sys.path.
    run_env = {**env, "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"}
    run_env.pop("PYTHONPATH", None)
    helped = _run([signalfire, "--help"], env=run_env, cwd=tmp_path)
    assert "signalfire: signed, encrypted status reports" in helped.stdout
    made = _run([signalfire, "keys", "new", "--out", "gw.key"], env=run_env, cwd=tmp_path)
    assert "key id" in made.stdout
    assert stat.S_IMODE((tmp_path / "gw.key").stat().st_mode) == 0o600
    assert (tmp_path / "gw.key.pub").is_file()
    # The heavy parts import too: the gateway daemon and the coordinator's web service.
    where = _run(
        [str(bin_dir / "python"), "-c",
         "import signalfire, signalfire.gateway.daemon, signalfire.coordinator.api; "
         "print(signalfire.__file__)"],
        env=run_env,
        cwd=tmp_path,
    )  # fmt: skip
    assert str(venv) in where.stdout, f"signalfire came from {where.stdout.strip()}"
    _run([signalfire, "coordinator", "--help"], env=run_env, cwd=tmp_path)

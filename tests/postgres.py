"""A throw-away PostgreSQL cluster for tests: Debian's server binaries, initdb, pg_ctl.

    cluster = PostgresCluster()     # finds initdb/pg_ctl (newest /usr/lib/postgresql/*/bin)
    cluster.start()                 # initdb into a temp dir, pg_ctl start on a free port
    cluster.url                     # postgresql+psycopg://postgres@127.0.0.1:PORT/postgres
    cluster.stop()                  # pg_ctl stop, then the directory is deleted

initdb and postgres refuse to run as root. Under root (a fresh Debian box, a
container, CI images run as root) the cluster belongs to the ``postgres``
system user that Debian's postgresql-common package creates (or ``nobody``
when there is none): its directory is made under /tmp and chowned to that
user, and the binaries run with that user's uid via subprocess's
``user=``/``group=`` (no runuser or su needed). As any other user, the
cluster is the current user's.

Durability is switched off (fsync, synchronous_commit, full_page_writes): the
tests check behaviour, not the disk, and nothing outlives the session.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

HOST = "127.0.0.1"
SUPERUSER = "postgres"
START_TIMEOUT_S = 30
_DEBIAN_BINDIRS = "/usr/lib/postgresql"


class PostgresError(RuntimeError):
    pass


def find_bindir() -> Path | None:
    """The newest Debian server version with initdb and pg_ctl, else initdb on PATH."""
    versions: list[tuple[tuple[int, ...], Path]] = []
    root = Path(_DEBIAN_BINDIRS)
    if root.is_dir():
        for child in root.iterdir():
            bindir = child / "bin"
            if re.fullmatch(r"\d+(\.\d+)*", child.name) and all(
                (bindir / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")
            ):
                versions.append((tuple(int(p) for p in child.name.split(".")), bindir))
    if versions:
        return max(versions)[1]
    # Other distributions put the server binaries on PATH.
    initdb = shutil.which("initdb")
    if initdb is not None:
        bindir = Path(initdb).resolve().parent
        if (bindir / "pg_ctl").is_file():
            return bindir
    return None


def require_bindir() -> Path:
    """The server binaries' directory; skip the test loudly without them, or fail it in CI."""
    found = find_bindir()
    if found is not None:
        return found
    reason = (
        "POSTGRESQL SERVER NOT INSTALLED: no initdb/pg_ctl in /usr/lib/postgresql/*/bin or on "
        "PATH, so the tests against PostgreSQL did not run (SQLite only). Install it with "
        "scripts/setup (as root) or `sudo apt-get install postgresql`."
    )
    if os.environ.get("CI") == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _cluster_owner() -> pwd.struct_passwd | None:
    """Whom the cluster runs as when we are root (None: as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise PostgresError(
        "running as root and there is neither a `postgres` nor a `nobody` user to own the "
        "test cluster (initdb refuses root); install Debian's postgresql package, which "
        "creates the postgres user"
    )


class PostgresCluster:
    """One postmaster with its data directory, unix socket and log in a temp directory."""

    def __init__(self, bindir: Path | None = None) -> None:
        self.bindir = bindir or require_bindir()
        self.owner = _cluster_owner()
        # Under /tmp, not pytest's tmp_path: root's pytest directory is mode 0700, which
        # the postgres user cannot enter.
        self.workdir = Path(tempfile.mkdtemp(prefix="signalfire-pg-"))
        self.data_dir = self.workdir / "data"
        self.socket_dir = self.workdir / "sock"
        self.log_path = self.workdir / "postgres.log"
        self.port = 0
        self.running = False
        self.socket_dir.mkdir()
        if self.owner is not None:
            for path in (self.workdir, self.socket_dir):
                os.chown(path, self.owner.pw_uid, self.owner.pw_gid)

    @property
    def url(self) -> str:
        """The superuser's URL of the maintenance database (trust authentication)."""
        return f"postgresql+psycopg://{SUPERUSER}@{HOST}:{self.port}/postgres"

    def _run(self, tool: str, *args: str, timeout: float = 60) -> None:
        owner = self.owner
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC"}
        if owner is not None:
            env["HOME"] = str(self.workdir)  # not root's home, which postgres cannot read
        result = subprocess.run(
            [str(self.bindir / tool), *args],
            cwd=self.workdir,
            env=env,
            user=owner.pw_uid if owner else None,
            group=owner.pw_gid if owner else None,
            extra_groups=[] if owner else None,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise PostgresError(
                f"{tool} {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout}{result.stderr}\n{self.log_tail()}"
            )

    def start(self) -> None:
        if self.running:
            return
        if not self.data_dir.exists():
            self._run(
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            )
        # A free port can be taken between the probe and the bind: try a few.
        for attempt in range(3):
            self.port = _free_port()
            options = " ".join(
                [
                    f"-p {self.port}",
                    f"-k {self.socket_dir}",
                    f"-c listen_addresses={HOST}",
                    "-c fsync=off",
                    "-c synchronous_commit=off",
                    "-c full_page_writes=off",
                    # every test gets its own database and engine pool
                    "-c max_connections=200",
                ]
            )
            try:
                self._run(
                    "pg_ctl",
                    "-D",
                    str(self.data_dir),
                    "-l",
                    str(self.log_path),
                    "-w",
                    "-t",
                    str(START_TIMEOUT_S),
                    "-o",
                    options,
                    "start",
                    timeout=START_TIMEOUT_S + 10,
                )
            except PostgresError:
                if attempt == 2 or "already in use" not in self.log_tail():
                    raise
                continue
            break
        self.running = True
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        dsn = f"host={HOST} port={self.port} user={SUPERUSER} dbname=postgres"
        while True:
            try:
                with psycopg.connect(dsn, connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise PostgresError(
                        f"PostgreSQL on port {self.port} did not accept connections in "
                        f"{START_TIMEOUT_S}s:\n{self.log_tail()}"
                    ) from None
                time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server (immediate: nothing here needs saving) and delete everything."""
        try:
            if self.running and (self.data_dir / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop")
        finally:
            self.running = False
            shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<PostgresCluster {HOST}:{self.port} {state} in {self.workdir}>"

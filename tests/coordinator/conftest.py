"""Fixtures for coordinator tests; the helpers live in kit.py.

Every test that uses the ``world`` (or ``store``) fixture runs twice: against
SQLite and against PostgreSQL, the same suite. PostgreSQL is a throw-away
cluster of Debian's server binaries started once per session
(tests/postgres.py), with a fresh database per test; without the binaries
those runs are skipped with a loud reason (failed when CI=true). Tests marked
``sqlite_only`` (SQLite's own settings) run against SQLite alone.
SIGNALFIRE_TEST_POSTGRES=<admin URL> uses an existing server instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from postgres import PostgresCluster
from signalfire.coordinator.store import CoordinatorStore

from .kit import POSTGRES_URL, World, drop_postgres_database, fresh_postgres_database
from .live import LiveCoordinator, start_live

BACKENDS = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        sqlite_only = metafunc.definition.get_closest_marker("sqlite_only") is not None
        metafunc.parametrize(
            "backend", ["sqlite"] if sqlite_only else list(BACKENDS), indirect=True
        )


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """The superuser URL of the session's PostgreSQL cluster."""
    if POSTGRES_URL:
        yield POSTGRES_URL
        return
    cluster = PostgresCluster()  # skips (fails in CI) without the server binaries
    cluster.start()
    try:
        yield cluster.url
    finally:
        cluster.stop()


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A new, empty database of the backend under test."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'coordinator.db'}"
        return
    admin: str = request.getfixturevalue("postgres_admin_url")
    url = fresh_postgres_database(admin)
    yield url
    drop_postgres_database(admin, url)


@pytest.fixture
def world(tmp_path: Path, database_url: str) -> World:
    return World(tmp_path, database_url)


@pytest.fixture
def store(world: World) -> Iterator[CoordinatorStore]:
    s = world.store()
    yield s
    s.close()


@pytest.fixture
def live_coordinator(tmp_path: Path) -> Iterator[LiveCoordinator]:
    """A running coordinator service on SQLite with a viewer, a responder and an admin."""
    live = start_live(tmp_path)
    yield live
    live.stop()


@pytest.fixture
def live_any(tmp_path: Path, database_url: str) -> Iterator[LiveCoordinator]:
    """As live_coordinator, on each backend (SQLite and PostgreSQL)."""
    live = start_live(tmp_path, database_url)
    yield live
    live.stop()

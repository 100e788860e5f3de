"""Fixtures for coordinator tests; the helpers live in kit.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from signalfire.coordinator.store import CoordinatorStore

from .kit import World


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


@pytest.fixture
def store(world: World) -> Iterator[CoordinatorStore]:
    s = world.store()
    yield s
    s.close()

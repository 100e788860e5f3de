"""Fixtures for the gateway tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mosquitto import Mosquitto


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Callable[..., Mosquitto]]:
    """Factory for real Mosquitto brokers: ``mosquitto(users={...}, tls=True, start=True)``.

    Each broker gets its own directory, port, persistence and log under tmp_path;
    all are stopped when the test ends. Skips (fails in CI) without the binary.
    """
    brokers: list[Mosquitto] = []

    def make(
        *,
        users: dict[str, str] | None = None,
        start: bool = True,
        port: int | None = None,
        tls: bool = False,
        client_certificates: bool = False,
        extra_config: str = "",
    ) -> Mosquitto:
        broker = Mosquitto(
            tmp_path / f"mosquitto-{len(brokers)}",
            users=users,
            port=port,
            tls=tls,
            client_certificates=client_certificates,
            extra_config=extra_config,
        )
        brokers.append(broker)
        if start:
            broker.start()
        return broker

    yield make
    for broker in brokers:
        broker.stop()


@pytest.fixture
def broker(mosquitto: Callable[..., Mosquitto]) -> Mosquitto:
    """A running anonymous Mosquitto broker on a free loopback port."""
    return mosquitto()

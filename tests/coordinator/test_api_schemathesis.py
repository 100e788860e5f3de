"""Schemathesis over the coordinator's OpenAPI schema: generated requests, every check it has.

Driven from Hypothesis directly (schemathesis's pytest plugin does not run
under pytest 9): one property test per operation in the schema. Each case
runs as an admin with a fresh API token, because a case may legitimately
change the admin's password, which ends every token of the user. Schemathesis's
own "ignored auth" check is left out: it mutates credentials it generated,
not the bearer token given here; test_api.py walks every operation without
and with wrong credentials instead. Two operations are left to test_api.py
too: the event stream never ends by itself, and logging out revokes the very
token the run uses.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import ignored_auth

from signalfire.coordinator.api import ApiSettings, create_coordinator_app

from .live import PASSWORDS, LiveCoordinator, start_live

_EXCLUDED = {("GET", "/api/v1/events"), ("DELETE", "/api/v1/session")}
EXAMPLES = int(os.environ.get("SIGNALFIRE_SCHEMATHESIS_EXAMPLES", "30"))


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCoordinator]:
    tmp: Path = tmp_path_factory.mktemp("schemathesis")
    running = start_live(tmp)
    running.add_reports(
        [
            {"status": "sos", "lat": 40.18, "lon": 44.51, "text": "help <b>now</b>"},
            {"status": "safe", "sender": "a"},
            {"status": "cancel", "sender": "a", "lat": 40.1, "lon": 44.6},
            {"status": "missing-person", "people": 2, "text": "Арам и Нина"},
        ]
    )
    yield running
    running.stop()


def _schema(live: LiveCoordinator) -> Any:
    # A second app on the same database, called in-process (ASGI): Hypothesis's
    # many cases need no sockets, and the login throttle lets them all through.
    app = create_coordinator_app(
        ingestor=live.ingestor,
        feed=live.feed,
        accounts=live.accounts,
        settings=ApiSettings(login_per_minute=60_000, login_burst=10_000),
    )
    return schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)


def test_schemathesis_finds_nothing(live: LiveCoordinator) -> None:
    admin = PASSWORDS["admin"][0]
    tested = []
    for result in _schema(live).get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in _EXCLUDED:
            continue
        tested.append(f"{operation.method.upper()} {operation.path}")

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,  # the same cases every run: a failure here is reproducible
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            token = live.accounts.create_token(admin, "schemathesis", time.time(), actor="test")
            case.call_and_validate(
                headers={"Authorization": f"Bearer {token}"}, excluded_checks=[ignored_auth]
            )

        run()
    assert len(tested) >= 15, tested

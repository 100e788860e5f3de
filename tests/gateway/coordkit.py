"""A real coordinator (store, ingest, app, uvicorn) on a fixed loopback port, restartable."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import sqlalchemy as sa
import uvicorn

from signalfire import wire
from signalfire.coordinator.app import create_app
from signalfire.coordinator.ingest import Ingestor
from signalfire.coordinator.store import CoordinatorStore
from signalfire.keyfiles import load_network_key
from signalfire.profile import NetworkProfile


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class CoordinatorServer:
    def __init__(
        self, tmp: Path, profile: NetworkProfile, network_key: Path, gateways: dict[str, bytes]
    ) -> None:
        self.url_db = f"sqlite:///{tmp / 'coordinator.db'}"
        self.profile = profile
        self.network_key = network_key
        self.gateways = gateways
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._store: CoordinatorStore | None = None

    def start(self) -> None:
        private = load_network_key(self.network_key)
        keyring = wire.Keyring(self.profile.public_key, private)
        self._store = CoordinatorStore(self.url_db)
        ingestor = Ingestor(self._store, keyring, enrolled_gateways=list(self.gateways.items()))
        app = create_app(ingestor, rate_per_s=1000, burst=1000)
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_config=None, lifespan="off",
            access_log=False,
        )  # fmt: skip
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("coordinator did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        if self._store is not None:
            self._store.close()
        self._server = self._thread = self._store = None

    def query(self, sql: str) -> list[tuple[object, ...]]:
        engine = sa.create_engine(self.url_db)
        try:
            with engine.connect() as conn:
                return [tuple(r) for r in conn.execute(sa.text(sql))]
        finally:
            engine.dispose()

    def report_ids(self) -> list[str]:
        return [str(r[0]) for r in self.query("SELECT id FROM reports")]

"""The prediction log against a real MySQL-protocol server (TEST_MYSQL_URL).

The outage test puts a small TCP proxy between the service and the server and stops
it mid-run: the database "goes away" for the service while the test can still read
the real server directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.engine import Engine, make_url

from {{ cookiecutter.package_name }}.db import predictions
from {{ cookiecutter.package_name }}.settings import Settings

from conftest import DEMO_NAME, item, serve

MYSQL_URL = os.environ.get("TEST_MYSQL_URL")
needs_mysql = pytest.mark.skipif(
    not MYSQL_URL,
    reason="TEST_MYSQL_URL is not set: no MySQL-protocol server to log to "
    "(e.g. TEST_MYSQL_URL=mysql+pymysql://user:pw@127.0.0.1:3306/db)",
)


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target; stop() cuts every connection.

    ``delay`` (seconds) holds every chunk back before forwarding it: a slow database.
    """

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self.delay = 0.0

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        listener.settimeout(0.1)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            self._conns.clear()

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                if self.delay:
                    time.sleep(self.delay)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def mysql_engine() -> Iterator[Engine]:
    assert MYSQL_URL is not None
    engine = create_engine(MYSQL_URL, pool_pre_ping=True)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    assert MYSQL_URL is not None
    url = make_url(MYSQL_URL)
    tcp = TcpProxy(url.host or "127.0.0.1", url.port or 3306)
    tcp.start()
    try:
        yield tcp
    finally:
        tcp.stop()


def db_settings(factory: Callable[..., Settings], port: int, **overrides: object) -> Settings:
    assert MYSQL_URL is not None
    url = make_url(MYSQL_URL)
    values: dict[str, object] = {
        "db_enabled": True,
        "db_host": "127.0.0.1",
        "db_port": port,
        "db_user": url.username,
        "db_password": url.password,
        "db_name": url.database,
        "dev_mode": True,  # the test server's password may be a simple one
        "db_flush_interval_ms": 50,
        "db_retry_max_s": 0.5,
        "db_connect_timeout_s": 1,
        "db_read_timeout_s": 2,
        "db_write_timeout_s": 2,
    }
    values.update(overrides)
    return factory(**values)


def logged(engine: Engine, ids: list[str]) -> dict[str, dict[str, object]]:
    with engine.connect() as conn:
        rows = conn.execute(select(predictions).where(predictions.c.request_id.in_(ids)))
        return {row.request_id: dict(row._mapping) for row in rows}


async def wait_for_rows(
    engine: Engine, ids: list[str], within: float = 15
) -> dict[str, dict[str, object]]:
    deadline = time.monotonic() + within
    while True:
        rows = await asyncio.to_thread(logged, engine, ids)
        if len(rows) == len(ids) or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(0.1)


async def wait_db_up(client: httpx.AsyncClient, within: float = 30) -> None:
    """Wait until the writer has connected and created the table."""
    deadline = time.monotonic() + within
    while (await client.get("/ready")).json()["db"] != "up":
        assert time.monotonic() < deadline, "the prediction log never connected"
        await asyncio.sleep(0.05)


async def predict(client: httpx.AsyncClient, request_id: str) -> httpx.Response:
    return await client.post(
        "/predict", json={"inputs": [item()]}, headers={"X-Request-ID": request_id}
    )


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", text, re.M)
    assert match, name
    return float(match.group(1))


@pytest.mark.mysql
@needs_mysql
def test_rows_are_written_with_the_request_ids(
    settings_factory: Callable[..., Settings], mysql_engine: Engine, proxy: TcpProxy
) -> None:
    async def go() -> None:
        async with serve(db_settings(settings_factory, proxy.port)) as (_, client):
            await wait_db_up(client)
            ids = [f"rows-{uuid.uuid4().hex}" for _ in range(5)]
            responses = [await predict(client, rid) for rid in ids]
            assert all(r.status_code == 200 for r in responses)
            rows = await wait_for_rows(mysql_engine, ids)
            assert set(rows) == set(ids)
            for response in responses:
                row = rows[response.json()["request_id"]]
                assert row["status"] == "ok"
                assert row["n_items"] == 1
                assert row["model_version"] == "1.0.0"
                assert row["model_name"] == DEMO_NAME
                assert len(str(row["input_sha256"])) == 64
                assert json.loads(str(row["outputs"])) == response.json()["outputs"]
            ready = (await client.get("/ready")).json()
            assert ready["db"] == "up"

    asyncio.run(go())


@pytest.mark.mysql
@needs_mysql
def test_outage_mid_run_degrades_logging_not_predictions(
    settings_factory: Callable[..., Settings], mysql_engine: Engine, proxy: TcpProxy
) -> None:
    async def go() -> None:
        settings = db_settings(settings_factory, proxy.port, db_queue_max=5, db_batch_max=2)
        async with serve(settings) as (_, client):
            await wait_db_up(client)
            before = [f"before-{uuid.uuid4().hex}" for _ in range(3)]
            for rid in before:
                assert (await predict(client, rid)).status_code == 200
            assert len(await wait_for_rows(mysql_engine, before)) == 3

            proxy.stop()  # the database is gone for the service
            during = [f"during-{uuid.uuid4().hex}" for _ in range(30)]
            for rid in during:
                start = time.monotonic()
                response = await predict(client, rid)
                assert response.status_code == 200
                assert time.monotonic() - start < 1.0
            deadline = time.monotonic() + 10
            while (await client.get("/ready")).json()["db"] != "down":
                assert time.monotonic() < deadline, "the outage never showed in /ready"
                await asyncio.sleep(0.1)
            ready = await client.get("/ready")
            assert ready.status_code == 200  # still serving: the log is not required
            metrics = (await client.get("/metrics")).text
            assert metric(metrics, "db_write_failures_total") >= 1
            assert metric(metrics, "db_queue_dropped_total") >= 10 - 3 - 2
            assert metric(metrics, "db_up") == 0
            assert metric(metrics, "db_queue_depth") <= 5

            proxy.start()  # the database is back
            # Every record of the outage ends up written or dropped (and counted): the
            # queue (5) plus the batch held for retry (2) survive, the rest is dropped.
            deadline = time.monotonic() + 20
            while True:
                metrics = (await client.get("/metrics")).text
                dropped = metric(metrics, "db_queue_dropped_total")
                kept = await asyncio.to_thread(logged, mysql_engine, during)
                if len(kept) + dropped == len(during):
                    break
                assert time.monotonic() < deadline, (len(kept), dropped)
                await asyncio.sleep(0.1)
            assert 1 <= len(kept) <= 7
            assert (await client.get("/ready")).json()["db"] == "up"
            after = [f"after-{uuid.uuid4().hex}" for _ in range(3)]
            for rid in after:
                assert (await predict(client, rid)).status_code == 200
            rows = await wait_for_rows(mysql_engine, after, within=20)
            assert set(rows) == set(after)
            assert (await client.get("/ready")).json()["db"] == "up"

    asyncio.run(go())


@pytest.mark.mysql
@needs_mysql
def test_slow_database_does_not_slow_predictions(
    settings_factory: Callable[..., Settings], mysql_engine: Engine, proxy: TcpProxy
) -> None:
    async def go() -> None:
        settings = db_settings(settings_factory, proxy.port, db_read_timeout_s=10)
        async with serve(settings) as (_, client):
            await wait_db_up(client)
            proxy.delay = 1.5  # every round trip to the database now takes seconds
            slow = [f"slow-{uuid.uuid4().hex}" for _ in range(10)]
            for rid in slow:
                start = time.monotonic()
                assert (await predict(client, rid)).status_code == 200
                assert time.monotonic() - start < 0.5
            proxy.delay = 0.0
            rows = await wait_for_rows(mysql_engine, slow, within=30)
            assert set(rows) == set(slow)  # late, but nothing lost

    asyncio.run(go())


def test_unreachable_database_never_fails_predictions(
    settings_factory: Callable[..., Settings],
) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now

    async def go() -> None:
        settings = settings_factory(
            db_enabled=True,
            db_host="127.0.0.1",
            db_port=port,
            db_password="not-a-placeholder-9",
            db_flush_interval_ms=20,
            db_retry_max_s=0.2,
            db_queue_max=3,
            db_batch_max=2,
            db_connect_timeout_s=1,
            db_shutdown_flush_s=1,
        )
        async with serve(settings) as (app, client):
            # Memory holds at most one batch (2) plus the queue (3): the rest is dropped.
            for i in range(10):
                response = await predict(client, f"offline-{i}")
                assert response.status_code == 200
            deadline = time.monotonic() + 10
            while (await client.get("/ready")).json()["db"] != "down":
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            ready = await client.get("/ready")
            assert ready.status_code == 200
            assert ready.json()["db_error"]  # the reason is shown
            metrics = (await client.get("/metrics")).text
            assert metric(metrics, "db_queue_dropped_total") >= 10 - 3 - 2
            stopping = time.monotonic()
        # Shutdown tried to flush for DB_SHUTDOWN_FLUSH_S, then gave up: bounded, and
        # every record is accounted for as written or dropped.
        assert time.monotonic() - stopping < 5
        final = app.state.runtime.metrics.render().decode()
        assert metric(final, "db_queue_dropped_total") == 10
        assert metric(final, "db_rows_written_total") == 0

    asyncio.run(go())

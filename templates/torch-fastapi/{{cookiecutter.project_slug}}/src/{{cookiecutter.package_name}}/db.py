"""The prediction log: rows in MySQL, written off the request path.

Requests put a record into a bounded in-memory queue and return at once. A writer
thread takes records in batches and inserts them. When the database is down, slow or
lost mid-run, the writer keeps (at most) one batch to retry, the queue fills up and
further records are dropped and counted: memory stays bounded and predictions never
wait for the database. The writer reconnects by itself with exponential backoff.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    insert,
    text,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import URL

from .metrics import Metrics
from .settings import Settings

log = logging.getLogger(__name__)

#: Longest nap of the writer while a batch fills: a full batch waits at most this long.
_LINGER_NAP_S = 0.05

metadata = MetaData()

#: One row per answered /predict call (and per failed one, with status "error").
predictions = Table(
    "predictions",
    metadata,
    Column("id", BigInteger().with_variant(mysql.BIGINT(unsigned=True), "mysql"), primary_key=True),
    Column("request_id", String(64), nullable=False),
    Column("created_at", DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql"), nullable=False),
    Column("model_name", String(128), nullable=False),
    Column("model_version", String(64), nullable=False),
    Column("n_items", Integer, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("status", String(16), nullable=False),
    Column("input_sha256", String(64), nullable=False),
    Column("outputs", Text().with_variant(mysql.MEDIUMTEXT(), "mysql"), nullable=True),
    Index("ix_predictions_request_id", "request_id"),
    Index("ix_predictions_created_at", "created_at"),
    mysql_engine="InnoDB",
    mysql_charset="utf8mb4",
)


class DbState(StrEnum):
    """What ``/ready`` reports about the database."""

    DISABLED = "disabled"
    CONNECTING = "connecting"
    UP = "up"
    DOWN = "down"


@dataclass(frozen=True)
class PredictionRecord:
    """One row of the prediction log."""

    request_id: str
    created_at: datetime
    model_name: str
    model_version: str
    n_items: int
    latency_ms: float
    status: str
    input_sha256: str
    outputs: str | None


def _row(record: PredictionRecord) -> dict[str, Any]:
    """The record as the column-to-value mapping the INSERT takes.

    A shallow copy of the instance's fields: ``dataclasses.asdict`` would deep-copy
    every value, several microseconds per record for nothing (the values are immutable).
    """
    return dict(vars(record))


def database_url(settings: Settings) -> URL:
    """SQLAlchemy URL of the log database (PyMySQL driver, utf8mb4)."""
    password = settings.db_password.get_secret_value() if settings.db_password else None
    return URL.create(
        "mysql+pymysql",
        username=settings.db_user,
        password=password,
        host=settings.db_host,
        port=settings.db_port,
        database=settings.db_name,
        query={"charset": "utf8mb4"},
    )


def make_engine(settings: Settings) -> Engine:
    """An engine with short timeouts, so a dead database is noticed in seconds."""
    return create_engine(
        database_url(settings),
        # One writer thread: one connection is all it needs.
        pool_size=1,
        max_overflow=0,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={
            "connect_timeout": settings.db_connect_timeout_s,
            "read_timeout": settings.db_read_timeout_s,
            "write_timeout": settings.db_write_timeout_s,
        },
    )


class PredictionLog:
    """Bounded queue plus a batched writer thread for the ``predictions`` table."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self._settings = settings
        self._metrics = metrics
        self._queue: queue.Queue[PredictionRecord] = queue.Queue(maxsize=settings.db_queue_max)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._engine: Engine | None = None
        self._schema_ready = False
        self.state = DbState.DISABLED if not settings.db_enabled else DbState.CONNECTING
        self.last_error: str | None = None
        metrics.db_queue_depth.set_function(self._queue.qsize)

    def start(self) -> None:
        """Start the writer thread (nothing happens when the log is disabled)."""
        if self.state is DbState.DISABLED or self._thread is not None:
            return
        # A daemon thread: a database that hangs must never keep the process alive.
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def submit(self, record: PredictionRecord) -> bool:
        """Queue a record without blocking; False (and counted) when it was dropped."""
        if self.state is DbState.DISABLED:
            return False
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self._metrics.db_dropped.inc()
            return False
        return True

    def stop(self) -> None:
        """Flush what is queued (bounded by DB_SHUTDOWN_FLUSH_S), then stop the writer."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(self._settings.db_shutdown_flush_s + self._settings.db_write_timeout_s)
        left = self._queue.qsize()
        if left:
            self._metrics.db_dropped.inc(left)
            log.warning("prediction log records not written at shutdown", extra={"count": left})
        if self._engine is not None:
            self._engine.dispose()

    # -- writer thread -------------------------------------------------------------

    def _run(self) -> None:
        backoff = 0.0
        pending: list[dict[str, Any]] = []
        deadline: float | None = None
        while True:
            if self._stop.is_set():
                if deadline is None:
                    deadline = time.monotonic() + self._settings.db_shutdown_flush_s
                if (not pending and self._queue.empty()) or time.monotonic() > deadline:
                    if pending:
                        self._metrics.db_dropped.inc(len(pending))
                    return
            if backoff:
                # Jitter keeps many replicas from retrying in step.
                delay = backoff * random.uniform(0.8, 1.2)  # noqa: S311 - not crypto
                if self._stop.is_set():
                    time.sleep(min(delay, 0.25))  # flushing at shutdown: short pauses
                else:
                    self._stop.wait(delay)  # wakes at once when shutdown begins
            if not pending:
                pending = self._take_batch()
                if not pending:
                    if self.state is not DbState.UP and not self._stop.is_set():
                        # Nothing to write: use the quiet time to (re)connect and create
                        # the table, so /ready shows the database state early.
                        try:
                            self._ensure_schema()
                            self.ping()
                        except Exception as exc:  # reported through state and logs
                            self._mark_down(exc)
                            backoff = self._grow(backoff)
                        else:
                            self._mark_up()
                            backoff = 0.0
                    continue
            try:
                self._ensure_schema()
                self._write(pending)
            except Exception as exc:  # any driver or network error: retry later
                self._metrics.db_write_failures.inc()
                self._mark_down(exc)
                backoff = self._grow(backoff)
                continue
            self._metrics.db_rows_written.inc(len(pending))
            pending = []
            backoff = 0.0
            self._mark_up()

    def _grow(self, backoff: float) -> float:
        """Next retry delay: doubling from 0.25 s up to DB_RETRY_MAX_S."""
        return min(max(backoff * 2, 0.25), self._settings.db_retry_max_s)

    def _take_batch(self) -> list[dict[str, Any]]:
        """Wait for a record, then gather more until DB_BATCH_MAX or DB_FLUSH_INTERVAL_MS.

        A batch is written when it is full or when its first record has waited one
        flush interval, whichever comes first. Lingering costs nothing on the request
        path and makes the batches large: an INSERT of one row costs the writer about
        20 times the CPU per row of an INSERT of a hundred, and that CPU is taken from
        the event loop and the inference thread of the same process. While it lingers
        the writer sleeps rather than waiting on the queue, so that records arriving
        do not wake it (and take the GIL) one by one.
        """
        interval = self._settings.db_flush_interval_ms / 1000
        try:
            first = self._queue.get(timeout=interval)
        except queue.Empty:
            return []
        batch = [_row(first)]
        write_at = time.monotonic() + interval
        while True:
            while len(batch) < self._settings.db_batch_max:
                try:
                    batch.append(_row(self._queue.get_nowait()))
                except queue.Empty:
                    break
            left = write_at - time.monotonic()
            if len(batch) >= self._settings.db_batch_max or left <= 0 or self._stop.is_set():
                return batch
            # Wakes at once when shutdown begins; then what is there is written.
            self._stop.wait(min(left, _LINGER_NAP_S))

    def _ensure_schema(self) -> None:
        if self._engine is None:
            self._engine = make_engine(self._settings)
        if not self._schema_ready:
            # create_all checks first: running it at every start-up is safe.
            metadata.create_all(self._engine, checkfirst=True)
            self._schema_ready = True

    def _write(self, rows: list[dict[str, Any]]) -> None:
        if self._engine is None:  # pragma: no cover - _ensure_schema runs first
            raise RuntimeError("no database engine")
        with self._engine.begin() as conn:
            conn.execute(insert(predictions), rows)

    def ping(self) -> None:
        """Raise when the database does not answer (used by tests and diagnostics)."""
        engine = self._engine or make_engine(self._settings)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def _mark_up(self) -> None:
        if self.state is not DbState.UP:
            log.info("prediction log database is up")
        self.state = DbState.UP
        self.last_error = None
        self._metrics.db_up.set(1)

    def _mark_down(self, exc: BaseException) -> None:
        message = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"
        if self.state is not DbState.DOWN:
            log.warning("prediction log database is down", extra={"error": message})
        self.state = DbState.DOWN
        self.last_error = message
        self._metrics.db_up.set(0)
        # The database may come back empty (a new volume): check the table again.
        self._schema_ready = False
        if self._engine is not None:
            # Drop broken pooled connections; the next attempt opens a fresh one.
            self._engine.dispose()

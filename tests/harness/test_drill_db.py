"""The db-outage drill's verdicts on what the service's /metrics shows.

Against the small real server on 127.0.0.1 serving /metrics pages: the drill holds the
outage until the service counts it, and fails with the reason when it never does.
"""

from __future__ import annotations

import time

import pytest
from http_stub import StubServer

from generator.errors import SmokeFailed
from generator.harness import drill_db


def _metrics(db_up: float, failures: float) -> bytes:
    return f"db_up {db_up}\ndb_write_failures_total {failures}\n".encode()


@pytest.fixture
def quick_outage(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shorten the drill's waits so a test takes a second, not half a minute."""
    monkeypatch.setattr(drill_db, "OUTAGE_MIN_SECONDS", 0.2)
    monkeypatch.setattr(drill_db, "OUTAGE_MAX_SECONDS", 1.0)
    monkeypatch.setattr(drill_db, "POLL_SECONDS", 0.05)


@pytest.mark.usefixtures("quick_outage")
@pytest.mark.parametrize(("db_up", "failures"), [(0.0, 0.0), (1.0, 3.0)])
def test_an_outage_is_counted_by_db_up_or_by_write_failures(
    http_stub: StubServer, db_up: float, failures: float
) -> None:
    http_stub.answer(200, _metrics(db_up, failures), path="/metrics")
    during = drill_db.hold_outage(
        http_stub.url, {"db_up": 1.0, "db_write_failures_total": 0.0}, time.monotonic()
    )
    assert (during["db_up"], during["db_write_failures_total"]) == (db_up, failures)


@pytest.mark.usefixtures("quick_outage")
def test_an_app_that_never_notices_the_outage_fails_the_drill(http_stub: StubServer) -> None:
    http_stub.answer(200, _metrics(1.0, 2.0), path="/metrics")
    before = {"db_up": 1.0, "db_write_failures_total": 2.0}
    with pytest.raises(SmokeFailed, match="did not count the database outage"):
        drill_db.hold_outage(http_stub.url, before, time.monotonic())


def test_metric_figures_are_db_up_and_each_counters_rise() -> None:
    before = {"db_up": 1.0, "db_write_failures_total": 1.0, "db_rows_written_total": 10.0}
    during = {"db_up": 0.0, "db_write_failures_total": 4.0, "db_rows_written_total": 10.0}
    after = {
        "db_up": 1.0,
        "db_write_failures_total": 6.0,
        "db_rows_written_total": 310.0,
        "db_queue_dropped_total": 0.0,
    }
    assert drill_db.metric_figures(before, during, after) == {
        "db_up_during": 0,
        "db_up_after": 1,
        "db_write_failures": 5,
        "db_rows_written": 300,
        "db_queue_dropped": 0,
    }

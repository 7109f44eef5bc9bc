"""Drill ``db-outage``: the database is killed under load and comes back.

A few clients keep ``POST /predict`` busy (:class:`generator.harness.load.Load`) while
the db container is killed (SIGKILL through the engine) and, once the app's
``/metrics`` shows the outage, started again. The load goes on until a little after
the app's ``/ready`` says ``"db": "up"``. Then: every prediction was answered 200, the
outage was counted (``db_up`` went to 0 or ``db_write_failures_total`` rose), and each
request made after the database came back has its row in MySQL, read inside the db
container as the ``database`` step reads one.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, TextIO

from generator.errors import SmokeFailed
from generator.harness import containers, probes, promtext
from generator.harness.context import RunContext
from generator.harness.drills import POLL_SECONDS, blaming, engine, ready_body, service
from generator.harness.load import Load
from generator.harness.overlay import APP

DB = "db"
DB_UP = "db_up"
WRITE_FAILURES = "db_write_failures_total"
ROWS_WRITTEN = "db_rows_written_total"
DROPPED = "db_queue_dropped_total"

#: Seconds of load before the fault, so the log is busy when the database goes.
WARM_UP_SECONDS = 1.0
#: The database stays down at least this long, and until /metrics shows the outage...
OUTAGE_MIN_SECONDS = 5.0
#: ...but no longer than this: an app that never notices fails the drill.
OUTAGE_MAX_SECONDS = 30.0
#: Seconds of load after /ready reports the database up again.
AFTER_SECONDS = 3.0
#: How long the rows of the requests made after the outage may take to appear.
ROWS_WITHIN_SECONDS = 30.0


def db_outage(ctx: RunContext, url: str, out: TextIO) -> dict[str, Any]:
    """Kill the database under load, start it again; predictions and the log carry on."""
    db, app = service(ctx, DB), service(ctx, APP)
    body = ctx.project.sample_request.read_bytes()
    with blaming(app), Load(url + "/predict", body) as load:
        time.sleep(WARM_UP_SECONDS)
        before = promtext.scrape(url)
        killed = time.monotonic()
        engine("kill the db container", lambda: db.kill(signal="SIGKILL"))
        out.write("   db killed (SIGKILL); the load goes on\n")
        during = hold_outage(url, before, killed)
        # A container killed through the engine counts as stopped by hand, so its
        # restart policy leaves it be; it is started again, as `compose start db` does.
        engine("start the db container again", db.start)
        seen = _wait_recovery(db, url, _counter(during, ROWS_WRITTEN), killed, ctx)
        out.write(f"   db healthy again after {seen.healthy - killed:.1f} s\n")
        time.sleep(max(0.0, seen.back + AFTER_SECONDS - time.monotonic()))
        result = load.stop()
        if result.failed:
            raise SmokeFailed(f"during the database outage {result.failure_summary()}")
        after_ids = result.ids_sent_after(seen.back)
        if not after_ids:
            raise SmokeFailed("no /predict request was answered after the database came back")
        rows = _wait_rows(db, ctx.project.db_name, after_ids)
        after = promtext.scrape(url)
    figures = {
        **result.figures(),
        "clients": load.clients,
        "outage_seconds": round(seen.healthy - killed, 1),
        "log_resumed_seconds": round(seen.resumed - killed, 1),
        "post_outage_requests": len(after_ids),
        "post_outage_rows": rows,
    }
    figures.update(metric_figures(before, during, after))
    if rows < len(after_ids):
        raise SmokeFailed(
            f"only {rows} of the {len(after_ids)} requests made after the database came back "
            f"have a row in {ctx.project.db_name}.predictions after {ROWS_WITHIN_SECONDS:.0f} s"
        )
    return figures


def _counter(samples: dict[str, float], name: str) -> float:
    return samples.get(name, 0.0)


def hold_outage(url: str, before: dict[str, float], killed: float) -> dict[str, float]:
    """Keep the database down until ``/metrics`` shows the outage; return what it showed.

    The outage shows as ``db_up`` 0 or a rise of ``db_write_failures_total``. The result
    holds the lowest ``db_up`` seen (when the service has one) and the last counters.
    """
    lowest_up = before.get(DB_UP)
    while True:
        time.sleep(POLL_SECONDS)
        now = promtext.scrape(url)
        if DB_UP in now:
            lowest_up = min(now[DB_UP], lowest_up if lowest_up is not None else now[DB_UP])
        failures_rose = _counter(now, WRITE_FAILURES) > _counter(before, WRITE_FAILURES)
        held = time.monotonic() - killed
        if (lowest_up == 0 or failures_rose) and held >= OUTAGE_MIN_SECONDS:
            return {**now, **({DB_UP: lowest_up} if lowest_up is not None else {})}
        if held > OUTAGE_MAX_SECONDS:
            raise SmokeFailed(
                f"/metrics did not count the database outage within {OUTAGE_MAX_SECONDS:.0f} s "
                f"({DB_UP} {lowest_up if lowest_up is not None else 'missing'}, "
                f"{WRITE_FAILURES} stayed {_counter(now, WRITE_FAILURES):g})"
            )


@dataclass(frozen=True)
class Recovery:
    """When (``time.monotonic()``) each sign of the database's return was first seen."""

    #: the db container runs and its health check passes
    healthy: float
    #: the app's ``/ready`` says ``"db": "up"``: requests after this are "after the outage"
    back: float
    #: ``db_rows_written_total`` rose again: the prediction log writes rows
    resumed: float


def _wait_recovery(
    db: Any, url: str, rows_at_outage: float, killed: float, ctx: RunContext
) -> Recovery:
    """Watch the database come back: healthy, seen by ``/ready``, written to by the log.

    All three are watched together, so each time is measured as it happens (the app may
    reconnect before the engine's next health check says the database is healthy).
    """
    deadline = killed + ctx.options.ready_timeout
    seen: dict[str, float] = {}
    while len(seen) < 3:
        now = time.monotonic()
        if "healthy" not in seen and _healthy(db):
            seen["healthy"] = now
        if "back" not in seen and (ready_body(url) or {}).get("db") == "up":
            seen["back"] = now
        if "resumed" not in seen and _counter(promtext.scrape(url), ROWS_WRITTEN) > rows_at_outage:
            seen["resumed"] = now
        if len(seen) < 3 and now > deadline:
            if "healthy" not in seen:
                source, lines = containers.log_tail(db)
                raise SmokeFailed(
                    "the database did not get healthy again within "
                    f"{ctx.options.ready_timeout:.0f} s of the kill",
                    log_tail=lines,
                    log_source=source,
                )
            state = json.dumps((ready_body(url) or {}).get("db"))
            raise SmokeFailed(
                "the app did not write its prediction log again after the database came "
                f'back (/ready says "db": {state})'
            )
        time.sleep(POLL_SECONDS)
    return Recovery(**seen)


def _healthy(container: Any) -> bool:
    """Tell whether the container runs and its health check (if it has one) passes."""
    engine("inspect the db container", container.reload)
    state = container.attrs.get("State", {})
    health = (state.get("Health") or {}).get("Status")
    return bool(state.get("Running")) and health in (None, "healthy")


def _wait_rows(db: Any, db_name: str, request_ids: list[str]) -> int:
    """Wait until every request id has its row (or the time is up); return how many do."""
    deadline = time.monotonic() + ROWS_WITHIN_SECONDS
    while True:
        found = engine(
            "read the prediction log", lambda: probes.logged_ids(db, db_name, request_ids)
        )
        if found >= len(set(request_ids)) or time.monotonic() > deadline:
            return found
        time.sleep(1.0)


def metric_figures(
    before: dict[str, float], during: dict[str, float], after: dict[str, float]
) -> dict[str, Any]:
    """Figures of the service's own metrics: db_up during and after, each counter's rise."""

    def whole(value: float | None) -> int | None:
        return None if value is None else int(value)

    rise = {
        name.removesuffix("_total"): int(_counter(after, name) - _counter(before, name))
        for name in (WRITE_FAILURES, ROWS_WRITTEN, DROPPED)
    }
    return {
        "db_up_during": whole(during.get(DB_UP)),
        "db_up_after": whole(after.get(DB_UP)),
        **rise,
    }

"""What the fault drills of ``servegen test --drills`` share.

After the smoke checks pass, each drill breaks the running stack in one way and checks
that the project copes; each is a step of its own, a function of the run's context
that returns its figures:

- ``db-outage`` (:mod:`generator.harness.drill_db`): the database is killed under a
  steady ``/predict`` load and started again. No prediction may fail, ``/metrics`` must
  count the outage, and the prediction log must hold rows for the requests made after
  the database came back.
- ``app-crash`` (:mod:`generator.harness.drill_crash`): the app's main process is
  killed; the restart policy must bring it back to ``/ready`` on the same address.
- ``bad-checksum`` (:mod:`generator.harness.drill_checksum`): a model whose bytes do
  not match its sha256 is never served.

A failed drill raises :class:`SmokeFailed` with the log tail of the container that
explains it (the app's for a failed prediction, the database's when it does not come
back). This module holds what they share: engine calls that fail in one line, finding
a service's container, blaming a container's log, and reading ``/ready``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from generator.errors import SmokeFailed
from generator.harness import containers, loopback
from generator.harness.context import RunContext

#: Seconds between two polls of the engine or the app.
POLL_SECONDS = 0.5

_T = TypeVar("_T")


def engine(what: str, call: Callable[[], _T]) -> _T:
    """Run one Docker SDK call; an engine error becomes a one-line SmokeFailed."""
    try:
        return call()
    except Exception as exc:
        raise SmokeFailed(f"could not {what}: {exc}") from None


def service(ctx: RunContext, name: str) -> Any:
    """Return the running stack's container of service ``name``, or raise."""
    found = engine(
        f"list the {name} container",
        lambda: containers.service_container(ctx.env.client, ctx.compose.name, name),
    )
    if found is None:
        raise SmokeFailed(f"the {name} container is missing")
    return found


@contextmanager
def blaming(container: Any) -> Iterator[None]:
    """Give a failure of the block the log tail of ``container`` (unless it has one)."""
    try:
        yield
    except SmokeFailed as exc:
        if not exc.log_tail:
            exc.log_source, exc.log_tail = containers.log_tail(container)
        raise


def ready_body(url: str) -> dict[str, Any] | None:
    """``GET /ready``: its JSON body whatever the status, None when nothing answers."""
    try:
        _, body = loopback.request(url + "/ready")
        data = json.loads(body)
    except (loopback.NoAnswer, ValueError):
        return None
    return data if isinstance(data, dict) else None

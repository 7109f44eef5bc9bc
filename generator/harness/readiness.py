"""Wait for the started app: ``/health``, then ``/ready``, or an early, clear failure.

The wait is the harness's own (not ``compose up --wait``) so it can measure start-up
seconds from ``up`` to the first ``/ready`` 200, and stop at once when the app reports
that it failed to start, or when the app or the proxy in front of it exits or
crash-loops. The polls go to the published port: through the proxy, when the project
has one.
"""

from __future__ import annotations

import json
import time
from typing import Any

from generator.errors import SmokeFailed
from generator.harness import loopback
from generator.harness.containers import service_container
from generator.harness.overlay import APP, PROXY

#: Restarts after which the app counts as crash-looping rather than slow to start.
CRASH_LOOP_RESTARTS = 3

#: Seconds between two polls.
POLL_SECONDS = 0.5


def failed_state(body: bytes) -> str | None:
    """Return the app's error when a ``/ready`` body says it failed to start, else None.

    The service reports ``{"state": "failed", "error": ...}`` when loading the model
    failed: it will not get ready by waiting, so the harness stops at once.
    """
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if isinstance(data, dict) and data.get("state") == "failed":
        return str(data.get("error") or "no reason given")
    return None


def _status(url: str) -> tuple[int | None, bytes]:
    """GET ``url``; status None while nothing answers (the app is still starting)."""
    try:
        return loopback.request(url)
    except loopback.NoAnswer:
        return None, b""


def wait_ready(
    client: Any, compose_name: str, base_url: str, up_started: float, timeout: float
) -> dict[str, Any]:
    """Poll ``/health`` then ``/ready`` until 200; stop early if the app failed or stopped."""
    deadline = up_started + timeout
    figures: dict[str, Any] = {}
    for path, key in (("/health", "health_seconds"), ("/ready", "startup_seconds")):
        while True:
            status, _ = _status(base_url + path)
            if status == 200:
                figures[key] = round(time.monotonic() - up_started, 1)
                break
            if status is not None:
                error = failed_state(_status(base_url + "/ready")[1])
                if error is not None:
                    raise SmokeFailed(f"the app failed to start: {error}")
            for service in (APP, PROXY):
                _fail_if_stopped(client, compose_name, service)
            if time.monotonic() > deadline:
                said = f"last answer {status}" if status is not None else "no answer"
                raise SmokeFailed(f"GET {path} not 200 within {timeout:.0f} s ({said})")
            time.sleep(POLL_SECONDS)
    return figures


def _fail_if_stopped(client: Any, compose_name: str, service: str) -> None:
    container = service_container(client, compose_name, service)
    if container is None:
        return
    container.reload()
    state = container.attrs.get("State", {})
    if state.get("Status") in ("exited", "dead"):
        raise SmokeFailed(f"the {service} container stopped (exit code {state.get('ExitCode')})")
    # Both restart on failure (restart: unless-stopped): a crash loop never gets ready.
    if int(container.attrs.get("RestartCount") or 0) >= CRASH_LOOP_RESTARTS:
        raise SmokeFailed(
            f"the {service} container keeps crashing (restarted {CRASH_LOOP_RESTARTS} times)"
        )

"""Start the run's stack: ``compose up`` without building, bounded in time.

The image was just built, so ``up`` only creates and starts the containers; it waits
for the dependencies' conditions itself (a healthy database, a completed download).
Waiting for the app is :mod:`generator.harness.readiness`'s job.
"""

from __future__ import annotations

import sys
from typing import TextIO

from generator.errors import SmokeFailed
from generator.harness import proc
from generator.harness.compose import ComposeRun

_SOURCE = "docker compose up"


def up(compose: ComposeRun, timeout: float, out: TextIO | None = None) -> list[str]:
    """``compose up -d`` without building (the image was just built), within ``timeout``.

    ``up`` itself waits for the dependencies' conditions (a healthy database, a completed
    download), so it is bounded by the same time the app has to become ready.
    """
    out = out if out is not None else sys.stderr
    status = proc.StatusLine("starting", out)
    try:
        result = compose.run(
            "up", "--detach", "--no-build", on_line=status, progress="plain", timeout=timeout
        )
    finally:
        status.close()
    if result.timed_out:
        raise SmokeFailed(
            f"docker compose up did not finish within {timeout:.0f} s",
            log_tail=result.tail(),
            log_source=_SOURCE,
        )
    if not result.ok:
        raise SmokeFailed(
            f"docker compose up failed: {proc.last_line(result.lines, 'no message')}",
            log_tail=result.tail(),
            log_source=_SOURCE,
        )
    return result.lines

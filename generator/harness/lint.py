"""Lint before building: hadolint on the Dockerfile (when installed), compose config.

A finding at warning level or above, or a compose file that does not resolve with the
overlay, stops the run before the slow build (exit code 4).
"""

from __future__ import annotations

import shutil
from typing import Any

from generator.errors import BuildFailed
from generator.harness import proc
from generator.harness.compose import ComposeRun
from generator.harness.project import Project


def hadolint(project: Project) -> dict[str, Any]:
    """Run hadolint on the project's Dockerfile; figures say what it found or why not."""
    binary = shutil.which("hadolint")
    if binary is None:
        return {"hadolint": "skipped: hadolint not installed"}
    # Info and style notes are shown but do not fail the run; warnings and errors do.
    # The project's own .hadolint.yaml, if any, applies since hadolint runs in its folder.
    result = proc.run(
        [binary, "--failure-threshold", "warning", "Dockerfile"], cwd=str(project.root)
    )
    findings = [line for line in result.lines if line.strip()]
    if not result.ok:
        raise BuildFailed(
            f"hadolint found {len(findings)} problem(s) in the Dockerfile",
            log_tail=findings,
            log_source="hadolint",
        )
    return {"hadolint": "clean" if not findings else f"{len(findings)} note(s)"}


def compose_config(compose: ComposeRun) -> dict[str, Any]:
    """Check that the project's compose file with the overlay resolves (``config -q``)."""
    result = compose.run("config", "--quiet")
    if not result.ok:
        raise BuildFailed(
            "docker compose config rejected the project's compose file with the overlay",
            log_tail=result.tail(),
            log_source="docker compose config",
        )
    return {"compose_config": "valid"}

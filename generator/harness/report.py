"""The run's record: steps with status, seconds and figures, as a table or as JSON.

Every step of a run is recorded through :meth:`Report.step`, which times it and marks it
passed, failed or interrupted from how its block ends, so the report can never claim a
step passed that raised.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from generator.errors import Interrupted, ServegenError

#: Bumped when the JSON layout changes in a way a reader would notice.
JSON_FORMAT_VERSION = 1

#: How many lines of a failing container's (or build's) log the report keeps.
LOG_TAIL_LINES = 50

PASSED = "passed"
FAILED = "failed"
SKIPPED = "skipped"
INTERRUPTED = "interrupted"


@dataclass
class Step:
    """One step of a run."""

    name: str
    status: str = PASSED
    seconds: float = 0.0
    figures: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    log_source: str = ""
    log_tail: list[str] = field(default_factory=list)
    #: the whole log of a step that has one worth keeping (the build), for the JSON only
    log: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Return the step as plain JSON-ready data."""
        data: dict[str, Any] = {
            "name": self.name,
            "status": self.status,
            "seconds": round(self.seconds, 3),
            "figures": self.figures,
        }
        if self.message:
            data["message"] = self.message
        if self.log_tail:
            data["log_source"] = self.log_source
            data["log_tail"] = self.log_tail
        if self.log:
            data["log"] = self.log
        return data


@dataclass
class Report:
    """Everything a run found out, in step order."""

    project_dir: Path
    run_id: str
    steps: list[Step] = field(default_factory=list)
    exit_code: int = 0
    outcome: str = PASSED
    message: str = ""
    started: float = field(default_factory=time.monotonic)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    #: the traceback of an unforeseen error (a bug), for the JSON report only
    traceback: str = ""

    @contextmanager
    def step(self, name: str) -> Iterator[Step]:
        """Time a block and record it as a step; exceptions mark it and propagate."""
        step = Step(name)
        self.steps.append(step)
        begin = time.monotonic()
        try:
            yield step
        except ServegenError as exc:
            step.status = FAILED
            step.message = exc.message
            if exc.log_tail and not step.log_tail:
                step.log_tail = exc.log_tail[-LOG_TAIL_LINES:]
                step.log_source = exc.log_source
            raise
        except Interrupted as exc:
            step.status = INTERRUPTED
            step.message = f"interrupted by {exc}"
            raise
        except Exception as exc:
            step.status = FAILED
            step.message = f"{exc.__class__.__name__}: {exc}"
            raise
        finally:
            step.seconds = time.monotonic() - begin

    def find(self, name: str) -> Step | None:
        """Return the step called ``name``, or None when the run never got there."""
        return next((step for step in self.steps if step.name == name), None)

    def skip(self, name: str, message: str) -> Step:
        """Record a step that did not run, with the reason."""
        step = Step(name, status=SKIPPED, message=message)
        self.steps.append(step)
        return step

    def finish(self, error: ServegenError | Interrupted | None) -> None:
        """Close the report with the run's result: passed, or the error that ended it.

        The exit code and the outcome word are the error's own.
        """
        if error is not None:
            self.exit_code = error.exit_code
            self.outcome = error.outcome
            self.message = error.message
        self.seconds = time.monotonic() - self.started

    @property
    def passed(self) -> bool:
        """True when the run ended with exit code 0."""
        return self.exit_code == 0

    def as_dict(self) -> dict[str, Any]:
        """Return the whole report as plain JSON-ready data."""
        return {
            "format": JSON_FORMAT_VERSION,
            "project_dir": str(self.project_dir),
            "run_id": self.run_id,
            "passed": self.passed,
            "outcome": self.outcome,
            "exit_code": self.exit_code,
            "message": self.message,
            "seconds": round(self.seconds, 3),
            "steps": [step.as_dict() for step in self.steps],
            "notes": self.notes,
            **({"traceback": self.traceback} if self.traceback else {}),
        }

    def write_json(self, path: Path) -> None:
        """Write the JSON report, atomically so a reader never sees half a file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_text(json.dumps(self.as_dict(), indent=2) + "\n", encoding="utf-8")
        partial.replace(path)

    def print_table(self, out: TextIO) -> None:
        """Print the table for people, then the failing step's log tail and the notes."""
        rows = [("step", "status", "seconds", "figures")]
        for step in self.steps:
            rows.append(
                (
                    step.name,
                    step.status,
                    f"{step.seconds:.1f}" if step.status != SKIPPED else "-",
                    format_figures(step.figures) or step.message,
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        out.write("\n")
        for index, row in enumerate(rows):
            cells = [row[i].ljust(widths[i]) for i in range(3)]
            out.write("  ".join([*cells, row[3]]).rstrip() + "\n")
            if index == 0:
                out.write("  ".join("-" * w for w in [*widths, 7]) + "\n")
        for step in self.steps:
            if step.status == FAILED and step.log_tail:
                out.write(f"\nlast {len(step.log_tail)} lines of {step.log_source}:\n")
                for line in step.log_tail:
                    out.write(f"  | {line}\n")
        for note in self.notes:
            out.write(f"\n{note}\n")
        verdict = "PASSED" if self.passed else self.outcome.upper()
        tail = f": {self.message}" if self.message else ""
        out.write(f"\n{verdict} in {self.seconds:.1f} s (exit code {self.exit_code}){tail}\n")


def format_figures(figures: dict[str, Any]) -> str:
    """Render a step's figures compactly for the table (sizes in MB, seconds to 0.1)."""
    parts = []
    for key, value in figures.items():
        if value is None:
            continue
        if key.endswith("_bytes") and isinstance(value, int):
            parts.append(f"{key.removesuffix('_bytes')}={value / 1e6:.0f} MB")
        elif isinstance(value, float):
            parts.append(f"{key}={value:.1f}")
        elif isinstance(value, list | dict):
            continue
        elif isinstance(value, str) and value.startswith("sha256:"):
            parts.append(f"{key}={value[7:19]}")  # the short id, as `docker images` shows
        else:
            parts.append(f"{key}={value}")
    return ", ".join(parts)

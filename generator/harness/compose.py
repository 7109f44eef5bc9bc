"""One run's view of Compose: the project name, files, directory and environment.

Every compose call of a run goes through :class:`ComposeRun`, so all of them see the
same project name (unique per run), the same two files (the project's and the overlay)
and the same interpolation variables (``APP_IMAGE``, ``MYSQL_IMAGE``, ``MODEL_*``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator.harness import proc
from generator.harness.preflight import Compose


@dataclass(frozen=True)
class ComposeRun:
    """Compose invocations bound to one run (a changed view is a new value)."""

    compose: Compose
    name: str
    project_dir: Path
    files: tuple[Path, ...]
    env: Mapping[str, str] = field(default_factory=dict)

    def argv(self, *args: str, progress: str | None = None) -> list[str]:
        """Return the full command line for ``compose <args>``."""
        argv = [*self.compose.command, "--project-name", self.name]
        argv += ["--project-directory", str(self.project_dir)]
        for path in self.files:
            argv += ["--file", str(path)]
        if progress:
            argv += ["--progress", progress]
        return argv + list(args)

    def run(
        self,
        *args: str,
        on_line: Callable[[str], None] | None = None,
        progress: str | None = None,
        timeout: float | None = None,
    ) -> proc.Result:
        """Run ``compose <args>`` and collect its output."""
        return proc.run(
            self.argv(*args, progress=progress),
            env=self.env,
            cwd=str(self.project_dir),
            on_line=on_line,
            timeout=timeout,
        )

    def config_model(self) -> dict[str, Any]:
        """Return the merged, interpolated model as ``compose config`` resolves it."""
        result = self.run("config", "--format", "json")
        if not result.ok:
            raise ValueError(proc.last_line(result.lines, "compose failed without a message"))
        # Warnings share the stream; the JSON document starts at a line that is just "{".
        starts = [i for i, line in enumerate(result.lines) if line.strip() == "{"]
        model = json.loads("\n".join(result.lines[starts[0] :])) if starts else None
        if not isinstance(model, dict):
            raise ValueError("compose config printed no model")
        return model

    def down_command(self) -> str:
        """Return the exact command a person runs to remove a kept stack."""
        return " ".join([*self.compose.command, "--project-name", self.name, "down", "--volumes"])

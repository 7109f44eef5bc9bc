"""What to run after ``servegen new``: the local path and the Docker path.

The commands name the project just made, as a POSIX shell reads them: a path is
relative to the current folder when the project is inside it, and quoted with
:func:`shlex.quote` when it holds anything a shell would read otherwise.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path


def shell_path(project: Path, cwd: Path) -> str:
    """Return ``project`` for a shell in ``cwd``: relative when inside it, quoted."""
    try:
        relative = project.relative_to(cwd)
    except ValueError:
        return shlex.quote(str(project))
    text = relative.as_posix()
    if text == ".":
        return "."
    # "./-x" rather than "-x": a folder named like a flag stays a folder.
    return shlex.quote(text if not text.startswith("-") else f"./{text}")


def next_steps(project: Path, python: str, port: str, cwd: Path | None = None) -> list[str]:
    """Return the lines printed after ``Created <path>``: what to run next, and why.

    ``python`` and ``port`` are the project's ``python_version`` (what ``make venv``
    runs) and ``api_port`` (where ``make run`` serves). Every line is a command or a
    shell comment, so a block pasted into a shell runs as shown.
    """
    here = Path(os.path.abspath(cwd if cwd is not None else Path.cwd()))
    where = shell_path(Path(os.path.abspath(project)), here)
    enter = [] if where == "." else [f"cd {where}"]
    # compose.demo.yaml adds a server of the demo model (what `make demo` runs).
    compose = "docker compose -f compose.yaml -f compose.demo.yaml up -d --build --wait"
    return [
        "",
        "Next steps",
        f"  Run it here (needs python{python} and make):",
        *(f"    {command}" for command in enter),
        "    make venv          # .venv with the pinned dependencies",
        "    make demo-model    # a small demo model in models/",
        f"    make run           # serve it at http://127.0.0.1:{port}/docs (no database)",
        "    make test          # the project's own tests",
        "  Or with Docker:",
        "    # build the image, start the stack, probe it over HTTP and SQL, tear it down",
        f"    servegen test {where}",
        "    # start the database, a demo model server and the service; no .env needed",
        f"    cd {where} && {compose}" if enter else f"    {compose}",
    ]

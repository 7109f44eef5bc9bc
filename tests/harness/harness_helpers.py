"""Helpers shared by the harness tests (plain functions; fixtures live in conftest.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, TextIO

from generator.cli import report_error
from generator.harness.context import HarnessOptions
from generator.harness.runner import run

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_DIR = REPO_ROOT / "templates" / "torch-fastapi"
RUN_LABEL = "io.servegen.run"

#: One wheelhouse for every test and every run on this machine (git-ignored folder).
WHEELHOUSE_CACHE = Path(
    os.environ.get("SERVEGEN_WHEELHOUSE_CACHE", str(REPO_ROOT / ".cache" / "wheelhouse"))
)


def render_default(output_dir: Path, **answers: str) -> Path:
    """Render the template through plain cookiecutter (defaults unless ``answers`` differ).

    A private config keeps the user's ~/.cookiecutterrc out and the replay file out of
    the real home folder.
    """
    from cookiecutter.main import cookiecutter

    scratch = output_dir.parent / f".{output_dir.name}-cookiecutter"
    scratch.mkdir(parents=True, exist_ok=True)
    config = scratch / "config.yaml"
    config.write_text(
        f"cookiecutters_dir: {json.dumps(str(scratch / 'templates'))}\n"
        f"replay_dir: {json.dumps(str(scratch / 'replay'))}\n",
        encoding="utf-8",
    )
    return Path(
        cookiecutter(
            str(TEMPLATE_DIR),
            no_input=True,
            output_dir=str(output_dir),
            config_file=str(config),
            extra_context=answers or None,
        )
    )


def run_harness(options: HarnessOptions, out: TextIO | None = None) -> int:
    """Run the harness in-process and return the exit code ``servegen test`` would give."""
    try:
        run(options, out)
    except BaseException as exc:  # mapped exactly as the CLI maps it
        return report_error(exc)
    return 0


def write_executable(folder: Path, name: str, script: str) -> Path:
    """Write a small ``/bin/sh`` script as an executable."""
    path = folder / name
    path.write_text("#!/bin/sh\n" + script, encoding="utf-8")
    path.chmod(0o755)
    return path


def servegen_argv(*args: str) -> list[str]:
    """The command line of ``python -m generator`` with ``args``."""
    return [sys.executable, "-m", "generator", *args]


def run_servegen(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the CLI from the repository and capture what it prints."""
    return subprocess.run(
        servegen_argv(*args),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def leftovers(client: Any, run_id: str) -> dict[str, list[str]]:
    """Names of containers, networks, volumes and images still labelled with the run."""
    flt = {"label": f"{RUN_LABEL}={run_id}"}
    return {
        kind: names
        for kind, names in {
            "containers": [c.name for c in client.containers.list(all=True, filters=flt)],
            "networks": [n.name for n in client.networks.list(filters=flt)],
            "volumes": [v.name for v in client.volumes.list(filters=flt)],
            "images": [i.short_id for i in client.images.list(filters=flt)],
        }.items()
        if names
    }

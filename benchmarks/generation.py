"""Generation wall time: ``servegen new --no-input`` against plain ``cookiecutter``.

Both commands run as fresh ``python -m ...`` processes of the same interpreter, render
the same template with its defaults into an empty temporary folder, and are timed from
process start to exit. Their order alternates between repetitions so that a warm disk
cache favours neither. The median of the repetitions is reported.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.harness_adapter import last_line
from benchmarks.stats import median

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_DIR = REPO_ROOT / "templates" / "torch-fastapi"

CommandFor = Callable[[Path], list[str]]


class GenerationError(Exception):
    """A generation command failed; the message holds its last line of output."""


def servegen_command(out_dir: Path) -> list[str]:
    """Return the ``servegen new --no-input`` command rendering into ``out_dir``."""
    return [sys.executable, "-m", "generator", "new", "--no-input", "--output-dir", str(out_dir)]


def cookiecutter_command(out_dir: Path) -> list[str]:
    """Return the plain ``cookiecutter --no-input`` command rendering into ``out_dir``."""
    return [
        sys.executable,
        "-m",
        "cookiecutter",
        "--no-input",
        "--output-dir",
        str(out_dir),
        str(TEMPLATE_DIR),
    ]


def time_command(command_for: CommandFor, *, timeout: float = 120.0) -> float:
    """Run the command once into a fresh empty folder; return its wall time in seconds."""
    work = Path(tempfile.mkdtemp(prefix="servegen-bench-gen-"))
    try:
        out_dir = work / "out"
        out_dir.mkdir()
        cmd = command_for(out_dir)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        t0 = time.perf_counter()
        proc = subprocess.run(
            cmd,
            cwd=work,
            env=env,
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
            check=False,
        )
        elapsed = time.perf_counter() - t0
        if proc.returncode != 0:
            output = (proc.stderr or proc.stdout).decode(errors="replace")
            raise GenerationError(
                f"{' '.join(cmd[1:4])} exited {proc.returncode}: {last_line(output, '')}"
            )
        if not any(out_dir.iterdir()):
            raise GenerationError(f"{' '.join(cmd[1:4])} produced no project")
        return elapsed
    finally:
        shutil.rmtree(work, ignore_errors=True)


def compare(
    repetitions: int,
    subject: CommandFor = servegen_command,
    baseline: CommandFor = cookiecutter_command,
) -> tuple[float, float, list[float], list[float]]:
    """Time ``subject`` and ``baseline`` alternately; return both medians and all samples."""
    if repetitions < 1:
        raise ValueError("repetitions must be at least 1")
    subject_times: list[float] = []
    baseline_times: list[float] = []
    for i in range(repetitions):
        order = [(subject, subject_times), (baseline, baseline_times)]
        if i % 2:
            order.reverse()
        for command_for, samples in order:
            samples.append(time_command(command_for))
    return median(subject_times), median(baseline_times), subject_times, baseline_times

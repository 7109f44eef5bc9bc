"""The benchmarks' only door into the harness (``generator.harness``).

Builds go through the harness's BuildKit build (``compose build`` of the app service)
and the wheelhouse through its ``--wheelhouse auto`` code; start-up from ``compose up``
to ``/ready`` is the figure that ``servegen test`` itself reports. What the harness does
not expose yet is bridged here, thinly, and nowhere else:

- a build without the layer cache: ``build.build`` has no ``no_cache`` switch, so a
  cold build runs ``compose build --no-cache app`` through the harness's
  :class:`ComposeRun` (same command line, project name, files and environment);
- a compose run for building only (no smoke overlay, which needs a model checksum):
  :func:`compose_for` assembles one from the harness's own pieces.

Two small helpers of the harness serve the benchmarks as well, from here:
``loopback.request`` (HTTP to the app on 127.0.0.1) and ``last_line`` (the line of a
log that says why something failed).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from generator.harness import build as hbuild
from generator.harness import loopback as loopback
from generator.harness import preflight, wheelhouse
from generator.harness.compose import ComposeRun
from generator.harness.overlay import APP
from generator.harness.proc import last_line as last_line
from generator.harness.project import Project, load_project

REPO_ROOT = Path(__file__).resolve().parent.parent


class BenchBuildError(RuntimeError):
    """A benchmark build failed; the message holds the line of its log that says why."""


@dataclass(frozen=True)
class BuildTarget:
    """One project directory and the image name its build produces."""

    project_dir: Path
    image: str
    compose_name: str
    base_image: str


def connect() -> Any:
    """Return a connected Docker SDK client (the harness's own preflight connection)."""
    client, _ = preflight.connect(None)
    return client


def build_overlay(target: BuildTarget) -> Path:
    """Write a build-only compose overlay beside the project; return its path.

    Like the harness's smoke overlay, it sets the app's build arguments (base image,
    offline install from ``wheels/``) without touching the project's own files; unlike
    it, it needs no model checksum, because nothing is started.
    """
    overlay = {
        "services": {
            APP: {
                "build": {
                    "args": {"BASE_IMAGE": target.base_image, **wheelhouse.BUILD_ARGS},
                }
            }
        }
    }
    path = target.project_dir.parent / f"{target.compose_name}.build-overlay.yaml"
    path.write_text(yaml.safe_dump(overlay, sort_keys=False), encoding="utf-8")
    return path


def compose_for(target: BuildTarget) -> ComposeRun:
    """A compose run that builds ``target`` offline from its ``wheels/`` folder."""
    env = dict(os.environ)
    env.update({"APP_IMAGE": target.image, "BASE_IMAGE": target.base_image})
    compose = preflight.find_compose(env)
    return ComposeRun(
        compose=compose,
        name=target.compose_name,
        project_dir=target.project_dir,
        files=(target.project_dir / "compose.yaml", build_overlay(target)),
        env=env,
    )


def build(target: BuildTarget, *, no_cache: bool = False) -> float:
    """Build the app image of ``target``; return the wall-clock seconds of the build."""
    run = compose_for(target)
    sink = io.StringIO()  # the harness's progress lines: kept quiet, shown on failure
    begin = time.monotonic()
    if no_cache:
        result = run.run("build", "--no-cache", APP, progress="plain")
        seconds = time.monotonic() - begin
        if not result.ok:
            raise BenchBuildError(f"the image build failed: {hbuild.build_error(result.lines)}")
        return seconds
    try:
        hbuild.build(run, out=sink)
    except Exception as exc:  # BuildFailed carries the harness's one-line reason
        raise BenchBuildError(str(exc)) from None
    return time.monotonic() - begin


def measure(client: Any, image: str, base_image: str) -> dict[str, Any]:
    """The harness's own image figures (size, layers, bytes added above the base)."""
    return hbuild.measure(client, image, base_image)


def project(project_dir: Path) -> Project:
    """The harness's view of a generated project."""
    return load_project(project_dir)


def fill_wheelhouse(
    client: Any, project_dir: Path, base_image: str, run_label: dict[str, str]
) -> dict[str, Any]:
    """Fill the project's ``wheels/`` like ``servegen test --wheelhouse auto`` does."""
    proj = load_project(project_dir)
    target = wheelhouse.probe_target(client, base_image, proj.python_version, run_label)
    return wheelhouse.fill_auto(proj, target)


def add_wheels(project_dir: Path, base_image: str, client: Any, requirements: list[str]) -> None:
    """Download extra pinned wheels into the project's ``wheels/`` (for the requirements change)."""
    proj = load_project(project_dir)
    target = wheelhouse.probe_target(client, base_image, proj.python_version, {})
    argv = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-deps"]
    argv += ["--dest", str(project_dir / wheelhouse.WHEELS_DIR), "--only-binary=:all:"]
    argv += ["--implementation", "cp", "--python-version", target.python]
    for platform in target.platforms():
        argv += ["--platform", platform]
    proc = subprocess.run([*argv, *requirements], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
        reason = last_line(errors, "") or last_line(proc.stderr)
        raise BenchBuildError(f"pip download {' '.join(requirements)} failed: {reason[:300]}")


def servegen_test(
    project_dir: Path, base_image: str, db_image: str, proxy_image: str, timeout: float = 900
) -> dict[str, Any]:
    """Run ``servegen test`` on the project and return its JSON report.

    Start-up from ``compose up`` to ``/ready`` is read from this report, so the figure is
    exactly what a user of ``servegen test`` sees.
    """
    with tempfile.TemporaryDirectory(prefix="servegen-bench-report-") as tmp:
        report = Path(tmp) / "report.json"
        argv = [sys.executable, "-m", "generator", "test", str(project_dir)]
        argv += ["--base-image", base_image, "--db-image", db_image]
        argv += ["--proxy-image", proxy_image, "--wheelhouse", "auto"]
        argv += ["--json", str(report)]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        proc = subprocess.run(
            argv, capture_output=True, text=True, env=env, timeout=timeout, check=False
        )
        if not report.is_file():
            raise RuntimeError(
                f"servegen test exited {proc.returncode} without a report: "
                f"{last_line(proc.stderr or proc.stdout)}"
            )
        data: dict[str, Any] = json.loads(report.read_text(encoding="utf-8"))
        data["exit_code"] = proc.returncode
        return data


def find_figure(report: Any, *names: str) -> float | None:
    """Find the first numeric value under any of ``names`` anywhere in a JSON report."""
    if isinstance(report, dict):
        for name in names:
            value = report.get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
        for value in report.values():
            found = find_figure(value, *names)
            if found is not None:
                return found
    elif isinstance(report, list):
        for value in report:
            found = find_figure(value, *names)
            if found is not None:
                return found
    return None

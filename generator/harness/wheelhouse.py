"""Offline builds: put the wheels the image needs into the project's ``wheels/`` folder.

The generated Dockerfile bind-mounts the build context's ``wheels/`` at ``/wheels``, and
the harness then builds with ``PIP_NO_INDEX=1`` and ``PIP_FIND_LINKS=/wheels``, so pip in
the build never reaches an index.

- ``--wheelhouse auto`` fills ``wheels/`` with the host's pip, asking for wheels of the
  image's Python version and platform (not the host's); wheels already there are reused.
- ``--wheelhouse DIR`` links (or, across file systems, copies) the wheels of DIR into
  ``wheels/``: a build can only see files inside its context.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator.errors import BuildFailed, UsageError
from generator.harness import proc
from generator.harness.project import Project

WHEELS_DIR = "wheels"
BUILD_ARGS = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": "/wheels"}

_PROBE = (
    "import platform, sys; v = sys.version_info; "
    "print(f'{v[0]}.{v[1]}', platform.machine(), platform.libc_ver()[1] or '0.0')"
)


@dataclass(frozen=True)
class Target:
    """The interpreter wheels are fetched for: ``3.11``, ``x86_64``, glibc ``(2, 36)``."""

    python: str
    machine: str
    glibc: tuple[int, int]

    def platforms(self) -> list[str]:
        """Every manylinux tag this target accepts, newest first (PEP 600 and 2014)."""
        # Ref: https://peps.python.org/pep-0600/ (manylinux_x_y tags)
        major, minor = self.glibc
        tags = [f"manylinux_{major}_{m}_{self.machine}" for m in range(minor, 16, -1)]
        return [*tags, f"manylinux2014_{self.machine}"]


def probe_target(
    client: Any, image: str, fallback_python: str, run_label: dict[str, str]
) -> Target:
    """Ask the base image for its Python and glibc; fall back to the project's answers."""
    try:
        output = client.containers.run(
            image,
            ["python3", "-c", _PROBE],
            entrypoint=[],
            remove=True,
            network_disabled=True,
            labels=run_label,
        )
        python, machine, libc = output.decode().split()
        major, minor = (int(part) for part in libc.split(".")[:2])
        return Target(python, machine, (major, minor))
    except Exception:  # no local base image, or not a glibc Python image
        # python:*-slim images are Debian 12 (glibc 2.36) on this architecture.
        return Target(fallback_python, _engine_machine(client), (2, 36))


def _engine_machine(client: Any) -> str:
    arch = str(client.info().get("Architecture") or "x86_64")
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(arch, arch)


def pip_download_argv(project: Project, dest: Path, target: Target, offline: bool) -> list[str]:
    """Return the host pip command that fetches the image's wheels into ``dest``."""
    argv = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check"]
    argv += ["--dest", str(dest), "--requirement", str(project.root / "requirements.txt")]
    argv += ["--only-binary=:all:", "--implementation", "cp", "--python-version", target.python]
    for platform in target.platforms():
        argv += ["--platform", platform]
    if offline:
        # Resolve from the wheels already there only: a complete wheelhouse needs no index.
        argv += ["--no-index", "--find-links", str(dest)]
    return argv


def fill_auto(project: Project, target: Target, dest: Path | None = None) -> dict[str, Any]:
    """Fill ``dest`` (default: the project's ``wheels/``) for ``target``; reuse what is there."""
    dest = dest or project.root / WHEELS_DIR
    dest.mkdir(parents=True, exist_ok=True)
    reused = proc.run(pip_download_argv(project, dest, target, offline=True))
    if reused.ok:
        return {"source": "auto (reused)", "wheels": _count(dest), "python": target.python}
    result = proc.run(pip_download_argv(project, dest, target, offline=False))
    if not result.ok:
        raise BuildFailed(
            "pip could not download the wheels for the image "
            f"(Python {target.python}, {target.machine})",
            log_tail=result.tail(),
            log_source="pip download",
        )
    return {"source": "auto", "wheels": _count(dest), "python": target.python}


def link_dir(project: Project, source: Path) -> dict[str, Any]:
    """Make the wheels of ``source`` visible in the project's ``wheels/`` folder."""
    source = source.expanduser().resolve()
    if not source.is_dir():
        raise UsageError(f"--wheelhouse {source}: not a directory")
    dest = project.root / WHEELS_DIR
    if source == dest.resolve():
        return {"source": str(source), "wheels": _count(dest), "added": 0}
    dest.mkdir(parents=True, exist_ok=True)
    added = 0
    for wheel in sorted(source.glob("*.whl")):
        target = dest / wheel.name
        if target.exists():
            continue
        try:
            os.link(wheel, target)
        except OSError:  # another file system, or links not allowed: copy instead
            shutil.copy2(wheel, target)
        added += 1
    if not any(dest.glob("*.whl")):
        raise UsageError(f"--wheelhouse {source}: no .whl files there")
    return {"source": str(source), "wheels": _count(dest), "added": added}


def _count(folder: Path) -> int:
    return sum(1 for _ in folder.glob("*.whl"))
